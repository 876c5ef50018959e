package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/routing/bus"
	"lienthong/routing/deadline"
	"lienthong/routing/ledger"
)

// The edXML business flows end to end: statuses, recall, update and
// replacement through a real hub (PostgreSQL, the embedded broker, the API,
// webhook push and the pull inbox).

var flowDate = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func flowDocID(from, n string) string { return from + ",2026/11/22," + n + "/FLOW" }

func bizDoc(from string, to []string, n string, typ int, target string) []byte {
	return sample.BusinessEdXML(sample.Business{From: from, To: to, DocumentID: flowDocID(from, n), Type: typ,
		Target: target, Date: flowDate})
}

func statusDoc(from, addressee, docID, code string) []byte {
	return sample.StatusEdXML(sample.Status{From: from, Addressee: addressee, DocumentID: docID, Code: code, Date: flowDate})
}

type submitted struct {
	status    int
	ID        string `json:"id"`
	Code      string `json:"code"`
	Title     string `json:"title"`
	Duplicate bool   `json:"duplicate"`
}

// post submits raw as organ and decodes the answer (an id or a problem).
func (h *testHub) post(organ string, raw []byte) submitted {
	h.t.Helper()
	var s submitted
	s.status = h.call("POST", "/v1/documents", h.tokens[organ], raw, &s)
	return s
}

// mustAccept submits and wants 202.
func (h *testHub) mustAccept(organ string, raw []byte) string {
	h.t.Helper()
	s := h.post(organ, raw)
	if s.status != http.StatusAccepted || s.ID == "" {
		h.t.Fatalf("submit as %s: %d %q (%s)", organ, s.status, s.Code, s.Title)
	}
	return s.ID
}

type bizView struct {
	ID         string `json:"id"`
	Format     string `json:"format"`
	Recipients []struct {
		Organ    string `json:"organ"`
		State    string `json:"state"`
		Business *struct {
			State      string   `json:"state"`
			LastStatus string   `json:"last_status"`
			Statuses   []string `json:"statuses"`
			Recall     string   `json:"recall"`
		} `json:"business"`
	} `json:"recipients"`
	Business *struct {
		State         string     `json:"state"`
		RecallPending bool       `json:"recall_pending"`
		Version       int        `json:"version"`
		OriginalID    string     `json:"original_id"`
		SupersededBy  string     `json:"superseded_by"`
		DueAt         *time.Time `json:"due_at"`
		Overdue       []struct {
			Recipient string `json:"recipient"`
			Kind      string `json:"kind"`
		} `json:"overdue"`
		Related []struct {
			ID         string `json:"id"`
			StatusCode string `json:"status_code"`
		} `json:"related"`
	} `json:"business"`
}

func (h *testHub) view(id string) bizView {
	h.t.Helper()
	var v bizView
	if st := h.call("GET", "/v1/documents/"+id, h.auditor, nil, &v); st != 200 {
		h.t.Fatalf("GET document %s: %d", id, st)
	}
	if v.Business == nil {
		h.t.Fatalf("document %s has no business view", id)
	}
	return v
}

// biz returns the business state of one recipient of a document.
func (v bizView) biz(t *testing.T, organ string) (state, recall string, statuses []string) {
	t.Helper()
	for _, r := range v.Recipients {
		if r.Organ == organ {
			if r.Business == nil {
				t.Fatalf("recipient %s of %s has no business state", organ, v.ID)
			}
			return r.Business.State, r.Business.Recall, r.Business.Statuses
		}
	}
	t.Fatalf("%s is not a recipient of %s", organ, v.ID)
	return "", "", nil
}

type flowEvent struct {
	Kind      string          `json:"kind"`
	Recipient string          `json:"recipient"`
	Detail    json.RawMessage `json:"detail"`
}

func (h *testHub) eventsOf(id, kind string) []flowEvent {
	h.t.Helper()
	var evs struct {
		Events []flowEvent `json:"events"`
	}
	if st := h.call("GET", "/v1/documents/"+id+"/events", h.auditor, nil, &evs); st != 200 {
		h.t.Fatalf("events of %s: %d", id, st)
	}
	var out []flowEvent
	for _, e := range evs.Events {
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitPushed waits until the push organ's webhook has received id.
func (h *testHub) waitPushed(organ, id string) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range h.sink.Received(organ) {
			if r.DocumentID == id {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("%s never received %s by push; got %+v", organ, id, h.sink.Received(organ))
}

// waitInbox waits until the pull organ's inbox lists id.
func (h *testHub) waitInbox(organ, id string) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var inbox struct {
			Documents []struct {
				ID string `json:"id"`
			} `json:"documents"`
		}
		h.call("GET", "/v1/inbox", h.tokens[organ], nil, &inbox)
		for _, d := range inbox.Documents {
			if d.ID == id {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("%s never found %s in its inbox", organ, id)
}

// rows counts the rows a refusal must not add: documents, deliveries,
// business states and every event but those of the delivery pipeline, which
// keeps working on earlier documents meanwhile.
func (h *testHub) rows() int {
	return h.count("documents") + h.count("deliveries") + h.count("business_states") + h.count("overdue_marks") +
		h.count("events WHERE kind NOT IN ('routed', 'delivering', 'delivered', 'retrying', 'acknowledged', 'dead')")
}

// Statuses 01–06 from a pull recipient and 01, 02 from a push recipient are
// recorded per recipient on the original and relayed to the original sender
// (push); a status about a pull sender's document reaches its inbox.
func TestFlowStatusesRelayedToSender(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	h.waitStates(id, h.auditor, map[string]string{orgB: "delivered", orgC: "delivered"})
	if v := h.view(id); v.Business.State != ledger.BizPending {
		t.Fatalf("aggregate before any status: %q", v.Business.State)
	}

	wantState := map[string]string{"01": "arrived", "03": "registered", "04": "assigned", "05": "processing", "06": "completed"}
	var statusIDs []string
	for _, code := range []string{"01", "03", "04", "05", "06"} {
		sid := h.mustAccept(orgB, statusDoc(orgB, orgA, orig, code))
		statusIDs = append(statusIDs, sid)
		if st, _, _ := h.view(id).biz(t, orgB); st != wantState[code] {
			t.Fatalf("after %s: state of B %q, want %q", code, st, wantState[code])
		}
	}
	for _, code := range []string{"01", "02"} {
		statusIDs = append(statusIDs, h.mustAccept(orgC, statusDoc(orgC, orgA, orig, code)))
	}
	// Every status reaches the sender A through the normal delivery path.
	for _, sid := range statusIDs {
		h.waitPushed(orgA, sid)
		sv := h.view(sid)
		if sv.Format != "edxml-status" || sv.Business.OriginalID != id {
			t.Errorf("status %s: format %q original %q, want edxml-status linked to %s", sid, sv.Format, sv.Business.OriginalID, id)
		}
	}
	v := h.view(id)
	stB, _, codesB := v.biz(t, orgB)
	stC, _, codesC := v.biz(t, orgC)
	if stB != "completed" || !slices.Equal(codesB, []string{"01", "03", "04", "05", "06"}) {
		t.Errorf("B: %s %v", stB, codesB)
	}
	if stC != "refused" || !slices.Equal(codesC, []string{"01", "02"}) {
		t.Errorf("C: %s %v", stC, codesC)
	}
	if v.Business.State != "completed" { // refused is final and does not hold the aggregate back
		t.Errorf("aggregate %q, want completed", v.Business.State)
	}
	if len(v.Business.Related) != len(statusIDs) {
		t.Errorf("related %d, want %d", len(v.Business.Related), len(statusIDs))
	}
	// One status event per status, on the original, per recipient, in order.
	per := map[string][]string{}
	for _, e := range h.eventsOf(id, "status") {
		var d struct{ Code string }
		_ = json.Unmarshal(e.Detail, &d)
		per[e.Recipient] = append(per[e.Recipient], d.Code)
	}
	if !slices.Equal(per[orgB], codesB) || !slices.Equal(per[orgC], codesC) {
		t.Errorf("status events %v", per)
	}

	// 02 is also 06's sibling here: 01–06 are all covered. Now a pull sender:
	// B sends to C, C's statuses land in B's inbox.
	bid := h.mustAccept(orgB, bizDoc(orgB, []string{orgC}, "2", 0, ""))
	h.waitStates(bid, h.auditor, map[string]string{orgC: "delivered"})
	sid := h.mustAccept(orgC, statusDoc(orgC, orgB, flowDocID(orgB, "2"), "01"))
	h.waitInbox(orgB, sid)
}

// The same status twice is one status: 200 with the first id, one event, one
// relay — whether the bytes are identical or the package was written again.
func TestFlowRepeatedStatusIsIdempotent(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "1", 0, ""))
	first := h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "01"))
	h.waitPushed(orgA, first)
	before := h.rows()

	again := h.post(orgC, statusDoc(orgC, orgA, orig, "01"))
	rewritten := h.post(orgC, sample.StatusEdXML(sample.Status{From: orgC, Addressee: orgA, DocumentID: orig, Code: "01",
		Description: "Đã đến (gửi lại / sent again)", Date: flowDate.Add(time.Hour)}))
	for name, s := range map[string]submitted{"same bytes": again, "rewritten": rewritten} {
		if s.status != http.StatusOK || s.ID != first || !s.Duplicate {
			t.Errorf("%s: %d id %s duplicate %v, want 200 %s", name, s.status, s.ID, s.Duplicate, first)
		}
	}
	if n := len(h.eventsOf(id, "status")); n != 1 {
		t.Errorf("%d status events, want 1", n)
	}
	if after := h.rows(); after != before {
		t.Errorf("a repeated status stored %d rows", after-before)
	}
	// The recall answer is idempotent too.
	h.mustAccept(orgA, statusDoc(orgA, orgC, orig, "13"))
	refuse := h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "16"))
	if s := h.post(orgC, sample.StatusEdXML(sample.Status{From: orgC, Addressee: orgA, DocumentID: orig, Code: "16",
		Date: flowDate.Add(2 * time.Hour)})); s.status != http.StatusOK || s.ID != refuse {
		t.Errorf("second 16: %d %s, want 200 %s", s.status, s.ID, refuse)
	}
	if n := len(h.eventsOf(id, "recall_refused")); n != 1 {
		t.Errorf("%d recall_refused events, want 1", n)
	}
	time.Sleep(300 * time.Millisecond) // a second relay, if any, would have happened by now
	seen := 0
	for _, r := range h.sink.Received(orgA) {
		if r.DocumentID == first {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("the sender received status 01 %d times, want 1", seen)
	}
}

// Recall accepted: 13 from the sender reaches the recipient; 15 takes the
// document back from it (state recalled) and reaches the sender; after that
// any status on it is refused. The same through a revocation (type 1).
func TestFlowRecallAccepted(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "01"))

	ask := h.mustAccept(orgA, statusDoc(orgA, orgB, orig, "13"))
	h.waitInbox(orgB, ask) // the request reaches the recipient
	v := h.view(id)
	if st, recall, _ := v.biz(t, orgB); st != "arrived" || recall != "pending" || !v.Business.RecallPending {
		t.Fatalf("after 13: %s %s pending=%v", st, recall, v.Business.RecallPending)
	}
	yes := h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "15"))
	h.waitPushed(orgA, yes)
	v = h.view(id)
	if st, recall, _ := v.biz(t, orgB); st != "recalled" || recall != "accepted" {
		t.Fatalf("after 15: %s %s", st, recall)
	}
	if s := h.post(orgB, statusDoc(orgB, orgA, orig, "03")); s.status != http.StatusConflict || s.Code != ledger.FlowRecalled {
		t.Errorf("status after recall: %d %q", s.status, s.Code)
	}

	// A revocation document (type 1) asks C; C answers 15 about the original.
	rev := h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "9", 1, orig))
	h.waitPushed(orgC, rev)
	if _, recall, _ := h.view(id).biz(t, orgC); recall != "pending" {
		t.Fatalf("after the revocation: recall %q", recall)
	}
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "15"))
	v = h.view(id)
	if st, _, _ := v.biz(t, orgC); st != "recalled" || v.Business.State != "recalled" {
		t.Fatalf("C %s, aggregate %s; want both recalled", st, v.Business.State)
	}
	kinds := []string{}
	for _, e := range h.eventsOf(id, "") {
		if strings.HasPrefix(e.Kind, "recall") {
			kinds = append(kinds, e.Kind+":"+e.Recipient)
		}
	}
	want := []string{"recall_requested:" + orgB, "recall_accepted:" + orgB, "recall_requested:" + orgC, "recall_accepted:" + orgC}
	if !slices.Equal(kinds, want) {
		t.Errorf("recall events %v, want %v", kinds, want)
	}
}

// Recall refused: 16 keeps the state, the recall is refused, processing goes on.
func TestFlowRecallRefused(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "1", 0, ""))
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "01"))
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "03"))
	ask := h.mustAccept(orgA, statusDoc(orgA, orgC, orig, "13"))
	h.waitPushed(orgC, ask)
	no := h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "16"))
	h.waitPushed(orgA, no)
	v := h.view(id)
	if st, recall, _ := v.biz(t, orgC); st != "registered" || recall != "refused" || v.Business.RecallPending {
		t.Fatalf("after 16: %s %s pending=%v", st, recall, v.Business.RecallPending)
	}
	if s := h.post(orgC, statusDoc(orgC, orgA, orig, "15")); s.status != http.StatusConflict || s.Code != ledger.FlowNoPendingRecall {
		t.Errorf("15 after 16: %d %q", s.status, s.Code)
	}
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig, "05"))
	if st, _, _ := h.view(id).biz(t, orgC); st != "processing" {
		t.Errorf("processing after the refused recall: %s", st)
	}
	if n := len(h.eventsOf(id, "recall_refused")); n != 1 {
		t.Errorf("%d recall_refused events", n)
	}
}

// Update (type 2) under a new DocumentId: delivered as a document of its own,
// linked to the original, which becomes updated for the recipients it names.
func TestFlowUpdate(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "01"))
	upd := h.mustAccept(orgA, bizDoc(orgA, []string{orgB}, "2", 2, orig))
	h.waitInbox(orgB, upd)
	v := h.view(id)
	if st, _, _ := v.biz(t, orgB); st != "updated" {
		t.Errorf("B: %s, want updated", st)
	}
	if st, _, _ := v.biz(t, orgC); st != "pending" { // not addressed by the update
		t.Errorf("C: %s, want pending", st)
	}
	if v.Business.SupersededBy != upd {
		t.Errorf("superseded_by %q, want %s", v.Business.SupersededBy, upd)
	}
	if u := h.view(upd); u.Business.OriginalID != id || u.Business.State != "pending" {
		t.Errorf("update: original %q state %q", u.Business.OriginalID, u.Business.State)
	}
	if e := h.eventsOf(id, "updated"); len(e) != 1 || e[0].Recipient != orgB {
		t.Errorf("updated events %+v", e)
	}
	// Statuses go to the new version now.
	if s := h.post(orgB, statusDoc(orgB, orgA, orig, "03")); s.status != http.StatusConflict || s.Code != ledger.FlowSuperseded {
		t.Errorf("status on the updated original: %d %q", s.status, s.Code)
	}
	h.mustAccept(orgB, statusDoc(orgB, orgA, flowDocID(orgA, "2"), "01"))
	// Updating the superseded original again is refused.
	if s := h.post(orgA, bizDoc(orgA, []string{orgB}, "3", 2, orig)); s.status != http.StatusConflict || s.Code != ledger.FlowSuperseded {
		t.Errorf("second update of the original: %d %q", s.status, s.Code)
	}
}

// Idempotency of business content: the same DocumentId with other content is
// a conflict, unless it is an update of that document, which becomes its
// version 2; repeats of either give the same id.
func TestFlowUpdateUnderSameDocumentIDIsANewVersion(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	v1raw := bizDoc(orgA, []string{orgB}, "1", 0, "")
	id := h.mustAccept(orgA, v1raw)
	other := sample.BusinessEdXML(sample.Business{From: orgA, To: []string{orgB}, DocumentID: orig, Subject: "Nội dung khác", Date: flowDate})
	if s := h.post(orgA, other); s.status != http.StatusConflict || s.Code != "document_id_conflict" {
		t.Fatalf("other content, type 0: %d %q", s.status, s.Code)
	}
	v2raw := sample.BusinessEdXML(sample.Business{From: orgA, To: []string{orgB}, DocumentID: orig, Type: 2, Target: orig,
		Subject: "Bản cập nhật", Date: flowDate})
	v2 := h.mustAccept(orgA, v2raw)
	for name, raw := range map[string][]byte{"v1": v1raw, "v2": v2raw} {
		want := map[string]string{"v1": id, "v2": v2}[name]
		if s := h.post(orgA, raw); s.status != http.StatusOK || s.ID != want {
			t.Errorf("repeat of %s: %d %s, want 200 %s", name, s.status, s.ID, want)
		}
	}
	nv := h.view(v2)
	if nv.Business.Version != 2 || nv.Business.OriginalID != id {
		t.Errorf("v2: version %d original %q", nv.Business.Version, nv.Business.OriginalID)
	}
	if st, _, _ := h.view(id).biz(t, orgB); st != "updated" {
		t.Errorf("v1 for B: %s", st)
	}
	// A status about the DocumentId is about the latest version B received.
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "01"))
	if st, _, _ := h.view(v2).biz(t, orgB); st != "arrived" {
		t.Errorf("v2 for B after 01: %s", st)
	}
	if n := h.count("documents"); n != 3 {
		t.Errorf("%d documents, want 3 (v1, v2, status)", n)
	}
}

// Replacement (type 3): the original becomes replaced.
func TestFlowReplacement(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	rep := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "2", 3, orig))
	h.waitPushed(orgC, rep)
	v := h.view(id)
	for _, o := range []string{orgB, orgC} {
		if st, _, _ := v.biz(t, o); st != "replaced" {
			t.Errorf("%s: %s, want replaced", o, st)
		}
	}
	if v.Business.State != "replaced" || v.Business.SupersededBy != rep {
		t.Errorf("aggregate %q superseded_by %q", v.Business.State, v.Business.SupersededBy)
	}
	if e := h.eventsOf(id, "replaced"); len(e) != 2 {
		t.Errorf("replaced events %+v", e)
	}
	if s := h.post(orgC, statusDoc(orgC, orgA, orig, "01")); s.status != http.StatusConflict || s.Code != ledger.FlowSuperseded {
		t.Errorf("status on the replaced original: %d %q", s.status, s.Code)
	}
}

// Every illegal transition is a typed problem (bilingual title) and stores
// nothing: no document, delivery, event or business state.
func TestFlowIllegalTransitionsAreRefused(t *testing.T) {
	h := startHub(t)
	orig := flowDocID(orgA, "1")
	h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "01"))
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "03"))
	h.mustAccept(orgB, statusDoc(orgB, orgA, orig, "05"))
	recalled := flowDocID(orgA, "2")
	h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "2", 0, ""))
	h.mustAccept(orgA, statusDoc(orgA, orgC, recalled, "13"))
	h.mustAccept(orgC, statusDoc(orgC, orgA, recalled, "15"))
	updated := flowDocID(orgA, "3")
	h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "3", 0, ""))
	h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "4", 2, updated))
	h.mustAccept(orgA, bizDoc(orgA, []string{orgD}, "11", 0, ""))
	h.mustAccept(orgA, bizDoc(orgA, []string{orgD}, "12", 1, flowDocID(orgA, "11")))

	cases := []struct {
		name   string
		as     string
		raw    []byte
		status int
		code   string
	}{
		{"status for an unknown original", orgB, statusDoc(orgB, orgA, flowDocID(orgA, "404"), "01"), 422, ledger.FlowUnknownOriginal},
		{"status naming another sender", orgB, statusDoc(orgB, orgC, orig, "01"), 422, ledger.FlowUnknownOriginal},
		{"status from an organ that is not a recipient", orgD, statusDoc(orgD, orgA, orig, "01"), 403, ledger.FlowNotRecipient},
		{"02 before 01", orgC, statusDoc(orgC, orgA, orig, "02"), 409, ledger.FlowIllegalTransition},
		{"03 before 01", orgC, statusDoc(orgC, orgA, orig, "03"), 409, ledger.FlowIllegalTransition},
		{"04 after 05 (backwards)", orgB, statusDoc(orgB, orgA, orig, "04"), 409, ledger.FlowIllegalTransition},
		{"15 without a pending recall", orgB, statusDoc(orgB, orgA, orig, "15"), 409, ledger.FlowNoPendingRecall},
		{"16 without a pending recall", orgC, statusDoc(orgC, orgA, orig, "16"), 409, ledger.FlowNoPendingRecall},
		{"13 to an organ that is not a recipient", orgA, statusDoc(orgA, orgD, orig, "13"), 403, ledger.FlowNotRecipient},
		{"13 for an unknown original", orgA, statusDoc(orgA, orgB, flowDocID(orgA, "405"), "13"), 422, ledger.FlowUnknownOriginal},
		{"status on a recalled document", orgC, statusDoc(orgC, orgA, recalled, "01"), 409, ledger.FlowRecalled},
		{"recall of a recalled document", orgA, sample.StatusEdXML(sample.Status{From: orgA, Addressee: orgC, DocumentID: recalled,
			Code: "13", Description: "Yêu cầu lấy lại lần nữa", Date: flowDate}), 409, ledger.FlowRecalled},
		{"update of a recalled document", orgA, bizDoc(orgA, []string{orgC}, "5", 2, recalled), 409, ledger.FlowRecalled},
		{"status on an updated document", orgC, statusDoc(orgC, orgA, updated, "01"), 409, ledger.FlowSuperseded},
		{"update of an unknown original", orgA, bizDoc(orgA, []string{orgB}, "6", 2, flowDocID(orgA, "406")), 422, ledger.FlowUnknownOriginal},
		{"replacement of an unknown original", orgA, bizDoc(orgA, []string{orgB}, "7", 3, flowDocID(orgA, "407")), 422, ledger.FlowUnknownOriginal},
		{"revocation of an unknown original", orgA, bizDoc(orgA, []string{orgB}, "8", 1, flowDocID(orgA, "408")), 422, ledger.FlowUnknownOriginal},
		{"revocation sent to a non-recipient", orgA, bizDoc(orgA, []string{orgD}, "9", 1, orig), 403, ledger.FlowNotRecipient},
		{"01 about a revocation", orgD, statusDoc(orgD, orgA, flowDocID(orgA, "12"), "01"), 409, ledger.FlowIllegalTransition},
		{"update of another organ's document", orgB, bizDoc(orgB, []string{orgC}, "10", 2, orig), 422, ledger.FlowUnknownOriginal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.rows()
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytesReader(tc.raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[tc.as])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, p.Code, p.Detail, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(p.Title, " / ") || p.Detail == "" {
				t.Errorf("title %q detail %q: want bilingual title and a detail", p.Title, p.Detail)
			}
			if after := h.rows(); after != before {
				t.Errorf("refusal stored %d rows", after-before)
			}
		})
	}
}

// fakeClock is the deadline checker's injected clock.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// startDeadlineHub starts a hub whose deadline checker runs on clk.
func startDeadlineHub(t *testing.T, clk *fakeClock) *testHub {
	return startHub(t, func(c *Config) { c.Deadlines = deadline.Config{Now: clk.Now, Every: 20 * time.Millisecond} })
}

// waitOverdue waits until the document has an overdue mark of kind for organ.
func (h *testHub) waitOverdue(id, organ, kind string) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range h.view(id).Business.Overdue {
			if m.Recipient == organ && m.Kind == kind {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("no %s overdue for %s on %s: %+v", kind, organ, id, h.view(id).Business.Overdue)
}

// overdueOf returns the overdue events of a document as recipient:kind.
func (h *testHub) overdueOf(id string) []string {
	var out []string
	for _, e := range h.eventsOf(id, "overdue") {
		var d struct{ Kind, Notify string }
		_ = json.Unmarshal(e.Detail, &d)
		out = append(out, e.Recipient+":"+d.Kind+":"+d.Notify)
	}
	slices.Sort(out)
	return out
}

// readOverdueFromKafka reads lt.events until it has seen an overdue event of
// every wanted "document/recipient:kind:notify".
func readOverdueFromKafka(t *testing.T, h *testHub, want ...string) {
	t.Helper()
	rd := bus.NewReader(bus.Config{Brokers: h.broker.Addrs()}, "events", "flows-test-"+t.Name())
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	for len(missing) > 0 {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("lt.events: %v; never saw %v", err, missing)
		}
		var ev struct {
			DocumentID string `json:"document_id"`
			Recipient  string `json:"recipient"`
			Kind       string `json:"kind"`
			Detail     struct{ Kind, Notify string }
		}
		if json.Unmarshal(m.Value, &ev) == nil && ev.Kind == "overdue" && string(m.Key) == ev.DocumentID {
			delete(missing, ev.DocumentID+"/"+ev.Recipient+":"+ev.Detail.Kind+":"+ev.Detail.Notify)
		}
	}
}

// Not delivered within the recipient's delivery deadline → overdue, once,
// on lt.events for the sender; a recipient that got it in time is not.
func TestFlowOverdueDelivery(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	h := startDeadlineHub(t, clk)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(down.Close)
	const orgE = "000.00.00.C05"
	ctx := context.Background()
	if err := h.l.UpsertOrgan(ctx, ledger.Organ{Code: orgE, Name: "Đơn vị không nhận (test)", Channel: "push",
		Endpoint: down.URL, Active: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.l.SetDeadlines(ctx, orgE, ledger.Deadlines{DeliveryWithin: time.Hour, AckWithin: 48 * time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgC, orgE}, "1", 0, ""))
	h.waitStates(id, h.auditor, map[string]string{orgC: "delivered", orgE: "retrying"})
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig1(), "01"))

	clk.Set(time.Now().Add(59 * time.Minute)) // E's deadline is 1h, the default 4h
	if n, err := h.l.CheckDeadlines(ctx, clk.Now(), 0); err != nil || n != 0 {
		t.Fatalf("before the deadline: %d overdue, %v", n, err)
	}
	clk.Set(time.Now().Add(61 * time.Minute))
	h.waitOverdue(id, orgE, ledger.OverdueDelivery)
	if n, err := h.l.CheckDeadlines(ctx, clk.Now(), 0); err != nil || n != 0 {
		t.Fatalf("a second check reported %d again (%v)", n, err)
	}
	if got := h.overdueOf(id); !slices.Equal(got, []string{orgE + ":delivery:" + orgA}) {
		t.Errorf("overdue events %v", got)
	}
	readOverdueFromKafka(t, h, id+"/"+orgE+":delivery:"+orgA)
}

func orig1() string { return flowDocID(orgA, "1") }

// Delivered but no status 01 within the acknowledgement deadline → overdue
// for that recipient only.
func TestFlowOverdueAcknowledgement(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	h := startDeadlineHub(t, clk)
	ctx := context.Background()
	if err := h.l.SetDeadlines(ctx, ledger.DefaultDeadlineOrgan, ledger.Deadlines{DeliveryWithin: 4 * time.Hour, AckWithin: time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB, orgC}, "1", 0, ""))
	h.waitStates(id, h.auditor, map[string]string{orgB: "delivered", orgC: "delivered"})
	h.mustAccept(orgC, statusDoc(orgC, orgA, orig1(), "01"))
	// B takes it from its inbox (transport ack) but sends no status 01.
	if st := h.call("POST", "/v1/inbox/"+id+"/ack", h.tokens[orgB], nil, nil); st != 200 {
		t.Fatalf("inbox ack: %d", st)
	}
	clk.Set(time.Now().Add(2 * time.Hour))
	h.waitOverdue(id, orgB, ledger.OverdueAck)
	if n, err := h.l.CheckDeadlines(ctx, clk.Now(), 0); err != nil || n != 0 {
		t.Fatalf("a second check reported %d again (%v)", n, err)
	}
	if got := h.overdueOf(id); !slices.Equal(got, []string{orgB + ":acknowledgement:" + orgA}) {
		t.Errorf("overdue events %v, want only B's acknowledgement", got)
	}
	readOverdueFromKafka(t, h, id+"/"+orgB+":acknowledgement:"+orgA)
}

// Past DueDate without status 06 → overdue for the recipients not done.
func TestFlowOverdueDueDate(t *testing.T) {
	now := time.Now()
	clk := &fakeClock{t: now}
	h := startDeadlineHub(t, clk)
	vn := time.FixedZone("ICT", 7*3600)
	due := now.In(vn).Format("2006/01/02") // due at the end of today, Vietnam time
	raw := sample.BusinessEdXML(sample.Business{From: orgA, To: []string{orgB, orgC}, DocumentID: orig1(), DueDate: due, Date: flowDate})
	id := h.mustAccept(orgA, raw)
	h.waitStates(id, h.auditor, map[string]string{orgB: "delivered", orgC: "delivered"})
	v := h.view(id)
	endOfDay := time.Date(now.In(vn).Year(), now.In(vn).Month(), now.In(vn).Day()+1, 0, 0, 0, 0, vn)
	if v.Business.DueAt == nil || !v.Business.DueAt.Equal(endOfDay) {
		t.Fatalf("due_at %v, want %v", v.Business.DueAt, endOfDay)
	}
	for _, c := range []string{"01", "03"} {
		h.mustAccept(orgB, statusDoc(orgB, orgA, orig1(), c))
	}
	for _, c := range []string{"01", "03", "06"} {
		h.mustAccept(orgC, statusDoc(orgC, orgA, orig1(), c))
	}
	clk.Set(endOfDay.Add(-time.Minute))
	ctx := context.Background()
	if n, err := h.l.CheckDeadlines(ctx, clk.Now(), 0); err != nil {
		t.Fatal(err)
	} else if got := h.overdueOf(id); len(got) != 0 {
		t.Fatalf("before the due date: %v (%d)", got, n)
	}
	clk.Set(endOfDay.Add(time.Minute))
	h.waitOverdue(id, orgB, ledger.OverdueDueDate)
	if got := h.overdueOf(id); !slices.Equal(got, []string{orgB + ":due_date:" + orgA}) {
		t.Errorf("overdue events %v, want only B's due date (C completed)", got)
	}
	readOverdueFromKafka(t, h, id+"/"+orgB+":due_date:"+orgA)
}

// Twenty concurrent submissions of status 01, each written anew (other
// bytes), make one status: one document, one event, one id for all.
func TestFlowConcurrentRepeatedStatusesMakeOne(t *testing.T) {
	h := startHub(t)
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgC}, "1", 0, ""))
	var wg sync.WaitGroup
	got := make([]submitted, 20)
	for i := range got {
		raw := sample.StatusEdXML(sample.Status{From: orgC, Addressee: orgA, DocumentID: orig1(), Code: "01",
			Date: flowDate.Add(time.Duration(i) * time.Second)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytesReader(raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgC])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got[i].status = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&got[i])
		}()
	}
	wg.Wait()
	accepted := 0
	for _, s := range got {
		if s.ID == "" || s.ID != got[0].ID {
			t.Fatalf("answers differ: %+v", got)
		}
		if s.status == http.StatusAccepted {
			accepted++
		} else if s.status != http.StatusOK {
			t.Fatalf("answer %d", s.status)
		}
	}
	if accepted != 1 {
		t.Errorf("%d answers 202, want 1 (the others 200)", accepted)
	}
	if n := h.count("documents WHERE format = 'edxml-status'"); n != 1 {
		t.Errorf("%d status documents, want 1", n)
	}
	if n := len(h.eventsOf(id, "status")); n != 1 {
		t.Errorf("%d status events, want 1", n)
	}
}

// postStatusJSON reports a status through the JSON route.
func (h *testHub) postStatusJSON(organ, id, body string) submitted {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.api+"/v1/documents/"+id+"/status", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.tokens[organ])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	s := submitted{status: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return s
}

// The JSON route writes the edXML status package for the caller and runs it
// through the same path: recorded, relayed, idempotent, refused alike.
func TestFlowStatusThroughJSONRoute(t *testing.T) {
	h := startHub(t)
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB}, "1", 0, ""))
	s := h.postStatusJSON(orgB, id, `{"code":"01","description":"Đã đến","staff":"Lê Văn Mẫu"}`)
	if s.status != http.StatusAccepted {
		t.Fatalf("01 by JSON: %d %q %s", s.status, s.Code, s.Title)
	}
	h.waitPushed(orgA, s.ID)
	// What was stored and relayed is an edXML status package from B about the original.
	var content []byte
	req, _ := http.NewRequest("GET", h.api+"/v1/documents/"+s.ID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	content, _ = readAll(resp)
	if !strings.Contains(string(content), "<edXML:StatusCode>01</edXML:StatusCode>") ||
		!strings.Contains(string(content), "<edXML:DocumentId>"+orig1()+"</edXML:DocumentId>") {
		t.Fatalf("stored package:\n%s", content)
	}
	if again := h.postStatusJSON(orgB, id, `{"code":"01"}`); again.status != http.StatusOK || again.ID != s.ID {
		t.Errorf("repeat by JSON: %d %s, want 200 %s", again.status, again.ID, s.ID)
	}
	if st, _, _ := h.view(id).biz(t, orgB); st != "arrived" {
		t.Errorf("state %s", st)
	}
	// Recall by JSON (the only recipient is the default), answered by JSON.
	if r := h.postStatusJSON(orgA, id, `{"code":"13","description":"Gửi nhầm"}`); r.status != http.StatusAccepted {
		t.Fatalf("13 by JSON: %d %q", r.status, r.Code)
	}
	if r := h.postStatusJSON(orgB, id, `{"code":"15"}`); r.status != http.StatusAccepted {
		t.Fatalf("15 by JSON: %d %q", r.status, r.Code)
	}
	if st, _, _ := h.view(id).biz(t, orgB); st != "recalled" {
		t.Errorf("state %s, want recalled", st)
	}
	for _, tc := range []struct {
		name, as, body string
		status         int
		code           string
	}{
		{"status on the recalled document", orgB, `{"code":"03"}`, 409, ledger.FlowRecalled},
		{"unknown code", orgB, `{"code":"07"}`, 400, "bad_status"},
		{"not JSON", orgB, `code=01`, 400, "bad_request"},
		{"a document the caller is no party to", orgD, `{"code":"01"}`, 404, "not_found"},
		{"the sender reporting 01 on its own document", orgA, `{"code":"01"}`, 403, ledger.FlowNotRecipient},
	} {
		before := h.rows()
		if r := h.postStatusJSON(tc.as, id, tc.body); r.status != tc.status || r.Code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.status, r.Code, tc.status, tc.code)
		}
		if after := h.rows(); after != before {
			t.Errorf("%s: stored %d rows", tc.name, after-before)
		}
	}
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b strings.Builder
	_, err := io.Copy(&b, resp.Body)
	return []byte(b.String()), err
}

// Operators set the deadlines per organ; nobody else may.
func TestFlowDeadlineSettingsByOperator(t *testing.T) {
	h := startHub(t)
	const op = "tok-operator"
	if err := h.l.AddPrincipal(context.Background(), ledger.Principal{Kind: ledger.RoleOperator, Name: "op"}, op, nil); err != nil {
		t.Fatal(err)
	}
	put := func(token, organ, body string) submitted {
		req, _ := http.NewRequest("PUT", h.api+"/v1/admin/deadlines/"+organ, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		s := submitted{status: resp.StatusCode}
		_ = json.NewDecoder(resp.Body).Decode(&s)
		return s
	}
	if s := put(op, orgB, `{"delivery_within":"90m","ack_within":"2h"}`); s.status != 200 {
		t.Fatalf("operator PUT: %d %q", s.status, s.Code)
	}
	if s := put(op, "*", `{"delivery_within":"3h","ack_within":"12h"}`); s.status != 200 {
		t.Fatalf("operator PUT defaults: %d %q", s.status, s.Code)
	}
	var list struct {
		Deadlines []struct{ Organ, DeliveryWithin, AckWithin string } `json:"deadlines"`
	}
	if st := h.call("GET", "/v1/admin/deadlines", op, nil, &list); st != 200 {
		t.Fatalf("GET: %d", st)
	}
	got := []string{}
	for _, d := range list.Deadlines {
		got = append(got, d.Organ)
	}
	if !slices.Equal(got, []string{"*", orgB}) {
		t.Errorf("deadlines %+v", list.Deadlines)
	}
	for _, tc := range []struct {
		name, token, organ, body string
		status                   int
		code                     string
	}{
		{"an organ", h.tokens[orgA], orgB, `{"delivery_within":"1h","ack_within":"1h"}`, 403, "forbidden"},
		{"the auditor", h.auditor, orgB, `{"delivery_within":"1h","ack_within":"1h"}`, 403, "forbidden"},
		{"bad duration", op, orgB, `{"delivery_within":"soon","ack_within":"1h"}`, 400, "bad_request"},
		{"negative", op, orgB, `{"delivery_within":"-1h","ack_within":"1h"}`, 400, "bad_request"},
		{"unknown organ", op, "000.00.00.C99", `{"delivery_within":"1h","ack_within":"1h"}`, 404, "not_found"},
	} {
		if s := put(tc.token, tc.organ, tc.body); s.status != tc.status || s.Code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, s.status, s.Code, tc.status, tc.code)
		}
	}
	// The setting is what the checker uses: B's 90 minutes, not the 3 h default.
	id := h.mustAccept(orgA, bizDoc(orgA, []string{orgB}, "1", 0, ""))
	var at time.Time
	if err := h.l.Pool().QueryRow(context.Background(), `SELECT received_at FROM documents WHERE id = $1`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	h.waitStates(id, h.auditor, map[string]string{orgB: "delivered"})
	if _, err := h.l.Pool().Exec(context.Background(), `UPDATE deliveries SET delivered_at = NULL WHERE document_id = $1`, id); err != nil {
		t.Fatal(err) // pretend it was never delivered
	}
	if n, err := h.l.CheckDeadlines(context.Background(), at.Add(91*time.Minute), 0); err != nil || n != 1 {
		t.Fatalf("B's own delivery deadline: %d %v", n, err)
	}
}

// The synthetic official-shape packages of testdata/edxml (status-01 … 16,
// revocation, update, replacement, all about 000.00.00.C01,2026/02/20,9/VPTN-TH)
// drive the flows through the hub as they are.
func TestFlowWithTheEdXMLFixtures(t *testing.T) {
	const orig = "000.00.00.C01,2026/02/20,9/VPTN-TH"
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "edxml", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	original := func(h *testHub) string {
		return h.mustAccept(orgA, sample.BusinessEdXML(sample.Business{From: orgA, To: []string{orgB}, DocumentID: orig, Date: flowDate}))
	}
	t.Run("statuses and recall", func(t *testing.T) {
		h := startHub(t)
		id := original(h)
		steps := []struct{ file, as, state, recall string }{
			{"status-01.edxml", orgB, "arrived", ""},
			{"status-03.edxml", orgB, "registered", ""},
			{"status-04.edxml", orgB, "assigned", ""},
			{"status-05.edxml", orgB, "processing", ""},
			{"status-13.edxml", orgA, "processing", "pending"},
			{"status-16.edxml", orgB, "processing", "refused"},
			{"revocation.edxml", orgA, "processing", "pending"},
			{"status-15.edxml", orgB, "recalled", "accepted"},
		}
		for _, s := range steps {
			h.mustAccept(s.as, fixture(s.file))
			if st, recall, _ := h.view(id).biz(t, orgB); st != s.state || recall != s.recall {
				t.Fatalf("after %s: %s/%q, want %s/%q", s.file, st, recall, s.state, s.recall)
			}
		}
		if s := h.post(orgB, fixture("status-06.edxml")); s.status != http.StatusConflict || s.Code != ledger.FlowRecalled {
			t.Errorf("status-06 after the recall: %d %q", s.status, s.Code)
		}
		if s := h.post(orgA, fixture("update.edxml")); s.status != http.StatusConflict || s.Code != ledger.FlowRecalled {
			t.Errorf("update of the recalled document: %d %q", s.status, s.Code)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		h := startHub(t)
		id := original(h)
		if s := h.post(orgB, fixture("status-02.edxml")); s.status != http.StatusConflict || s.Code != ledger.FlowIllegalTransition {
			t.Fatalf("status-02 before 01: %d %q", s.status, s.Code)
		}
		h.mustAccept(orgB, fixture("status-01.edxml"))
		h.mustAccept(orgB, fixture("status-02.edxml"))
		if st, _, _ := h.view(id).biz(t, orgB); st != "refused" {
			t.Errorf("state %s", st)
		}
	})
	t.Run("update, then replacement of the superseded original", func(t *testing.T) {
		h := startHub(t)
		id := original(h)
		upd := h.mustAccept(orgA, fixture("update.edxml"))
		if v := h.view(id); v.Business.SupersededBy != upd {
			t.Fatalf("superseded_by %q, want %s", v.Business.SupersededBy, upd)
		}
		if st, _, _ := h.view(id).biz(t, orgB); st != "updated" {
			t.Errorf("state %s", st)
		}
		if s := h.post(orgA, fixture("replacement.edxml")); s.status != http.StatusConflict || s.Code != ledger.FlowSuperseded {
			t.Errorf("replacement of the updated original: %d %q", s.status, s.Code)
		}
	})
	t.Run("replacement", func(t *testing.T) {
		h := startHub(t)
		id := original(h)
		h.mustAccept(orgA, fixture("replacement.edxml"))
		if st, _, _ := h.view(id).biz(t, orgB); st != "replaced" {
			t.Errorf("state %s", st)
		}
	})
	t.Run("unknown original", func(t *testing.T) {
		h := startHub(t)
		original(h)
		if s := h.post(orgB, fixture("status-unknown-original.edxml")); s.status != http.StatusUnprocessableEntity || s.Code != ledger.FlowUnknownOriginal {
			t.Errorf("status-unknown-original: %d %q", s.status, s.Code)
		}
	})
}
