package delivery

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"lienthong/adapters/webhook/webhooktest"
	"lienthong/routing/ledger"
)

// pipelineRig is a rig with one push organ on a webhooktest sink, allowed
// window pushes on the wire at once, and n deliveries to it.
func pipelineRig(t *testing.T, window, n int, br *Breaker) (*rig, *webhooktest.Sink, []ledger.DeliverMessage) {
	t.Helper()
	sink := webhooktest.New(t)
	const recp = "000.00.00.R30"
	r := newRig(t, map[string]string{recp: sink.URL}, br)
	if err := r.l.UpsertOrgan(context.Background(), ledger.Organ{Code: recp, Name: recp, Channel: ledger.ChannelPush,
		Endpoint: sink.URL, Active: true, PushPipeline: window}); err != nil {
		t.Fatal(err)
	}
	return r, sink, r.submitN(recp, n)
}

// firstSeen is seqs without repeats, in the order first seen.
func firstSeen(seqs []int64) []int64 {
	var out []int64
	for _, s := range seqs {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// An organ that allows pipelining gets its run's pushes on one connection,
// each written before the earlier ones are answered, in sequence order, with
// the same outcomes and events as one at a time; an organ that does not
// (push_pipeline 1, the default) gets them one at a time.
func TestPipelinedRunKeepsOrderAndOutcomes(t *testing.T) {
	for _, tc := range []struct {
		window             int
		minEarly, maxEarly int
	}{
		{window: 1, minEarly: 0, maxEarly: 0},
		{window: 8, minEarly: 25, maxEarly: 29},
	} {
		t.Run(fmt.Sprint("window ", tc.window), func(t *testing.T) {
			r, sink, tasks := pipelineRig(t, tc.window, 30, nil)
			if tc.window == 1 {
				sink.Quiet = 5 * time.Millisecond // each push waits for it
			}
			r.w.handleRun(context.Background(), tasks)
			var want []int64
			for _, m := range tasks {
				want = append(want, m.Sequence)
				if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered || x.attempts != 1 {
					t.Fatalf("seq %d: %+v, want delivered at the first attempt", m.Sequence, x)
				}
				if k := strings.Join(r.eventKinds(m.DocumentID, m.Recipient), " "); k != "routed delivering delivered" {
					t.Fatalf("seq %d: events %q", m.Sequence, k)
				}
			}
			if got := sink.Seqs(); !slices.Equal(got, want) {
				t.Fatalf("endpoint read %v, want %v", got, want)
			}
			if e := sink.Early(); e < tc.minEarly || e > tc.maxEarly {
				t.Fatalf("%d pushes arrived before the answer to the one before, want %d…%d", e, tc.minEarly, tc.maxEarly)
			}
		})
	}
}

// Answers in the middle of a pipelined run are recorded each for its own
// delivery: a 503 is retried, a 404 is dead, the others are delivered.
func TestPipelinedRunRecordsEachAnswer(t *testing.T) {
	r, sink, tasks := pipelineRig(t, 8, 12, nil)
	sink.Status = webhooktest.Statuses(map[int64]int{3: http.StatusServiceUnavailable, 5: http.StatusNotFound})
	r.w.handleRun(context.Background(), tasks)
	for _, m := range tasks {
		want := ledger.StateDelivered
		switch m.Sequence {
		case 3:
			want = ledger.StateRetrying
		case 5:
			want = ledger.StateDead
		}
		if x := r.row(m.DeliveryID); x.state != want || x.attempts != 1 {
			t.Errorf("seq %d: %+v, want %s after one attempt", m.Sequence, x, want)
		}
	}
	if got := sink.Seqs(); !slices.Equal(got, webhooktest.Range(1, 12)) {
		t.Fatalf("endpoint read %v, want 1…12 in order", got)
	}
}

// An endpoint that hangs up in the middle of a pipelined run: the pushes it
// did not answer go again, one at a time and in order, under the same
// idempotency keys, and none of them counts as a failed attempt.
func TestPipelinedRunAfterTheEndpointHangsUp(t *testing.T) {
	r, sink, tasks := pipelineRig(t, 8, 12, nil)
	sink.CloseAfter, sink.Quiet = 4, 5*time.Millisecond
	r.w.handleRun(context.Background(), tasks)
	for _, m := range tasks {
		if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered || x.attempts != 1 {
			t.Errorf("seq %d: %+v, want delivered at the first attempt", m.Sequence, x)
		}
	}
	got := sink.Seqs()
	if fs := firstSeen(got); !slices.Equal(fs, webhooktest.Range(1, 12)) {
		t.Fatalf("endpoint first read %v, want 1…12 in order", fs)
	}
	if len(got) <= 12 {
		t.Fatalf("endpoint read %v: the unanswered pushes were not sent again", got)
	}
	if c := sink.Conns(); c < 3 {
		t.Fatalf("%d connections for 12 pushes to an endpoint that hangs up after 4, want at least 3", c)
	}
}

// The circuit opening in the middle of a pipelined run stops what has not
// been sent: the pushes already on the wire get their answers recorded, the
// others are deferred without an attempt used and never reach the endpoint.
func TestPipelinedRunStopsWhenTheCircuitOpens(t *testing.T) {
	r, sink, tasks := pipelineRig(t, 4, 12, &Breaker{Threshold: 2, Cooldown: time.Minute})
	sink.Status = func(seq int64) int {
		if seq >= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	}
	r.w.handleRun(context.Background(), tasks)
	seen := sink.Seqs()
	last := slices.Max(seen)
	if last >= 12 || last < 4 {
		t.Fatalf("endpoint read %v: want the run stopped after the circuit opened at seq 4", seen)
	}
	if !slices.Equal(seen, webhooktest.Range(1, last)) {
		t.Fatalf("endpoint read %v, want 1…%d in order", seen, last)
	}
	for _, m := range tasks {
		x := r.row(m.DeliveryID)
		switch {
		case m.Sequence <= 2:
			if x.state != ledger.StateDelivered {
				t.Errorf("seq %d: %+v, want delivered", m.Sequence, x)
			}
		case m.Sequence <= last:
			if x.state != ledger.StateRetrying || x.attempts != 1 {
				t.Errorf("seq %d (sent): %+v, want retrying after one attempt", m.Sequence, x)
			}
		default:
			if x.state != ledger.StateRetrying || x.attempts != 0 {
				t.Errorf("seq %d (not sent): %+v, want deferred without an attempt", m.Sequence, x)
			}
		}
	}
}

// A delivery routed to another channel than the organ's current one (the
// directory changed after routing) is not pushed down the pipeline: the
// one-at-a-time attempt decides it (here: no such channel configured, so
// dead), and the deliveries after it still go, in order.
func TestPipelinedRunLeavesOtherChannelsToTheAttempt(t *testing.T) {
	r, sink, tasks := pipelineRig(t, 8, 6, nil)
	if _, err := r.l.Pool().Exec(context.Background(), `UPDATE deliveries SET channel = $2 WHERE id = $1`,
		tasks[2].DeliveryID, ledger.ChannelPartner); err != nil {
		t.Fatal(err)
	}
	r.w.handleRun(context.Background(), tasks)
	for _, m := range tasks {
		want := ledger.StateDelivered
		if m.Sequence == 3 {
			want = ledger.StateDead
		}
		if x := r.row(m.DeliveryID); x.state != want {
			t.Errorf("seq %d: %+v, want %s", m.Sequence, x, want)
		}
	}
	if got, want := firstSeen(sink.Seqs()), []int64{1, 2, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("endpoint read %v, want %v (the partner delivery not pushed)", got, want)
	}
}
