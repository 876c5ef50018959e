package deadline

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// counting is the real ledger with the checks counted.
type counting struct {
	*ledger.Ledger
	checks atomic.Int64
	last   atomic.Int64 // unix nanos of the clock the last check used
}

func (c *counting) CheckDeadlines(ctx context.Context, now time.Time, limit int) (int, error) {
	c.checks.Add(1)
	c.last.Store(now.UnixNano())
	return c.Ledger.CheckDeadlines(ctx, now, limit)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two checkers on one database: only the advisory-lock leader checks, with
// the injected clock; when it stops, the other takes over.
func TestCheckerIsLeaderElected(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := ledger.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ledger.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return fixed }
	a := &counting{Ledger: ledger.New(pool, ledger.Config{})}
	b := &counting{Ledger: ledger.New(pool, ledger.Config{})}
	actx, stopA := context.WithCancel(ctx)
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- New(a, Config{Now: clock, Every: 5 * time.Millisecond}).Run(actx) }()
	waitFor(t, "a leader", func() bool { return a.checks.Load() >= 10 })
	go func() { doneB <- New(b, Config{Now: clock, Every: 5 * time.Millisecond}).Run(bctx) }()
	start := a.checks.Load()
	waitFor(t, "the leader to keep checking", func() bool { return a.checks.Load() >= start+20 })
	if n := b.checks.Load(); n != 0 {
		t.Fatalf("the follower checked %d times while the leader ran", n)
	}
	if got := time.Unix(0, a.last.Load()).UTC(); !got.Equal(fixed) {
		t.Fatalf("checked at %v, want the injected clock %v", got, fixed)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fail-over to the second checker", func() bool { return b.checks.Load() > 0 })
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
}
