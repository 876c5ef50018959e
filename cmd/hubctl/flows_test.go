package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// report posts the JSON status to the document's status route with the token,
// and prints the answer (sent, repeat) or the problem.
func TestReportPostsTheStatus(t *testing.T) {
	var got struct {
		method, path, auth string
		body               map[string]string
	}
	answer := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.auth = r.Method, r.URL.Path, r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		switch answer {
		case http.StatusConflict:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(answer)
			_, _ = w.Write([]byte(`{"code":"no_pending_recall","title":"Không có yêu cầu thu hồi đang chờ / No pending recall to answer","detail":"none"}`))
		default:
			w.WriteHeader(answer)
			_, _ = w.Write([]byte(`{"id":"019a-status","duplicate":` + map[int]string{200: "true", 202: "false"}[answer] + `}`))
		}
	}))
	defer srv.Close()
	args := []string{"--server", srv.URL, "--token", "tok", "report", "019a-doc", "13", "--description", "Gửi nhầm", "--recipient", "000.00.00.C02"}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	if got.method != "POST" || got.path != "/v1/documents/019a-doc/status" || got.auth != "Bearer tok" ||
		got.body["code"] != "13" || got.body["description"] != "Gửi nhầm" || got.body["recipient"] != "000.00.00.C02" {
		t.Fatalf("request %+v", got)
	}
	if !strings.Contains(out.String(), "status 13 sent: 019a-status") {
		t.Errorf("output %q", out.String())
	}
	answer = http.StatusOK
	out.Reset()
	if err := run(context.Background(), args, &out); err != nil || !strings.Contains(out.String(), "already recorded") {
		t.Errorf("repeat: %v %q", err, out.String())
	}
	answer = http.StatusConflict
	err := run(context.Background(), args, &out)
	if err == nil || !strings.Contains(err.Error(), "no_pending_recall") || !strings.Contains(err.Error(), " / ") {
		t.Errorf("problem: %v", err)
	}
	if err := run(context.Background(), []string{"--server", srv.URL, "--token", "t", "report", "only-id"}, &out); err == nil {
		t.Error("report without a code must fail")
	}
}
