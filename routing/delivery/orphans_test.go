package delivery

import (
	"context"
	"testing"
	"time"

	"lienthong/routing/ledger"
)

// A delivery whose task was lost (routed, or retrying past its time, and
// nothing has happened to it for long) is an orphan; one that moved recently,
// or whose retry is not due, is not.
func TestOrphans(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(t, 503)
	const recp = "000.00.00.R13"
	r := newRig(t, map[string]string{recp: ep.srv.URL}, nil)
	lost := r.submit(recp)  // routed, task lost
	retry := r.submit(recp) // fails once, retry due in 1.5s
	r.deliver(retry)
	ids := func() []int64 {
		t.Helper()
		o, err := r.l.Orphans(ctx, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, m := range o {
			out = append(out, m.DeliveryID)
		}
		return out
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("fresh deliveries taken for orphans: %v", got)
	}
	r.clk.add(time.Minute + time.Second)
	if got := ids(); len(got) != 1 || got[0] != lost.DeliveryID {
		t.Fatalf("after a minute: %v, want only %d (the retry is due since 59s)", got, lost.DeliveryID)
	}
	r.clk.add(2 * time.Second)
	if got := ids(); len(got) != 2 {
		t.Fatalf("once the retry is overdue by a minute: %v", got)
	}
	// A worker defers the retry (open circuit): it is handled, not lost.
	if _, err := r.l.Defer(ctx, retry.DeliveryID, r.clk.now().Add(time.Minute), "circuit open"); err != nil {
		t.Fatal(err)
	}
	if got := ids(); len(got) != 1 || got[0] != lost.DeliveryID {
		t.Fatalf("after deferring the retry: %v", got)
	}
	r.clk.add(2 * time.Minute)
	r.deliver(lost) // it moves (fails again, retry in 1.5s): no longer an orphan
	if got := ids(); len(got) != 1 || got[0] != retry.DeliveryID || r.row(lost.DeliveryID).state != ledger.StateRetrying {
		t.Fatalf("after an attempt: %v", got)
	}
}
