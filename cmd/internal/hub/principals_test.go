package hub

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"lienthong/routing/ledger"
)

// An operator lists the API credentials (no token in the answer) and revokes
// an organ's token: the next request with it is refused with 401, at once;
// organs and auditors may not use the credential API; the last operator
// credential cannot be revoked.
func TestOperatorRevokesACredential(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()
	op := "tok-operator-revoke"
	if err := h.l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOperator, Name: "ops"}, op, nil); err != nil {
		t.Fatal(err)
	}
	victim := h.tokens[orgB]
	if st := h.call("GET", "/v1/inbox", victim, nil, nil); st != http.StatusOK {
		t.Fatalf("inbox before the revocation: %d", st)
	}
	for _, tok := range []string{victim, h.auditor} {
		if st := h.call("GET", "/v1/admin/principals", tok, nil, nil); st != http.StatusForbidden {
			t.Errorf("credential list by a non-operator: %d, want 403", st)
		}
	}
	var list struct {
		Principals []struct {
			ID          int64  `json:"id"`
			Kind        string `json:"kind"`
			Organ       string `json:"organ"`
			TokenPrefix string `json:"token_sha256_prefix"`
			Token       string `json:"token"`
			RevokedAt   any    `json:"revoked_at"`
		} `json:"principals"`
	}
	if st := h.call("GET", "/v1/admin/principals", op, nil, &list); st != http.StatusOK {
		t.Fatalf("list: %d", st)
	}
	var victimID, opID int64
	for _, p := range list.Principals {
		if p.Token != "" {
			t.Errorf("the list shows a token")
		}
		switch {
		case p.Organ == orgB:
			victimID = p.ID
		case p.Kind == ledger.RoleOperator:
			opID = p.ID
		}
	}
	if victimID == 0 || opID == 0 {
		t.Fatalf("list has no credential for %s or the operator: %+v", orgB, list)
	}
	var revoked struct {
		ID        int64  `json:"id"`
		RevokedAt string `json:"revoked_at"`
		RevokedBy string `json:"revoked_by"`
	}
	if st := h.call("POST", fmt.Sprintf("/v1/admin/principals/%d/revoke", victimID), op, []byte(`{"reason": "máy bị mất / lost laptop"}`), &revoked); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	if revoked.ID != victimID || revoked.RevokedAt == "" || revoked.RevokedBy == "" {
		t.Fatalf("revoke answer: %+v", revoked)
	}
	if st := h.call("GET", "/v1/inbox", victim, nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("inbox with the revoked token: %d, want 401", st)
	}
	if st := h.call("GET", "/v1/inbox", h.tokens[orgD], nil, nil); st != http.StatusOK {
		t.Fatalf("another organ's token after the revocation: %d", st)
	}
	for _, c := range []struct {
		path string
		want int
		code string
	}{
		{fmt.Sprintf("/v1/admin/principals/%d/revoke", victimID), http.StatusConflict, "already_revoked"},
		{"/v1/admin/principals/999999/revoke", http.StatusNotFound, "not_found"},
		{fmt.Sprintf("/v1/admin/principals/%d/revoke", opID), http.StatusConflict, "last_operator"},
		{"/v1/admin/principals/x/revoke", http.StatusBadRequest, "bad_request"},
	} {
		var p struct{ Code, Title string }
		if st := h.call("POST", c.path, op, nil, &p); st != c.want || p.Code != c.code || p.Title == "" {
			t.Errorf("POST %s: %d %q, want %d %q", c.path, st, p.Code, c.want, c.code)
		}
	}
	// Malformed bodies are refused and revoke nothing.
	for _, body := range []string{`{"reason": "a"} trailing`, `{"reason": "a"}{"reason": "b"}`, `{"reason": "line\nbreak"}`,
		"{\"reason\": \"\xff\"}", `{"why": "x"}`, `{"reason": "` + strings.Repeat("x", 501) + `"}`} {
		var p struct{ Code string }
		if st := h.call("POST", fmt.Sprintf("/v1/admin/principals/%d/revoke", opID), op, []byte(body), &p); st != http.StatusBadRequest || p.Code != "bad_request" {
			t.Errorf("revoke with body %.40q: %d %q, want 400 bad_request", body, st, p.Code)
		}
	}

	if st := h.call("GET", "/v1/admin/principals", op, nil, nil); st != http.StatusOK {
		t.Fatalf("the operator was locked out: %d", st)
	}
}
