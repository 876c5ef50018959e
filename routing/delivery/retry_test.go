package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/adapters/webhook"
	"lienthong/routing"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clock is the injected time of the ledger, the worker and the breaker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// endpoint is a real HTTP push endpoint whose answer the test sets.
type endpoint struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newEndpoint(t *testing.T, status int) *endpoint {
	e := &endpoint{}
	e.status.Store(int32(status))
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.WriteHeader(int(e.status.Load()))
		fmt.Fprintf(w, "status %d", e.status.Load())
	}))
	t.Cleanup(e.srv.Close)
	return e
}

type rig struct {
	t   testing.TB
	url string
	l   *ledger.Ledger
	clk *clock
	w   *Worker
	n   int
}

const sender = "000.00.00.S01"

// newRig builds a ledger on a fresh database, the organs (code → endpoint;
// "" = pull) and a worker, all on one injected clock.
func newRig(t testing.TB, organs map[string]string, br *Breaker) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := ledger.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ledger.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	l := ledger.New(pool, ledger.Config{Now: clk.now})
	if err := l.UpsertOrgan(ctx, ledger.Organ{Code: sender, Name: "sender", Channel: "pull", Active: true}); err != nil {
		t.Fatal(err)
	}
	for code, ep := range organs {
		o := ledger.Organ{Code: code, Name: code, Channel: "push", Endpoint: ep, Active: true}
		if ep == "" {
			o.Channel = "pull"
		}
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if br == nil {
		br = &Breaker{Threshold: 1000}
	}
	br.Now = clk.now
	w, err := New(l, Config{Channels: map[string]routing.Channel{"push": &webhook.Pusher{}, "pull": Inbox{}},
		Policy: Policy{Base: 2 * time.Second, Max: time.Minute}, Now: clk.now, Rand: func() float64 { return 0.5 },
		Breaker: br})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, url: url, l: l, clk: clk, w: w}
}

// submit accepts and routes a document to recp and returns its delivery task.
func (r *rig) submit(recp string) ledger.DeliverMessage {
	r.t.Helper()
	ctx := context.Background()
	r.n++
	raw := []byte(fmt.Sprintf("<doc n=%q/>", fmt.Sprint(r.n)))
	sum := sha256.Sum256(raw)
	acc, err := r.l.Accept(ctx, ledger.NewDocument{Sender: sender, DocRef: fmt.Sprintf("doc-%d", r.n), Format: "edxml",
		Recipients: []string{recp}, Raw: raw, SHA256: sum[:]})
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.l.Route(ctx, []string{acc.ID}, r.l.Organ); err != nil {
		r.t.Fatal(err)
	}
	var m ledger.DeliverMessage
	if err := r.l.Pool().QueryRow(ctx, `SELECT id, document_id::text, recipient, seq FROM deliveries
		WHERE document_id = $1`, acc.ID).Scan(&m.DeliveryID, &m.DocumentID, &m.Recipient, &m.Sequence); err != nil {
		r.t.Fatal(err)
	}
	return m
}

type row struct {
	state    string
	attempts int
	next     *time.Time
	lastErr  string
}

func (r *rig) row(id int64) row {
	r.t.Helper()
	var x row
	if err := r.l.Pool().QueryRow(context.Background(), `SELECT state, attempts, next_attempt_at, last_error
		FROM deliveries WHERE id = $1`, id).Scan(&x.state, &x.attempts, &x.next, &x.lastErr); err != nil {
		r.t.Fatal(err)
	}
	return x
}

func (r *rig) deliver(m ledger.DeliverMessage) {
	r.t.Helper()
	if err := r.w.Deliver(context.Background(), m); err != nil {
		r.t.Fatal(err)
	}
}

// outbox returns the outbox payloads of a topic with their keys.
func (r *rig) outbox(topic string) (keys []string, payloads []map[string]any) {
	r.t.Helper()
	rows, err := r.l.Pool().Query(context.Background(), `SELECT key, payload::text FROM outbox WHERE topic = $1 ORDER BY id`, topic)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, p string
		if err := rows.Scan(&k, &p); err != nil {
			r.t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(p), &m)
		keys, payloads = append(keys, k), append(payloads, m)
	}
	return keys, payloads
}

func (r *rig) clearOutbox() {
	if _, err := r.l.Pool().Exec(context.Background(), `DELETE FROM outbox`); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) eventKinds(docID, recp string) []string {
	r.t.Helper()
	rows, err := r.l.Pool().Query(context.Background(), `SELECT kind FROM events WHERE document_id = $1 AND recipient = $2 ORDER BY id`, docID, recp)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		out = append(out, k)
	}
	return out
}

// A failing endpoint: each attempt is rescheduled at now + back-off (here the
// jitter is fixed at 0.5, so 1.5s, 3s, 6s), the schedule is in PostgreSQL
// (a fresh ledger on a new pool sees it and re-queues exactly when due), and
// the organ's max_attempts ends it in dead with the reason and a message for
// lt.dead keyed by the recipient.
func TestRetryTimingIsPersistedAndBounded(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(t, 503)
	const recp = "000.00.00.R01"
	r := newRig(t, map[string]string{recp: ep.srv.URL}, nil)
	if err := r.l.SetLimits(ctx, recp, ledger.Limits{MaxAttempts: 4, MaxAge: 24 * time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	m := r.submit(recp)
	for i, wantWait := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second} {
		r.deliver(m)
		x := r.row(m.DeliveryID)
		if x.state != ledger.StateRetrying || x.attempts != i+1 || x.next == nil {
			t.Fatalf("after attempt %d: %+v", i+1, x)
		}
		if got := x.next.Sub(r.clk.now()); got != wantWait {
			t.Fatalf("attempt %d: next attempt in %v, want %v", i+1, got, wantWait)
		}
		if !strings.Contains(x.lastErr, "503") {
			t.Errorf("last error %q does not name the answer", x.lastErr)
		}
		// "Restart": a new ledger on a new pool reads the same schedule.
		pool2, err := ledger.Connect(ctx, r.url)
		if err != nil {
			t.Fatal(err)
		}
		l2 := ledger.New(pool2, ledger.Config{Now: r.clk.now})
		r.clearOutbox()
		r.clk.add(wantWait - time.Millisecond)
		if n, err := l2.RequeueDue(ctx, 10, time.Minute); err != nil || n != 0 {
			t.Fatalf("requeued %d before due (err %v)", n, err)
		}
		r.clk.add(time.Millisecond)
		if n, err := l2.RequeueDue(ctx, 10, time.Minute); err != nil || n != 1 {
			t.Fatalf("requeued %d when due, want 1 (err %v)", n, err)
		}
		pool2.Close()
		if keys, _ := r.outbox(ledger.TopicDeliver); len(keys) != 1 || keys[0] != recp {
			t.Fatalf("deliver outbox after requeue: %v", keys)
		}
	}
	r.clearOutbox()
	r.deliver(m) // attempt 4 of 4
	x := r.row(m.DeliveryID)
	if x.state != ledger.StateDead || x.attempts != 4 || !strings.Contains(x.lastErr, "retries exhausted") {
		t.Fatalf("after the last attempt: %+v", x)
	}
	keys, payloads := r.outbox(ledger.TopicDead)
	if len(keys) != 1 || keys[0] != recp || payloads[0]["document_id"] != m.DocumentID ||
		!strings.Contains(fmt.Sprint(payloads[0]["reason"]), "503") {
		t.Fatalf("lt.dead message: keys %v payloads %v", keys, payloads)
	}
	if got := int(ep.hits.Load()); got != 4 {
		t.Errorf("endpoint saw %d attempts, want 4", got)
	}
	r.deliver(m) // a stale task for a dead delivery does nothing
	if got := int(ep.hits.Load()); got != 4 {
		t.Errorf("a dead delivery was attempted again")
	}
}

// The organ's max_age closes the retry window whatever the attempt count, and
// a back-off never lands beyond the window.
func TestRetryWindowMaxAge(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(t, 500)
	const recp = "000.00.00.R02"
	r := newRig(t, map[string]string{recp: ep.srv.URL}, nil)
	if err := r.l.SetLimits(ctx, recp, ledger.Limits{MaxAttempts: 100, MaxAge: 10 * time.Second}, "test"); err != nil {
		t.Fatal(err)
	}
	m := r.submit(recp)
	r.clk.add(9 * time.Second)
	r.deliver(m)
	x := r.row(m.DeliveryID)
	if x.state != ledger.StateRetrying || x.next == nil || !x.next.Equal(r.clk.now().Add(time.Second)) {
		t.Fatalf("back-off must be capped at the window's end: %+v (now %v)", x, r.clk.now())
	}
	r.clk.add(time.Second)
	r.deliver(m)
	if x := r.row(m.DeliveryID); x.state != ledger.StateDead || !strings.Contains(x.lastErr, "window") {
		t.Fatalf("after the window: %+v", x)
	}
	if err := r.l.SetLimits(ctx, recp, ledger.Limits{MaxAttempts: 0, MaxAge: time.Hour}, "test"); err == nil {
		t.Error("max_attempts 0 must be refused")
	}
}

// 4xx other than 408/429 is permanent: dead after one attempt, with the
// answer as the reason. 408, 429 and 5xx are retried.
func TestPermanentErrorsGoStraightToDead(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{400, ledger.StateDead}, {403, ledger.StateDead}, {404, ledger.StateDead}, {410, ledger.StateDead},
		{422, ledger.StateDead}, {408, ledger.StateRetrying}, {429, ledger.StateRetrying},
		{500, ledger.StateRetrying}, {502, ledger.StateRetrying}, {503, ledger.StateRetrying},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			ep := newEndpoint(t, tc.status)
			const recp = "000.00.00.R03"
			r := newRig(t, map[string]string{recp: ep.srv.URL}, nil)
			m := r.submit(recp)
			r.deliver(m)
			x := r.row(m.DeliveryID)
			if x.state != tc.want || x.attempts != 1 {
				t.Fatalf("state %s after %d attempts, want %s after 1", x.state, x.attempts, tc.want)
			}
			if !strings.Contains(x.lastErr, fmt.Sprint(tc.status)) {
				t.Errorf("reason %q does not name %d", x.lastErr, tc.status)
			}
			keys, _ := r.outbox(ledger.TopicDead)
			if (tc.want == ledger.StateDead) != (len(keys) == 1) {
				t.Errorf("lt.dead messages: %v", keys)
			}
		})
	}
}

// After Threshold failures the circuit of the dead endpoint opens: its next
// deliveries are deferred without an attempt (no request, no attempt
// counted), the healthy endpoint is served meanwhile, and after the
// cool-down one probe closes the circuit again when the endpoint is back.
func TestCircuitBreakerPerEndpoint(t *testing.T) {
	dead, alive := newEndpoint(t, 503), newEndpoint(t, 200)
	const x, y = "000.00.00.R04", "000.00.00.R05"
	r := newRig(t, map[string]string{x: dead.srv.URL, y: alive.srv.URL},
		&Breaker{Threshold: 2, Cooldown: 10 * time.Second, MaxCooldown: time.Minute})
	m1, m2, m3 := r.submit(x), r.submit(x), r.submit(x)
	r.deliver(m1)
	r.deliver(m2)
	circuit := "push " + dead.srv.URL
	if st := r.w.Breaker().State(circuit); st != "open" {
		t.Fatalf("after 2 failures the circuit is %s", st)
	}
	r.deliver(m3)
	if got := dead.hits.Load(); got != 2 {
		t.Fatalf("open circuit: the dead endpoint got %d requests, want 2", got)
	}
	x3 := r.row(m3.DeliveryID)
	if x3.state != ledger.StateRetrying || x3.attempts != 0 || x3.next == nil || x3.next.Before(r.clk.now().Add(10*time.Second)) {
		t.Fatalf("deferred delivery: %+v", x3)
	}
	if k := r.eventKinds(m3.DocumentID, x); strings.Join(k, " ") != "routed deferred" {
		t.Errorf("events of the deferred delivery: %v", k)
	}
	for range 5 { // the healthy endpoint is not affected
		m := r.submit(y)
		r.deliver(m)
		if st := r.row(m.DeliveryID).state; st != ledger.StateDelivered {
			t.Fatalf("healthy endpoint: %s", st)
		}
	}
	// Half-open after the cool-down: one probe; it fails and the circuit
	// re-opens for twice as long.
	r.clk.add(10 * time.Second)
	r.deliver(m1)
	if got := dead.hits.Load(); got != 3 {
		t.Fatalf("probe: %d requests", got)
	}
	if st := r.w.Breaker().State(circuit); st != "open" {
		t.Fatalf("failed probe: circuit %s", st)
	}
	r.clk.add(19 * time.Second)
	r.deliver(m2)
	if got := dead.hits.Load(); got != 3 {
		t.Fatalf("re-opened circuit let a request through after 19s of 20s")
	}
	// Back: the probe succeeds and the circuit closes.
	dead.status.Store(200)
	r.clk.add(time.Second)
	r.deliver(m3)
	if st := r.row(m3.DeliveryID).state; st != ledger.StateDelivered {
		t.Fatalf("probe after recovery: %s", st)
	}
	if st := r.w.Breaker().State(circuit); st != "closed" {
		t.Fatalf("after a successful probe: circuit %s", st)
	}
	r.deliver(m1)
	if st := r.row(m1.DeliveryID).state; st != ledger.StateDelivered {
		t.Fatalf("closed circuit: %s", st)
	}
}

// A circuit that stays open past the organ's max_age kills the waiting
// deliveries without an attempt.
func TestOpenCircuitPastMaxAgeIsDead(t *testing.T) {
	ctx := context.Background()
	dead := newEndpoint(t, 503)
	const x = "000.00.00.R06"
	r := newRig(t, map[string]string{x: dead.srv.URL}, &Breaker{Threshold: 1, Cooldown: time.Hour})
	if err := r.l.SetLimits(ctx, x, ledger.Limits{MaxAttempts: 10, MaxAge: time.Minute}, "test"); err != nil {
		t.Fatal(err)
	}
	r.deliver(r.submit(x))
	m := r.submit(x)
	r.clk.add(2 * time.Minute)
	r.deliver(m)
	if got := r.row(m.DeliveryID); got.state != ledger.StateDead || got.attempts != 0 || !strings.Contains(got.lastErr, "circuit") {
		t.Fatalf("%+v", got)
	}
}

// Replay: one dead delivery, by id, or many by organ and time of death. Each
// replay is an event naming the operator, and queues a new first attempt with
// a fresh retry window; a delivery that is not dead is refused.
func TestReplayDeadLetters(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(t, 410)
	const x, y = "000.00.00.R07", "000.00.00.R08"
	r := newRig(t, map[string]string{x: ep.srv.URL, y: ep.srv.URL}, nil)
	mx1 := r.submit(x)
	r.deliver(mx1)
	t1 := r.clk.now()
	r.clk.add(time.Hour)
	mx2, my := r.submit(x), r.submit(y)
	r.deliver(mx2)
	r.deliver(my)
	for _, m := range []ledger.DeliverMessage{mx1, mx2, my} {
		if st := r.row(m.DeliveryID).state; st != ledger.StateDead {
			t.Fatalf("setup: %s", st)
		}
	}
	dead, err := r.l.ListDeliveries(ctx, ledger.DeliveryFilter{State: ledger.StateDead, Organ: x})
	if err != nil || len(dead) != 2 || dead[0].ID != mx1.DeliveryID || !strings.Contains(dead[0].LastError, "410") {
		t.Fatalf("list dead of %s: %+v %v", x, dead, err)
	}

	ep.status.Store(200)
	r.clearOutbox()
	if err := r.l.Replay(ctx, mx1.DeliveryID, "op#1"); err != nil {
		t.Fatal(err)
	}
	if got := r.row(mx1.DeliveryID); got.state != ledger.StateRouted || got.attempts != 0 {
		t.Fatalf("replayed: %+v", got)
	}
	if keys, p := r.outbox(ledger.TopicDeliver); len(keys) != 1 || p[0]["delivery_id"] != float64(mx1.DeliveryID) {
		t.Fatalf("replay queued %v", p)
	}
	d, evs, err := r.l.DeliveryByID(ctx, mx1.DeliveryID)
	if err != nil || d.State != ledger.StateRouted {
		t.Fatal(d, err)
	}
	last := evs[len(evs)-1]
	if last.Kind != "replayed" || !strings.Contains(string(last.Detail), "op#1") || !strings.Contains(string(last.Detail), "410") {
		t.Fatalf("replay event: %+v", last)
	}
	if err := r.l.Replay(ctx, mx1.DeliveryID, "op#1"); !errors.Is(err, ledger.ErrNotDead) {
		t.Fatalf("replaying a routed delivery: %v", err)
	}
	if err := r.l.Replay(ctx, 999999, "op#1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("replaying an unknown delivery: %v", err)
	}
	r.deliver(mx1)
	if got := r.row(mx1.DeliveryID); got.state != ledger.StateDelivered || got.attempts != 1 {
		t.Fatalf("after replay: %+v", got)
	}

	// Bulk: only y's dead letters in the window, not x's.
	if n, err := r.l.ReplayDead(ctx, y, t1.Add(time.Minute), r.clk.now().Add(time.Minute), "op#2", 0); err != nil || n != 1 {
		t.Fatalf("bulk replay of %s: %d %v", y, n, err)
	}
	if st := r.row(mx2.DeliveryID).state; st != ledger.StateDead {
		t.Fatalf("other organ replayed: %s", st)
	}
	if n, err := r.l.ReplayDead(ctx, x, time.Time{}, t1, "op#2", 0); err != nil || n != 0 {
		t.Fatalf("window before x's second death: %d %v", n, err)
	}
	if n, err := r.l.ReplayDead(ctx, x, time.Time{}, time.Time{}, "op#2", 0); err != nil || n != 1 {
		t.Fatalf("all of x: %d %v", n, err)
	}
}
