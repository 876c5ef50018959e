package delivery

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/ledger"
)

// txCounter counts the transactions committed through a pool, and the
// statements sent one by one (a pipelined pgx.Batch is not counted).
type txCounter struct{ commits, stmts, bodyReads, preds atomic.Int64 }

func (c *txCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.stmts.Add(1)
	if strings.EqualFold(strings.TrimSpace(d.SQL), "commit") {
		c.commits.Add(1)
	}
	if strings.Contains(d.SQL, "SELECT body") || strings.Contains(d.SQL, "SELECT id::text, body") ||
		strings.Contains(d.SQL, "d.body END") {
		c.bodyReads.Add(1)
	}
	if strings.Contains(d.SQL, "AND seq < $2") {
		c.preds.Add(1)
	}
	return ctx
}

func (c *txCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// counting puts the rig's ledger and worker on a pool whose commits are
// counted.
func (r *rig) counting() *txCounter {
	r.t.Helper()
	cfg, err := pgxpool.ParseConfig(r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	c := &txCounter{}
	cfg.ConnConfig.Tracer = c
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(pool.Close)
	r.l = ledger.New(pool, ledger.Config{Now: r.clk.now})
	r.w.l = r.l
	return c
}

func (r *rig) submitN(recp string, n int) []ledger.DeliverMessage {
	out := make([]ledger.DeliverMessage, n)
	for i := range out {
		out[i] = r.submit(recp)
	}
	return out
}

// A run of K inbox (pull) deliveries is claimed and delivered in one
// transaction, with the same events as one by one.
func TestInboxRunCommitsOnce(t *testing.T) {
	const recp = "000.00.00.R20"
	r := newRig(t, map[string]string{recp: ""}, nil)
	tasks := r.submitN(recp, 10)
	c := r.counting()
	r.w.handleRun(context.Background(), tasks)
	if n := c.commits.Load(); n != 1 {
		t.Fatalf("%d commits for a run of %d inbox deliveries, want 1", n, len(tasks))
	}
	for _, m := range tasks {
		if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered || x.attempts != 1 {
			t.Fatalf("seq %d: %+v", m.Sequence, x)
		}
		if k := strings.Join(r.eventKinds(m.DocumentID, recp), " "); k != "routed delivering delivered" {
			t.Fatalf("seq %d: events %q", m.Sequence, k)
		}
	}
	// The events are published on lt.events from the evidence log
	// (routing/relay.Events), so the run queued no outbox row for them.
	if keys, _ := r.outbox(ledger.TopicEvents); len(keys) != 0 {
		t.Fatalf("%d lt.events rows in the outbox, want none", len(keys))
	}
	// A repeat of the run changes nothing and commits nothing new but its own transaction.
	r.w.handleRun(context.Background(), tasks)
	if k := r.eventKinds(tasks[0].DocumentID, recp); len(k) != 3 {
		t.Fatalf("repeat added events: %v", k)
	}
}

// A run of K push deliveries: one HTTP attempt each, in sequence order, with
// the usual idempotency key; one read of the run (deliveries and bodies) and
// one commit for the whole run (its outcomes): nothing is written before the
// attempts.
func TestPushRunGroupCommitsOutcomes(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	const recp = "000.00.00.R21"
	r := newRig(t, map[string]string{recp: srv.URL}, nil)
	tasks := r.submitN(recp, 10)
	c := r.counting()
	r.w.handleRun(context.Background(), tasks)
	if n := c.commits.Load(); n != 1 {
		t.Fatalf("%d commits for a run of %d push deliveries, want 1", n, len(tasks))
	}
	if n := c.bodyReads.Load(); n != 1 {
		t.Fatalf("%d body reads for a run of %d push deliveries, want 1 (prefetched together)", n, len(tasks))
	}
	for _, m := range tasks { // each endpoint got its own document's bytes
		var raw []byte
		if err := r.l.Pool().QueryRow(context.Background(), `SELECT body FROM documents WHERE id = $1`, m.DocumentID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if got := rc.bodies[m.Sequence]; got != string(raw) {
			t.Fatalf("seq %d: endpoint got %q, want %q", m.Sequence, got, raw)
		}
	}
	var want []int64
	for _, m := range tasks {
		want = append(want, m.Sequence)
		if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered || x.attempts != 1 {
			t.Fatalf("seq %d: %+v", m.Sequence, x)
		}
		if k := strings.Join(r.eventKinds(m.DocumentID, recp), " "); k != "routed delivering delivered" {
			t.Fatalf("seq %d: events %q", m.Sequence, k)
		}
	}
	if !slices.Equal(rc.seqs, want) {
		t.Fatalf("endpoint saw %v, want %v", rc.seqs, want)
	}
}

// Tasks handed over out of order in one run still go in acceptance order,
// with the predecessors that were not routed yet brought forward.
func TestRunKeepsAcceptanceOrder(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	const recp = "000.00.00.R22"
	r := newRig(t, map[string]string{recp: srv.URL}, nil)
	tasks := r.submitN(recp, 6)
	run := []ledger.DeliverMessage{tasks[4], tasks[1], tasks[5]}
	r.w.handleRun(context.Background(), run)
	if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(rc.seqs, want) {
		t.Fatalf("endpoint saw %v, want %v", rc.seqs, want)
	}
}

// A push failure in the middle of a run: the earlier successes are
// delivered, the failed one is retrying, and the later ones go on in order
// (a retry does not hold them back) — unless the failure opens the circuit:
// then the later ones are deferred, retrying without an attempt used (and
// without a "delivering" event: no attempt was made), and delivered in order
// once the circuit lets them through.
func TestPushFailureInTheMiddleOfARun(t *testing.T) {
	t.Run("circuit stays closed", func(t *testing.T) {
		rc := &recorder{fail: map[int64]bool{3: true}}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		const recp = "000.00.00.R23"
		r := newRig(t, map[string]string{recp: srv.URL}, nil)
		tasks := r.submitN(recp, 5)
		r.w.handleRun(context.Background(), tasks)
		if want := []int64{1, 2, 4, 5}; !slices.Equal(rc.seqs, want) {
			t.Fatalf("endpoint took %v, want %v", rc.seqs, want)
		}
		for i, m := range tasks {
			x := r.row(m.DeliveryID)
			want := ledger.StateDelivered
			if i == 2 {
				want = ledger.StateRetrying
			}
			if x.state != want || x.attempts != 1 {
				t.Fatalf("seq %d: %+v, want %s after 1 attempt", m.Sequence, x, want)
			}
		}
	})
	t.Run("circuit opens", func(t *testing.T) {
		rc := &recorder{fail: map[int64]bool{3: true}}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		const recp = "000.00.00.R24"
		r := newRig(t, map[string]string{recp: srv.URL}, &Breaker{Threshold: 1, Cooldown: 5 * time.Second})
		tasks := r.submitN(recp, 6)
		r.w.handleRun(context.Background(), tasks)
		if want := []int64{1, 2}; !slices.Equal(rc.seqs, want) {
			t.Fatalf("endpoint took %v, want %v", rc.seqs, want)
		}
		for i, m := range tasks {
			x := r.row(m.DeliveryID)
			kinds := strings.Join(r.eventKinds(m.DocumentID, recp), " ")
			switch {
			case i < 2:
				if x.state != ledger.StateDelivered {
					t.Fatalf("seq %d: %+v", m.Sequence, x)
				}
			case i == 2:
				if x.state != ledger.StateRetrying || x.attempts != 1 || kinds != "routed delivering retrying" {
					t.Fatalf("seq %d: %+v %q", m.Sequence, x, kinds)
				}
			default:
				if x.state != ledger.StateRetrying || x.attempts != 0 || x.next == nil ||
					x.next.Before(r.clk.now().Add(5*time.Second)) || kinds != "routed deferred" {
					t.Fatalf("seq %d handed back: %+v %q", m.Sequence, x, kinds)
				}
			}
		}
		r.clk.add(10 * time.Second) // the cool-down ends: a probe, then the rest
		r.w.handleRun(context.Background(), tasks[2:])
		if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(rc.seqs, want) {
			t.Fatalf("endpoint took %v, want %v", rc.seqs, want)
		}
		for _, m := range tasks {
			if x := r.row(m.DeliveryID); x.state != ledger.StateDelivered {
				t.Fatalf("seq %d: %+v", m.Sequence, x)
			}
		}
	})
}

// Routing a batch of documents (one Kafka fetch batch of the router) takes
// one transaction and a number of statements that does not grow with the
// batch: one lookup per distinct recipient, multi-row updates and inserts.
func TestRouteBatchIsConstantStatements(t *testing.T) {
	ctx := context.Background()
	const a, b = "000.00.00.R25", "000.00.00.R26"
	r := newRig(t, map[string]string{a: "", b: "http://127.0.0.1:1/never"}, nil)
	var ids []string
	for i := range 20 {
		raw := []byte(fmt.Sprintf("<route n=%d/>", i))
		sum := sha256.Sum256(raw)
		acc, err := r.l.Accept(ctx, ledger.NewDocument{Sender: sender, DocRef: fmt.Sprintf("route-%d", i), Format: "edxml",
			Recipients: []string{a, b}, Raw: raw, SHA256: sum[:]})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.ID)
	}
	r.clearOutbox()
	c := r.counting()
	n, err := r.l.Route(ctx, ids, r.l.Organ)
	if err != nil || n != 40 {
		t.Fatalf("routed %d, %v", n, err)
	}
	if got := c.commits.Load(); got != 1 {
		t.Fatalf("%d commits, want 1", got)
	}
	if got := c.stmts.Load(); got > 12 {
		t.Fatalf("%d statements to route 40 deliveries, want a constant few", got)
	}
	keys, payloads := r.outbox(ledger.TopicDeliver)
	if len(keys) != 40 {
		t.Fatalf("%d delivery tasks", len(keys))
	}
	last := map[string]float64{}
	for i, p := range payloads {
		recp := p["recipient"].(string)
		if keys[i] != recp {
			t.Fatalf("task keyed %s for %s", keys[i], recp)
		}
		var x struct {
			state, channel string
			seq            int64
		}
		if err := r.l.Pool().QueryRow(ctx, `SELECT state, channel, seq FROM deliveries WHERE id = $1`,
			int64(p["delivery_id"].(float64))).Scan(&x.state, &x.channel, &x.seq); err != nil {
			t.Fatal(err)
		}
		wantCh := "pull"
		if recp == b {
			wantCh = "push"
		}
		if x.state != ledger.StateRouted || x.channel != wantCh || float64(x.seq) != p["sequence"].(float64) {
			t.Fatalf("task %v: delivery %+v", p, x)
		}
		if s := p["sequence"].(float64); s <= last[recp] {
			t.Fatalf("tasks of %s out of sequence order: %v after %v", recp, s, last[recp])
		} else {
			last[recp] = s
		}
	}
	for _, id := range ids {
		for _, recp := range []string{a, b} {
			if k := strings.Join(r.eventKinds(id, recp), " "); k != "routed" {
				t.Fatalf("%s → %s: events %q", id, recp, k)
			}
		}
	}
	if again, err := r.l.Route(ctx, ids, r.l.Organ); err != nil || again != 0 {
		t.Fatalf("a repeat routed %d, %v", again, err)
	}
}
