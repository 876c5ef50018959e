package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
)

func newDoc(from string, to []string, number string) []byte {
	return sample.EdXML(sample.Doc{From: from, To: to, Number: number, Notation: "TEST",
		Date: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)})
}

// One edXML document to a push and a pull recipient: both delivered, states
// and ordered events right, the content byte-identical.
func TestEndToEndPushAndPull(t *testing.T) {
	h := startHub(t)
	raw := newDoc(orgA, []string{orgB, orgC}, "101")

	var sub struct{ ID, DocumentID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &sub); st != http.StatusAccepted {
		t.Fatalf("submit: status %d", st)
	}
	if sub.ID == "" {
		t.Fatal("submit: no id")
	}
	d := h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
	for _, r := range d.Recipients {
		if r.Sequence == nil || *r.Sequence < 1 {
			t.Errorf("recipient %s has no sequence number", r.Organ)
		}
	}

	// The push recipient got the original bytes once, with its idempotency key.
	got := h.sink.Received(orgC)
	if len(got) != 1 || got[0].DocumentID != sub.ID || got[0].IdempotencyKey != sub.ID+"/"+orgC {
		t.Fatalf("push recipient received %+v", got)
	}
	if got[0].SHA256 != d.SHA256 || got[0].Size != len(raw) {
		t.Errorf("pushed bytes differ: sha %s size %d, want %s %d", got[0].SHA256, got[0].Size, d.SHA256, len(raw))
	}

	// The pull recipient sees it in its inbox and acknowledges it.
	var inbox struct {
		Documents []struct {
			ID string `json:"id"`
		} `json:"documents"`
	}
	h.call("GET", "/v1/inbox", h.tokens[orgB], nil, &inbox)
	if len(inbox.Documents) != 1 || inbox.Documents[0].ID != sub.ID {
		t.Fatalf("inbox of B: %+v", inbox)
	}
	if st := h.call("POST", "/v1/inbox/"+sub.ID+"/ack", h.tokens[orgB], nil, nil); st != 200 {
		t.Fatalf("ack: %d", st)
	}
	if st := h.call("POST", "/v1/inbox/"+sub.ID+"/ack", h.tokens[orgB], nil, nil); st != 200 {
		t.Fatalf("second ack must be harmless: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "acknowledged", orgC: "delivered"})
	inbox.Documents = nil
	h.call("GET", "/v1/inbox", h.tokens[orgB], nil, &inbox)
	if len(inbox.Documents) != 0 {
		t.Errorf("acknowledged document still in the inbox: %+v", inbox)
	}

	// Content is byte-identical.
	req, _ := http.NewRequest("GET", h.api+"/v1/documents/"+sub.ID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+h.tokens[orgB])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, raw) {
		t.Fatalf("content differs from the submitted bytes (%d vs %d bytes)", len(body), len(raw))
	}

	// Events: ordered, and per recipient in the order of the state machine.
	var evs struct {
		Events []struct {
			ID        int64  `json:"id"`
			Kind      string `json:"kind"`
			Recipient string `json:"recipient"`
		} `json:"events"`
	}
	h.call("GET", "/v1/documents/"+sub.ID+"/events", h.tokens[orgA], nil, &evs)
	if len(evs.Events) == 0 || evs.Events[0].Kind != "accepted" {
		t.Fatalf("first event must be accepted: %+v", evs.Events)
	}
	per := map[string][]string{}
	for i, e := range evs.Events {
		if i > 0 && e.ID <= evs.Events[i-1].ID {
			t.Fatalf("events out of order: %+v", evs.Events)
		}
		if e.Recipient != "" {
			per[e.Recipient] = append(per[e.Recipient], e.Kind)
		}
	}
	want := map[string]string{
		orgB: "routed delivering delivered acknowledged",
		orgC: "routed delivering delivered",
	}
	for organ, w := range want {
		if g := strings.Join(per[organ], " "); g != w {
			t.Errorf("events of %s: %q, want %q", organ, g, w)
		}
	}
}

// The same submission twice gives the same id and is delivered once; the
// same DocumentId with other bytes is a conflict.
func TestDuplicateSubmission(t *testing.T) {
	h := startHub(t)
	raw := newDoc(orgA, []string{orgC}, "202")
	var first, second struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &first); st != http.StatusAccepted {
		t.Fatalf("first submit: %d", st)
	}
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &second); st != http.StatusOK {
		t.Fatalf("second submit: %d, want 200", st)
	}
	if first.ID != second.ID {
		t.Fatalf("ids differ: %s vs %s", first.ID, second.ID)
	}
	h.waitStates(first.ID, h.tokens[orgA], map[string]string{orgC: "delivered"})

	other := bytes.Replace(raw, []byte("Nội dung văn bản mẫu"), []byte("Nội dung đã sửa"), 1)
	var p struct{ Code string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], other, &p); st != http.StatusConflict || p.Code != "document_id_conflict" {
		t.Fatalf("other content under the same DocumentId: %d %q", st, p.Code)
	}
	time.Sleep(500 * time.Millisecond) // a second delivery, if any, would have happened by now
	if n := len(h.sink.Received(orgC)); n != 1 {
		t.Fatalf("recipient received %d copies, want 1", n)
	}
	if n := h.count("documents"); n != 1 {
		t.Fatalf("%d documents stored, want 1", n)
	}
}

// Twenty concurrent submissions of one document → one document.
func TestConcurrentDuplicatesMakeOneDocument(t *testing.T) {
	h := startHub(t)
	raw := newDoc(orgA, []string{orgB}, "303")
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var r struct{ ID string }
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_ = json.NewDecoder(resp.Body).Decode(&r)
			ids[i] = r.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("ids differ: %v", ids)
		}
	}
	if n := h.count("documents"); n != 1 {
		t.Fatalf("%d documents, want 1", n)
	}
}

// Least privilege: an organ submits only as itself, reads only its own
// documents; the auditor reads everything and writes nothing.
func TestAuthorisation(t *testing.T) {
	h := startHub(t)
	// A submitting with From = B → 403, nothing stored.
	var p struct{ Code string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgB, []string{orgC}, "404"), &p); st != http.StatusForbidden || p.Code != "forbidden_sender" {
		t.Fatalf("A as B: %d %q", st, p.Code)
	}
	if n := h.count("documents") + h.count("deliveries") + h.documentEvents(); n != 0 {
		t.Fatalf("refusal stored %d rows", n)
	}
	// B sends to C; A may not see it; the auditor may.
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgB], newDoc(orgB, []string{orgC}, "405"), &sub); st != http.StatusAccepted {
		t.Fatalf("B submit: %d", st)
	}
	for _, path := range []string{"", "/events", "/content"} {
		if st := h.call("GET", "/v1/documents/"+sub.ID+path, h.tokens[orgA], nil, nil); st != http.StatusNotFound {
			t.Errorf("A reading B→C%s: %d, want 404", path, st)
		}
		if st := h.call("GET", "/v1/documents/"+sub.ID+path, h.auditor, nil, nil); st != http.StatusOK {
			t.Errorf("auditor reading%s: %d, want 200", path, st)
		}
		if st := h.call("GET", "/v1/documents/"+sub.ID+path, h.tokens[orgC], nil, nil); st != http.StatusOK {
			t.Errorf("recipient reading%s: %d, want 200", path, st)
		}
	}
	// The auditor cannot submit or acknowledge.
	if st := h.call("POST", "/v1/documents", h.auditor, newDoc(orgA, []string{orgC}, "406"), &p); st != http.StatusForbidden {
		t.Errorf("auditor submit: %d, want 403", st)
	}
	if st := h.call("POST", "/v1/inbox/"+sub.ID+"/ack", h.auditor, nil, nil); st != http.StatusForbidden {
		t.Errorf("auditor ack: %d, want 403", st)
	}
	// No token, a wrong token → 401.
	if st := h.call("GET", "/v1/documents/"+sub.ID, "", nil, &p); st != http.StatusUnauthorized || p.Code != "unauthenticated" {
		t.Errorf("no token: %d %q", st, p.Code)
	}
	if st := h.call("GET", "/v1/documents/"+sub.ID, "nope", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("bad token: %d", st)
	}
	// A acknowledging a document not addressed to it → 404.
	if st := h.call("POST", "/v1/inbox/"+sub.ID+"/ack", h.tokens[orgA], nil, nil); st != http.StatusNotFound {
		t.Errorf("A acking B→C: %d, want 404", st)
	}
}

// Bad input: a 4xx problem document with a distinct code, nothing stored.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	h := startHub(t)
	good := string(newDoc(orgA, []string{orgC}, "500"))
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"not XML", []byte("this is not xml"), 400, "not_xml"},
		{"truncated XML", []byte(good[:len(good)/2]), 400, "not_xml"},
		{"unknown envelope", []byte(`<?xml version="1.0"?><invoice xmlns="urn:x"><total>1</total></invoice>`), 400, "unknown_envelope"},
		{"missing From", []byte(strings.Replace(good, "<edXML:OrganId>"+orgA+"</edXML:OrganId>", "", 1)), 400, "missing_from"},
		{"unknown recipient", newDoc(orgA, []string{"000.00.00.C99"}, "501"), 422, "unknown_recipient"},
		{"malformed organ code", newDoc(orgA, []string{"C 03; DROP"}, "502"), 400, "bad_organ_code"},
		{"over the limit", append([]byte(good), bytes.Repeat([]byte(" "), 1<<20)...), 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Title  string `json:"title"`
			}
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Status != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, p.Code, tc.status, tc.code)
			}
			if !strings.Contains(p.Title, "/") {
				t.Errorf("title %q is not bilingual", p.Title)
			}
		})
	}
	if n := h.count("documents") + h.count("deliveries") + h.documentEvents(); n != 0 {
		t.Fatalf("refusals stored %d rows", n)
	}
}

// kcat, an independent Kafka client, lists the hub's topics and reads an
// event from lt.events.
func TestKcatReadsOurTopics(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat not installed (CI installs it)") // CI installs every oracle: missing is a failure
		}
		t.Skip("kcat not installed (CI installs it)")
	}
	h := startHub(t)
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, []string{orgB}, "600"), &sub); st != http.StatusAccepted {
		t.Fatalf("submit: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	broker := h.broker.Addrs()[0]
	meta, err := exec.CommandContext(ctx, "kcat", "-b", broker, "-L").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v: %s", err, meta)
	}
	for _, topic := range []string{"lt.route", "lt.deliver", "lt.events", "lt.dead", "lt.security"} {
		if !strings.Contains(string(meta), fmt.Sprintf("topic %q", topic)) {
			t.Errorf("kcat -L does not list %s:\n%s", topic, meta)
		}
	}
	// lt.events is published from the evidence log, a little after the
	// event commits (the sequencer polls): read again until it is there.
	var out []byte
	found := false
	for !found && ctx.Err() == nil {
		out, err = exec.CommandContext(ctx, "kcat", "-C", "-b", broker, "-t", "lt.events", "-o", "beginning", "-e", "-q",
			"-f", "%k\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -C: %v: %s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			key, val, _ := strings.Cut(line, "\t")
			var ev struct {
				DocumentID string `json:"document_id"`
				Kind       string `json:"kind"`
				ID         int64  `json:"id"`
				LeafIndex  *int64 `json:"leaf_index"`
			}
			if key == sub.ID && json.Unmarshal([]byte(val), &ev) == nil && ev.DocumentID == sub.ID && ev.Kind == "accepted" &&
				ev.ID > 0 && ev.LeafIndex != nil {
				found = true
			}
		}
		if !found {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !found {
		t.Fatalf("kcat did not read the accepted event of %s from lt.events:\n%s", sub.ID, out)
	}
}
