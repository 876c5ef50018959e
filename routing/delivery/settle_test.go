package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/adapters/webhook"
	"lienthong/routing"
	"lienthong/routing/ledger"
)

// keyRecorder is a push endpoint that records the idempotency key and the
// attempt number of every request, and runs onFirst before answering the
// first one.
type keyRecorder struct {
	mu      sync.Mutex
	keys    []string
	onFirst func()
}

func (k *keyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	first := len(k.keys) == 0
	k.keys = append(k.keys, r.Header.Get(webhook.HeaderIdemKey)+" #"+r.Header.Get(webhook.HeaderAttempt))
	k.mu.Unlock()
	if first && k.onFirst != nil {
		k.onFirst()
	}
}

func (k *keyRecorder) got() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

// A worker that dies between its pushes and their settle has written
// nothing: the deliveries are still routed, the scheduler's sweep
// re-announces them, and the next attempt pushes them again under the same
// idempotency key and records each once (one attempt, one delivering and one
// delivered event).
func TestCrashBetweenPushAndSettle(t *testing.T) {
	for _, n := range []int{1, 3} { // Deliver alone, and a run
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ctx := context.Background()
			kr := &keyRecorder{}
			srv := httptest.NewServer(kr)
			t.Cleanup(srv.Close)
			const recp = "000.00.00.R30"
			r := newRig(t, map[string]string{recp: srv.URL}, nil)
			tasks := r.submitN(recp, n)

			// Worker A has a pool of its own; the first push it makes kills
			// its PostgreSQL access: from then on it can record nothing.
			poolA, err := pgxpool.New(ctx, r.url)
			if err != nil {
				t.Fatal(err)
			}
			kr.onFirst = poolA.Close
			a, err := New(ledger.New(poolA, ledger.Config{Now: r.clk.now}), Config{
				Channels: map[string]routing.Channel{"push": &webhook.Pusher{}}, Now: r.clk.now,
				Rand: func() float64 { return 0.5 }, Breaker: &Breaker{Threshold: 1000, Now: r.clk.now}})
			if err != nil {
				t.Fatal(err)
			}
			a.handleRun(ctx, tasks)
			if got := kr.got(); len(got) != n {
				t.Fatalf("worker A pushed %v", got)
			}
			for _, m := range tasks {
				if x := r.row(m.DeliveryID); x.state != ledger.StateRouted || x.attempts != 0 {
					t.Fatalf("seq %d after the crash: %+v", m.Sequence, x)
				}
				if k := strings.Join(r.eventKinds(m.DocumentID, recp), " "); k != "routed" {
					t.Fatalf("seq %d after the crash: events %q", m.Sequence, k)
				}
			}

			// The sweep finds them and queues their tasks again.
			r.clearOutbox()
			r.clk.add(3 * time.Minute)
			if k, err := r.l.RequeueStuck(ctx, 2*time.Minute, 100); err != nil || k != n {
				t.Fatalf("sweep re-announced %d, %v", k, err)
			}
			_, payloads := r.outbox(ledger.TopicDeliver)
			var again []ledger.DeliverMessage
			for _, p := range payloads {
				again = append(again, ledger.DeliverMessage{DeliveryID: int64(p["delivery_id"].(float64)),
					DocumentID: p["document_id"].(string), Recipient: p["recipient"].(string),
					Sequence: int64(p["sequence"].(float64))})
			}
			if len(again) != n {
				t.Fatalf("%d tasks re-announced", len(again))
			}
			r.w.handleRun(ctx, again)
			r.w.handleRun(ctx, tasks) // the original tasks, redelivered late: nothing left to do

			got := kr.got()
			if len(got) != 2*n {
				t.Fatalf("endpoint got %v, want each document twice", got)
			}
			for i, m := range tasks {
				want := m.DocumentID + "/" + recp + " #1"
				if got[i] != want || got[n+i] != want {
					t.Fatalf("seq %d: requests %q and %q, want %q twice", m.Sequence, got[i], got[n+i], want)
				}
				if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered || x.attempts != 1 {
					t.Fatalf("seq %d: %+v", m.Sequence, x)
				}
				if k := strings.Join(r.eventKinds(m.DocumentID, recp), " "); k != "routed delivering delivered" {
					t.Fatalf("seq %d: events %q", m.Sequence, k)
				}
			}
		})
	}
}

// Per document, the events of a push keep their causal order (routed <
// delivering < delivered, by id and by time), and the delivering event
// carries the time the attempt began, not the time it was recorded.
func TestDeliveringEventKeepsTheStartOfTheAttempt(t *testing.T) {
	ctx := context.Background()
	var r *rig
	var mu sync.Mutex
	var starts []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		starts = append(starts, r.clk.now())
		mu.Unlock()
		r.clk.add(2 * time.Second) // each push takes two seconds
	}))
	t.Cleanup(srv.Close)
	const recp = "000.00.00.R31"
	r = newRig(t, map[string]string{recp: srv.URL}, nil)
	tasks := r.submitN(recp, 3)
	r.clk.add(time.Second)
	r.w.handleRun(ctx, tasks)
	if len(starts) != 3 {
		t.Fatalf("%d pushes", len(starts))
	}
	for i, m := range tasks {
		evs, err := r.l.Events(ctx, m.DocumentID)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		var last ledger.Event
		for _, e := range evs {
			if e.Recipient != recp {
				continue
			}
			kinds = append(kinds, e.Kind)
			if e.ID <= last.ID || e.At.Before(last.At) {
				t.Fatalf("seq %d: %s (#%d at %v) after %s (#%d at %v)", m.Sequence, e.Kind, e.ID, e.At, last.Kind, last.ID, last.At)
			}
			if e.Kind == "delivering" && !e.At.Equal(starts[i]) {
				t.Fatalf("seq %d: delivering at %v, the attempt began at %v", m.Sequence, e.At, starts[i])
			}
			if e.Kind == "delivered" && !e.At.After(starts[i]) {
				t.Fatalf("seq %d: delivered at %v, not after the attempt began (%v)", m.Sequence, e.At, starts[i])
			}
			last = e
		}
		if k := strings.Join(kinds, " "); k != "routed delivering delivered" {
			t.Fatalf("seq %d: events %q", m.Sequence, k)
		}
	}
}

// A run whose sequences follow on from the worker's own first attempts for
// its recipient needs no predecessor query, nor does the late task of a
// delivery already brought forward; a gap (a task that has not come) or a
// run out of order asks the ledger, which brings the missing delivery
// forward and keeps the order.
func TestRunThatFollowsOnSkipsThePredecessorQuery(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	const recp = "000.00.00.R32"
	r := newRig(t, map[string]string{recp: srv.URL}, nil)
	tasks := r.submitN(recp, 8)
	c := r.counting()
	preds := func() int64 { return c.preds.Load() }
	ctx := context.Background()

	r.w.handleRun(ctx, tasks[0:3]) // nothing known yet: the ledger is asked
	if preds() != 1 {
		t.Fatalf("%d predecessor queries for the first run, want 1", preds())
	}
	r.w.handleRun(ctx, tasks[3:5]) // 4, 5 follow 3
	r.w.handle(ctx, tasks[5])      // 6 follows 5
	if preds() != 1 {
		t.Fatalf("%d predecessor queries, want still 1", preds())
	}
	r.w.handleRun(ctx, tasks[7:8]) // 8: the task of 7 has not come
	if preds() != 2 {
		t.Fatalf("%d predecessor queries after a gap, want 2", preds())
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("endpoint saw %v, want %v", rc.seqs, want)
	}
	r.w.handle(ctx, tasks[6]) // the late task of 7 finds it delivered, without asking for predecessors
	if len(rc.seqs) != 8 || preds() != 2 {
		t.Fatalf("endpoint saw %v; %d predecessor queries, want still 2", rc.seqs, preds())
	}
	// Tasks out of order above what is known done ask the ledger, which
	// puts them back in order.
	more := r.submitN(recp, 2)
	r.w.handleRun(ctx, []ledger.DeliverMessage{more[1], more[0]})
	if preds() != 3 {
		t.Fatalf("%d predecessor queries for a run out of order, want 3", preds())
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("endpoint saw %v, want %v", rc.seqs, want)
	}
}
