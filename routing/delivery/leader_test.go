package delivery

import (
	"context"
	"testing"
	"time"

	"lienthong/routing/ledger"
)

// Two schedulers share a database: one leads (holds the advisory lock), the
// other stands by; when the leader's session is killed the other takes over
// and does the work (re-queues a due retry).
func TestSchedulerLeaderFailover(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(t, 503)
	const recp = "000.00.00.R09"
	r := newRig(t, map[string]string{recp: ep.srv.URL}, nil)

	led := make(chan string, 4)
	start := func(name string) context.CancelFunc {
		pool, err := ledger.Connect(ctx, r.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s := &Scheduler{L: ledger.New(pool, ledger.Config{Now: r.clk.now}), Every: 20 * time.Millisecond,
			OnLead: func() { led <- name }}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(sctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return cancel
	}
	wait := func() string {
		select {
		case n := <-led:
			return n
		case <-time.After(30 * time.Second):
			t.Fatal("no scheduler took the lead")
			return ""
		}
	}
	holders := func() []int {
		rows, err := r.l.Pool().Query(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var pids []int
		for rows.Next() {
			var p int
			_ = rows.Scan(&p)
			pids = append(pids, p)
		}
		return pids
	}

	stopA := start("a")
	if got := wait(); got != "a" {
		t.Fatalf("first leader %s", got)
	}
	start("b")
	// b is standing by: still exactly one lock holder, and it is a.
	for range 3 {
		if h := holders(); len(h) != 1 {
			t.Fatalf("advisory lock holders: %v", h)
		}
	}
	select {
	case n := <-led:
		t.Fatalf("%s leads while a holds the lock", n)
	default:
	}

	// Kill the leader's session (as when its process dies), then the process.
	pid := holders()[0]
	if _, err := r.l.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	stopA()
	if got := wait(); got != "b" {
		t.Fatalf("after the leader died, %s leads", got)
	}

	// The new leader works: a due retry is re-queued.
	m := r.submit(recp)
	r.deliver(m)
	r.clearOutbox()
	r.clk.add(time.Hour)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if keys, _ := r.outbox(ledger.TopicDeliver); len(keys) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new leader did not re-queue the due retry")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
