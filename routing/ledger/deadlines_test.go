package ledger

import (
	"context"
	"testing"
	"time"
)

// Deadlines per recipient organ override the defaults; a condition is
// reported once; a deadline older than the horizon is not scanned any more.
func TestCheckDeadlinesPerOrganOnceAndHorizon(t *testing.T) {
	l, c := newLedger(t)
	ctx := context.Background()
	accepted := c.now()
	a, err := l.Accept(ctx, doc("D1", "<a/>")) // to C02, never delivered
	if err != nil {
		t.Fatal(err)
	}
	check := func(at time.Time) int {
		t.Helper()
		n, err := l.CheckDeadlines(ctx, at, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Default: 4 h to deliver.
	if n := check(accepted.Add(4*time.Hour - time.Second)); n != 0 {
		t.Fatalf("before the default deadline: %d", n)
	}
	if err := l.SetDeadlines(ctx, "000.00.00.C02", Deadlines{DeliveryWithin: time.Hour, AckWithin: time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	if n := check(accepted.Add(time.Hour)); n != 1 {
		t.Fatalf("at C02's own deadline: %d, want 1", n)
	}
	if n := check(accepted.Add(2 * time.Hour)); n != 0 {
		t.Fatalf("reported again: %d", n)
	}
	evs, err := l.Events(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Kind != "overdue" || last.Recipient != "000.00.00.C02" || last.State != "" {
		t.Fatalf("last event %+v", last)
	}
	// Far in the future, a new undelivered document is reported, the old
	// ones are beyond the horizon and not scanned (nothing new to report anyway).
	c.add(OverdueHorizon + 24*time.Hour)
	if _, err := l.Accept(ctx, doc("D2", "<b/>")); err != nil {
		t.Fatal(err)
	}
	if err := l.SetDeadlines(ctx, "000.00.00.C02", Deadlines{}, "test"); err == nil {
		t.Error("zero deadlines must be refused")
	}
	if n := check(c.now().Add(time.Hour)); n != 1 {
		t.Fatalf("second document: %d, want 1", n)
	}
	c2, err := l.Accept(ctx, doc("D3", "<c/>"))
	if err != nil {
		t.Fatal(err)
	}
	if n := check(c.now().Add(OverdueHorizon + time.Hour)); n != 0 {
		t.Fatalf("a deadline beyond the horizon was reported: %d (%s)", n, c2.ID)
	}
}
