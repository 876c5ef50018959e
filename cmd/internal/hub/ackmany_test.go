package hub

import (
	"encoding/json"
	"net/http"
	"testing"
)

// A pull recipient acknowledges a page of its inbox in one call: delivered
// documents become acknowledged with their events, repeats and foreign or
// unknown ids are answered without changing anything, a bad body is refused.
func TestAckManyAcknowledgesAPage(t *testing.T) {
	h := startHub(t)
	a := h.submit(orgA, []string{orgB}, "801")
	b := h.submit(orgA, []string{orgB}, "802")
	other := h.submit(orgA, []string{orgD}, "803") // delivered to orgD, not orgB
	h.waitStates(a, h.tokens[orgA], map[string]string{orgB: "delivered"})
	h.waitStates(b, h.tokens[orgA], map[string]string{orgB: "delivered"})
	h.waitStates(other, h.tokens[orgA], map[string]string{orgD: "delivered"})

	type results struct {
		Results []struct{ ID, Outcome string }
	}
	ack := func(token string, ids ...string) (int, results) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"ids": ids})
		var r results
		st := h.call("POST", "/v1/inbox/ack", token, body, &r)
		return st, r
	}
	const bogus = "not-a-document-id"
	st, r := ack(h.tokens[orgB], a, b, a, other, bogus)
	if st != http.StatusOK {
		t.Fatalf("ack many: status %d", st)
	}
	want := []string{"acknowledged", "acknowledged", "already_acknowledged", "not_found", "not_found"}
	if len(r.Results) != len(want) {
		t.Fatalf("results %+v, want outcomes %v", r.Results, want)
	}
	for i, w := range want {
		if r.Results[i].Outcome != w {
			t.Errorf("result %d (%s): %s, want %s", i, r.Results[i].ID, r.Results[i].Outcome, w)
		}
	}
	h.waitStates(a, h.tokens[orgA], map[string]string{orgB: "acknowledged"})
	h.waitStates(b, h.tokens[orgA], map[string]string{orgB: "acknowledged"})
	h.waitStates(other, h.tokens[orgA], map[string]string{orgD: "delivered"}) // another organ's id changed nothing

	var acked int
	for _, id := range []string{a, b} {
		for _, e := range h.events(id) {
			if e.Kind == "acknowledged" {
				acked++
			}
		}
	}
	if acked != 2 {
		t.Errorf("%d acknowledged events, want one per document", acked)
	}
	var inbox struct {
		Documents []struct {
			ID string `json:"id"`
		} `json:"documents"`
	}
	h.call("GET", "/v1/inbox", h.tokens[orgB], nil, &inbox)
	if len(inbox.Documents) != 0 {
		t.Errorf("acknowledged documents still in the inbox: %+v", inbox.Documents)
	}

	// Again: nothing changes, and it says so.
	if _, r := ack(h.tokens[orgB], a); len(r.Results) != 1 || r.Results[0].Outcome != "already_acknowledged" {
		t.Errorf("second ack: %+v", r.Results)
	}
	// Refusals: no ids, not JSON, unknown field.
	for _, body := range []string{`{"ids": []}`, `not json`, `{"ids": ["x"], "all": true}`} {
		var p struct{ Code string }
		if st := h.call("POST", "/v1/inbox/ack", h.tokens[orgB], []byte(body), &p); st != http.StatusBadRequest || p.Code != "bad_request" {
			t.Errorf("body %s: status %d code %q, want 400 bad_request", body, st, p.Code)
		}
	}
}
