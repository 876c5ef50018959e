package hub

import (
	"net/http"
	"strings"
	"testing"
)

// Bad parameters of the log API are problems with a stable code, and the
// detail names what was wrong (not a bare status text).
func TestLogAPIRefusesBadParameters(t *testing.T) {
	h := startHub(t)
	tok := h.tokens[orgA]
	for _, tc := range []struct {
		path, code, detail string
		status             int
	}{
		{"/v1/log/proof/inclusion?index=abc&size=1", "bad_request", "index", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?index=-1&size=1", "bad_request", "index", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?size=1", "bad_request", "index", http.StatusBadRequest},
		{"/v1/log/proof/consistency?from=5&to=2", "bad_request", "", http.StatusBadRequest},
		{"/v1/log/leaves/99999999", "not_found", "", http.StatusNotFound},
	} {
		var p struct{ Code, Detail string }
		st := h.call("GET", tc.path, tok, nil, &p)
		if st != tc.status || p.Code != tc.code || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: %d %q %q, want %d %q with %q in the detail", tc.path, st, p.Code, p.Detail, tc.status, tc.code, tc.detail)
		}
		if p.Detail == "no such route" || p.Detail == http.StatusText(tc.status) {
			t.Errorf("%s: detail %q does not say what was wrong", tc.path, p.Detail)
		}
	}
}
