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

// `hubctl principals` lists credentials; `hubctl principals revoke ID
// --reason T` posts the reason as JSON to the credential's revoke route and
// prints what was revoked; a refusal prints the hub's bilingual problem.
func TestPrincipalsRevoke(t *testing.T) {
	var got struct {
		method, path, ctype string
		body                map[string]string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.ctype = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		got.body = nil
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		switch {
		case r.Method == "GET" && r.URL.Path == "/v1/admin/principals":
			_, _ = w.Write([]byte(`{"principals":[{"id":4,"kind":"organ","organ":"000.00.00.C02","name":"văn thư","token_sha256_prefix":"00112233aabbccdd","created_at":"2026-12-01T08:00:00Z"},
				{"id":5,"kind":"operator","name":"ops","cert_sha256_prefix":"ffee","created_at":"2026-12-01T08:00:00Z","revoked_at":"2026-12-02T08:00:00Z","revoked_by":"ops#1"}]}`))
		case r.URL.Path == "/v1/admin/principals/4/revoke":
			_, _ = w.Write([]byte(`{"id":4,"kind":"organ","organ":"000.00.00.C02","name":"văn thư","token_sha256_prefix":"00112233aabbccdd","created_at":"2026-12-01T08:00:00Z","revoked_at":"2026-12-02T09:00:00Z","revoked_by":"ops#5"}`))
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"code":"already_revoked","title":"Thông tin xác thực này đã bị thu hồi trước đó / This credential was already revoked","detail":"x"}`))
		}
	}))
	defer srv.Close()
	base := []string{"--server", srv.URL, "--token", "tok-op"}
	var out bytes.Buffer
	if err := run(context.Background(), append(base, "principals"), &out); err != nil {
		t.Fatal(err)
	}
	if got.method != "GET" || !strings.Contains(out.String(), "#4") || !strings.Contains(out.String(), "token:00112233aabbccdd") ||
		!strings.Contains(out.String(), "revoked") || !strings.Contains(out.String(), "ops#1") {
		t.Fatalf("list: %s %s\n%s", got.method, got.path, out.String())
	}
	out.Reset()
	if err := run(context.Background(), append(base, "principals", "revoke", "4", "--reason", "máy bị mất"), &out); err != nil {
		t.Fatal(err)
	}
	if got.method != "POST" || got.path != "/v1/admin/principals/4/revoke" || got.ctype != "application/json" || got.body["reason"] != "máy bị mất" {
		t.Fatalf("revoke request: %+v", got)
	}
	if !strings.Contains(out.String(), "Đã thu hồi / revoked") || !strings.Contains(out.String(), "ops#5") {
		t.Errorf("revoke output %q", out.String())
	}
	err := run(context.Background(), append(base, "principals", "revoke", "--reason", "again", "7"), &out)
	if err == nil || !strings.Contains(err.Error(), "already_revoked") || !strings.Contains(err.Error(), " / ") {
		t.Errorf("refusal: %v", err)
	}
	if got.path != "/v1/admin/principals/7/revoke" {
		t.Errorf("flag before the id: path %s", got.path)
	}
	for _, bad := range [][]string{{"principals", "revoke"}, {"principals", "revoke", "x"}, {"principals", "revoke", "1", "2"}, {"principals", "drop", "1"}} {
		if err := run(context.Background(), append(base, bad...), &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
