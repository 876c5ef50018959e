package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

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

func newLedger(t *testing.T) (*Ledger, *clock) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil { // idempotent
		t.Fatalf("second migrate: %v", err)
	}
	c := &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	l := New(pool, Config{Now: c.now})
	for _, o := range []Organ{{Code: "000.00.00.C01", Name: "A", Channel: "push", Endpoint: "http://x"},
		{Code: "000.00.00.C02", Name: "B", Channel: "pull", OldCodes: []string{"C02"}}} {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return l, c
}

func doc(ref string, body string) NewDocument {
	sum := sha256.Sum256([]byte(body))
	return NewDocument{Sender: "000.00.00.C01", DocRef: ref, Format: "edxml", Recipients: []string{"000.00.00.C02"},
		Raw: []byte(body), SHA256: sum[:]}
}

func TestAcceptIsIdempotentAndDetectsConflicts(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	a, err := l.Accept(ctx, doc("D1", "<a/>"))
	if err != nil || a.Duplicate {
		t.Fatalf("accept: %+v %v", a, err)
	}
	b, err := l.Accept(ctx, doc("D1", "<a/>"))
	if err != nil || !b.Duplicate || b.ID != a.ID {
		t.Fatalf("repeat: %+v %v", b, err)
	}
	if _, err := l.Accept(ctx, doc("D1", "<b/>")); !errors.Is(err, ErrConflict) {
		t.Fatalf("other content: %v, want ErrConflict", err)
	}
	s := doc("D2", "<c/>")
	s.Source = "axis:sys:42"
	first, _ := l.Accept(ctx, s)
	s.DocRef = "D2-renamed" // the same intake key wins even if the envelope changed its id
	again, err := l.Accept(ctx, s)
	if err != nil || again.ID != first.ID {
		t.Fatalf("same source: %+v %v", again, err)
	}
	evs, _ := l.Events(ctx, a.ID)
	if len(evs) != 1 || evs[0].Kind != "accepted" {
		t.Fatalf("events: %+v", evs)
	}
	body, _, err := l.Content(ctx, a.ID)
	if err != nil || string(body) != "<a/>" {
		t.Fatalf("content: %q %v", body, err)
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	a, _ := l.Accept(ctx, doc("D1", "<a/>"))
	if _, err := l.Pool().Exec(ctx, `UPDATE events SET kind = 'forged' WHERE document_id = $1`, a.ID); err == nil {
		t.Fatal("UPDATE on events succeeded")
	}
	if _, err := l.Pool().Exec(ctx, `DELETE FROM events`); err == nil {
		t.Fatal("DELETE on events succeeded")
	}
}

func TestRouteDeliverRetryAndAck(t *testing.T) {
	l, clk := newLedger(t)
	ctx := context.Background()
	a, _ := l.Accept(ctx, doc("D1", "<a/>"))
	b, _ := l.Accept(ctx, doc("D2", "<b/>"))
	n, err := l.Route(ctx, []string{a.ID, b.ID}, l.Organ)
	if err != nil || n != 2 {
		t.Fatalf("route: %d %v", n, err)
	}
	if n, _ := l.Route(ctx, []string{a.ID}, l.Organ); n != 0 {
		t.Fatalf("routing twice routed %d", n)
	}
	da, _ := l.Document(ctx, a.ID)
	db, _ := l.Document(ctx, b.ID)
	if *da.Recipients[0].Sequence != 1 || *db.Recipients[0].Sequence != 2 {
		t.Fatalf("sequences %d %d, want 1 2", *da.Recipients[0].Sequence, *db.Recipients[0].Sequence)
	}
	var delID int64
	if err := l.Pool().QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1`, a.ID).Scan(&delID); err != nil {
		t.Fatal(err)
	}
	// First attempt: read without a write, it fails → retrying at +1 min.
	as, err := l.Attempts(ctx, []int64{delID})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts: %d %v", len(as), err)
	}
	if d := as[0]; d.Attempt != 1 || d.Channel != "pull" || d.IdempotencyKey != a.ID+"/000.00.00.C02" ||
		string(as[0].Body) != "<a/>" {
		t.Fatalf("first attempt: %+v", d)
	}
	if n := settle(t, l, as[0].Retry(clk.now(), "boom", clk.now().Add(time.Minute))); n != 1 {
		t.Fatalf("settled %d failures, want 1", n)
	}
	if r := rowOf(t, l, delID); r.state != StateRetrying || r.attempts != 1 {
		t.Fatalf("after a failure: %+v, want retrying after 1 attempt", r)
	}
	if n, _ := l.RequeueDue(ctx, 10, time.Minute); n != 0 {
		t.Fatalf("requeued %d before due", n)
	}
	clk.add(2 * time.Minute)
	if n, _ := l.RequeueDue(ctx, 10, time.Minute); n != 1 {
		t.Fatalf("requeued %d when due, want 1", n)
	}
	if n, _ := l.RequeueDue(ctx, 10, time.Minute); n != 0 {
		t.Fatalf("lease did not hold: requeued again")
	}
	// Second attempt: delivered.
	as, err = l.Attempts(ctx, []int64{delID})
	if err != nil || len(as) != 1 || as[0].Attempt != 2 {
		t.Fatalf("second attempt: %+v %v", as, err)
	}
	if n := settle(t, l, as[0].Delivered(clk.now())); n != 1 {
		t.Fatalf("settled %d deliveries, want 1", n)
	}
	if r := rowOf(t, l, delID); r.state != StateDelivered || r.attempts != 2 {
		t.Fatalf("after delivery: %+v, want delivered after 2 attempts", r)
	}
	if k := kindsOf(t, l, a.ID); k != "routed delivering retrying delivering delivered" {
		t.Fatalf("events %q", k)
	}
	// A delivered delivery is not due: no attempt is read for it.
	if as, err := l.Attempts(ctx, []int64{delID}); err != nil || len(as) != 0 {
		t.Fatalf("a delivered delivery read as due: %d %v", len(as), err)
	}
	items, _ := l.Inbox(ctx, "000.00.00.C02", 0, 10)
	if len(items) != 1 || items[0].DocumentID != a.ID {
		t.Fatalf("inbox: %+v", items)
	}
	if already, err := l.Ack(ctx, "000.00.00.C02", a.ID); err != nil || already {
		t.Fatalf("ack: %v %v", already, err)
	}
	if already, err := l.Ack(ctx, "000.00.00.C02", a.ID); err != nil || !already {
		t.Fatalf("second ack: %v %v", already, err)
	}
	if _, err := l.Ack(ctx, "000.00.00.C01", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack by a non-recipient: %v", err)
	}
	// Permanent failure → dead, with a message for lt.dead.
	var delB int64
	_ = l.Pool().QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1`, b.ID).Scan(&delB)
	as, err = l.Attempts(ctx, []int64{delB})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts of the second document: %d %v", len(as), err)
	}
	if n := settle(t, l, as[0].Dead(clk.now(), "410 gone")); n != 1 {
		t.Fatalf("settled %d dead, want 1", n)
	}
	db, _ = l.Document(ctx, b.ID)
	if db.Recipients[0].State != StateDead || db.Recipients[0].LastError != "410 gone" {
		t.Fatalf("dead: %+v", db.Recipients[0])
	}
	var dead int
	_ = l.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = 'dead'`).Scan(&dead)
	if dead != 1 {
		t.Fatalf("%d dead-letter messages, want 1", dead)
	}
}

// leaveDelivering puts deliveries in state delivering, with their attempt
// counted, as a worker of an earlier version left a delivery it had claimed
// before its attempt (the delivery stage now reads attempts without a write,
// Attempts, and no delivery is delivering any more; the sweep still takes
// those a hub upgraded in place has).
func leaveDelivering(t *testing.T, l *Ledger, ids ...int64) {
	t.Helper()
	if tag, err := l.pool.Exec(context.Background(), `UPDATE deliveries SET state = $2, attempts = attempts + 1,
		updated_at = $3 WHERE id = ANY ($1) AND state IN ($4, $5)`, ids, StateDelivering, l.now().UTC(),
		StateRouted, StateRetrying); err != nil || tag.RowsAffected() != int64(len(ids)) {
		t.Fatalf("leave %d deliveries delivering: %d, %v", len(ids), tag.RowsAffected(), err)
	}
}

func TestOldCodesResolveToOneOrgan(t *testing.T) {
	l, _ := newLedger(t)
	o, err := l.Organ(context.Background(), "C02")
	if err != nil || o.Code != "000.00.00.C02" {
		t.Fatalf("old code: %+v %v", o, err)
	}
	if _, err := l.Organ(context.Background(), "000.00.00.C99"); !errors.Is(err, ErrUnknownOrgan) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestStuckWorkIsReannounced(t *testing.T) {
	l, clk := newLedger(t)
	ctx := context.Background()
	a, _ := l.Accept(ctx, doc("D1", "<a/>"))
	_, _ = l.Pool().Exec(ctx, `DELETE FROM outbox`) // the route message was "lost"
	clk.add(5 * time.Minute)
	if n, err := l.RequeueStuck(ctx, 2*time.Minute, 10); err != nil || n != 1 {
		t.Fatalf("stuck accepted: %d %v", n, err)
	}
	msgs, _ := l.OutboxBatch(ctx, 10)
	if len(msgs) != 1 || msgs[0].Topic != TopicRoute || msgs[0].Key != a.ID {
		t.Fatalf("outbox: %+v", msgs)
	}
	// An attempt a worker of an earlier version claimed (delivering) and did
	// not settle, interrupted by a crash, becomes a retry, due now.
	_, _ = l.Route(ctx, []string{a.ID}, l.Organ)
	var id int64
	_ = l.Pool().QueryRow(ctx, `SELECT id FROM deliveries`).Scan(&id)
	leaveDelivering(t, l, id)
	clk.add(5 * time.Minute)
	if n, _ := l.RequeueStuck(ctx, 2*time.Minute, 10); n != 1 {
		t.Fatalf("stuck delivering: %d", n)
	}
	d, _ := l.Document(ctx, a.ID)
	if d.Recipients[0].State != StateRetrying {
		t.Fatalf("state %s, want retrying", d.Recipients[0].State)
	}
}

func TestLeaderLockIsExclusive(t *testing.T) {
	l, _ := newLedger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	running, maxRunning := 0, 0
	task := func(ctx context.Context) error {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.RunAsLeader(ctx, 42, 50*time.Millisecond, task) }()
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if maxRunning != 1 {
		t.Fatalf("%d leaders at once, want 1", maxRunning)
	}
}
