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

// `hubctl limits CODE` shows an organ's limits; with flags it changes only
// those given and sends the others as they are; a refusal prints the hub's
// problem.
func TestLimits(t *testing.T) {
	cur := organLimits{MaxAttempts: 12, MaxAgeSeconds: 259200, PushPipeline: 1}
	var puts []organLimits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/admin/organs/000.00.00.C03/limits" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","title":"Không tìm thấy / Not found","detail":"no such organ"}`))
			return
		}
		if r.Method == http.MethodPut {
			var l organLimits
			if err := json.NewDecoder(r.Body).Decode(&l); err != nil || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if l.PushPipeline > 64 {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"code":"bad_request","title":"Yêu cầu không hợp lệ / Bad request","detail":"push_pipeline 1..64"}`))
				return
			}
			puts = append(puts, l)
			cur = l
		}
		_ = json.NewEncoder(w).Encode(cur)
	}))
	defer srv.Close()
	base := []string{"--server", srv.URL, "--token", "tok-op"}
	var out bytes.Buffer
	if err := run(context.Background(), append(base, "limits", "000.00.00.C03"), &out); err != nil {
		t.Fatal(err)
	}
	if len(puts) != 0 || !strings.Contains(out.String(), "max attempts:        12") || !strings.Contains(out.String(), "72h0m0s") ||
		!strings.Contains(out.String(), "pipelined: 1") {
		t.Fatalf("show: %d PUTs, output\n%s", len(puts), out.String())
	}
	out.Reset()
	if err := run(context.Background(), append(base, "limits", "--push-pipeline", "8", "000.00.00.C03"), &out); err != nil {
		t.Fatal(err)
	}
	if want := (organLimits{MaxAttempts: 12, MaxAgeSeconds: 259200, PushPipeline: 8}); len(puts) != 1 || puts[0] != want {
		t.Fatalf("PUT %+v, want only push_pipeline changed: %+v", puts, want)
	}
	if !strings.Contains(out.String(), "Đã đổi / changed") || !strings.Contains(out.String(), "pipelined: 8") {
		t.Errorf("change output %q", out.String())
	}
	if err := run(context.Background(), append(base, "limits", "000.00.00.C03", "--max-age", "1h", "--max-attempts", "3"), &out); err != nil {
		t.Fatal(err)
	}
	if want := (organLimits{MaxAttempts: 3, MaxAgeSeconds: 3600, PushPipeline: 8}); len(puts) != 2 || puts[1] != want {
		t.Fatalf("PUT %+v, want %+v", puts, want)
	}
	err := run(context.Background(), append(base, "limits", "000.00.00.C03", "--push-pipeline", "99"), &out)
	if err == nil || !strings.Contains(err.Error(), "bad_request") || !strings.Contains(err.Error(), " / ") {
		t.Errorf("refusal: %v", err)
	}
	if err := run(context.Background(), append(base, "limits", "000.00.00.Z99"), &out); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("unknown organ: %v", err)
	}
	for _, bad := range [][]string{{"limits"}, {"limits", "a", "b"}, {"limits", "000.00.00.C03", "--push-pipeline", "x"}} {
		if err := run(context.Background(), append(base, bad...), &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
