package delivery

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"lienthong/adapters/webhook"
	"lienthong/routing/ledger"
)

// recorder is a push endpoint that records the sequence numbers it gets and
// fails the first attempt of the sequences in fail.
type recorder struct {
	mu     sync.Mutex
	seqs   []int64
	bodies map[int64]string // by sequence, the last body received
	fail   map[int64]bool
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, _ := strconv.ParseInt(r.Header.Get(webhook.HeaderSequence), 10, 64)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail[seq] && r.Header.Get(webhook.HeaderAttempt) == "1" {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.seqs = append(rc.seqs, seq)
	b, _ := io.ReadAll(r.Body)
	if rc.bodies == nil {
		rc.bodies = map[int64]string{}
	}
	rc.bodies[seq] = string(b)
}

// Sequence numbers follow acceptance; a task that arrives before those of
// earlier documents (even one not routed yet) brings them forward, so first
// attempts go in acceptance order; a document in retry does not hold the
// later ones back.
func TestFirstAttemptsInAcceptanceOrder(t *testing.T) {
	ctx := context.Background()
	rc := &recorder{fail: map[int64]bool{4: true}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	const recp = "000.00.00.R10"
	r := newRig(t, map[string]string{recp: srv.URL}, nil)

	accept := func(n int) string {
		raw := []byte(fmt.Sprintf("<o n=%q/>", fmt.Sprint(n)))
		sum := sha256.Sum256(raw)
		acc, err := r.l.Accept(ctx, ledger.NewDocument{Sender: sender, DocRef: fmt.Sprintf("o-%d", n), Format: "edxml",
			Recipients: []string{recp}, Raw: raw, SHA256: sum[:]})
		if err != nil {
			t.Fatal(err)
		}
		return acc.ID
	}
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = accept(i + 1)
	}
	// Documents 2, 3 and 4 are routed, 1 is not yet; the task of 3 comes first.
	if _, err := r.l.Route(ctx, ids[1:4], r.l.Organ); err != nil {
		t.Fatal(err)
	}
	task := func(id string) ledger.DeliverMessage {
		var m ledger.DeliverMessage
		if err := r.l.Pool().QueryRow(ctx, `SELECT id, document_id::text, recipient, seq FROM deliveries
			WHERE document_id = $1`, id).Scan(&m.DeliveryID, &m.DocumentID, &m.Recipient, &m.Sequence); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i, id := range ids {
		if m := task(id); m.Sequence != int64(i+1) {
			t.Fatalf("document %d accepted as sequence %d", i+1, m.Sequence)
		}
	}
	r.w.handle(ctx, task(ids[2]))
	if want := []int64{1, 2, 3}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("delivered %v, want %v", rc.seqs, want)
	}
	// 4 fails its first attempt and waits for its retry; 5 and 6 go on.
	r.w.handle(ctx, task(ids[3]))
	if _, err := r.l.Route(ctx, ids[4:], r.l.Organ); err != nil {
		t.Fatal(err)
	}
	r.w.handle(ctx, task(ids[5]))
	if want := []int64{1, 2, 3, 5, 6}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("delivered %v, want %v", rc.seqs, want)
	}
	if st := r.row(task(ids[3]).DeliveryID).state; st != ledger.StateRetrying {
		t.Fatalf("document 4: %s", st)
	}
	r.w.handle(ctx, task(ids[3])) // its retry
	if want := []int64{1, 2, 3, 5, 6, 4}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("delivered %v, want %v", rc.seqs, want)
	}
}
