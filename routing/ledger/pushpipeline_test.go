package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An organ's push_pipeline is stored and read back (1 means one push at a
// time and reads back as 0; 0 keeps what the organ has); one out of bounds
// is refused and changes nothing.
func TestOrganPushPipeline(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	const code = "000.00.00.C01"
	read := func() int {
		t.Helper()
		o, err := l.lookupOrgan(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		all, err := l.Organs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			if a.Code == code && a.PushPipeline != o.PushPipeline {
				t.Fatalf("Organs says push_pipeline %d, Organ %d", a.PushPipeline, o.PushPipeline)
			}
		}
		return o.PushPipeline
	}
	if got := read(); got != 0 {
		t.Fatalf("default push_pipeline %d, want 0 (one at a time)", got)
	}
	o := Organ{Code: code, Name: "A", Channel: ChannelPush, Endpoint: "http://x", Active: true}
	for _, tc := range []struct{ set, want int }{{8, 8}, {0, 8}, {MaxPushPipeline, MaxPushPipeline}, {1, 0}, {0, 0}, {16, 16}} {
		o.PushPipeline = tc.set
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatalf("push_pipeline %d: %v", tc.set, err)
		}
		if got := read(); got != tc.want {
			t.Fatalf("push_pipeline set to %d reads %d, want %d", tc.set, got, tc.want)
		}
	}
	for _, bad := range []int{-1, MaxPushPipeline + 1} {
		o.PushPipeline = bad
		if err := l.UpsertOrgan(ctx, o); err == nil {
			t.Fatalf("push_pipeline %d accepted", bad)
		}
		if got := read(); got != 16 {
			t.Fatalf("after the refused push_pipeline %d: reads %d, want 16 unchanged", bad, got)
		}
	}
}

// upsertOldOrgans writes organs as a hubd before migration 0020 did (no
// push_pipeline), for the tests that upgrade a database of that era.
func upsertOldOrgans(t *testing.T, l *Ledger, organs ...Organ) {
	t.Helper()
	for _, o := range organs {
		if _, err := l.pool.Exec(context.Background(), `INSERT INTO organs (code, name, channel, endpoint, active)
			VALUES ($1, $2, $3, $4, $5)`, o.Code, o.Name, o.Channel, o.Endpoint, o.Active); err != nil {
			t.Fatal(err)
		}
	}
}

// SetLimits sets push_pipeline with the retry limits (0 keeps it), and the
// directory answers the new value at once; one out of bounds is refused.
func TestSetLimitsSetsPushPipeline(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	const code = "000.00.00.C01"
	if _, err := l.Organ(ctx, code); err != nil { // cached from now on
		t.Fatal(err)
	}
	if err := l.SetLimits(ctx, code, Limits{MaxAttempts: 5, MaxAge: time.Hour, PushPipeline: 6}, "test"); err != nil {
		t.Fatal(err)
	}
	if lim, err := l.OrganLimits(ctx, code); err != nil || lim.PushPipeline != 6 || lim.MaxAttempts != 5 {
		t.Fatalf("limits %+v %v, want push_pipeline 6, max_attempts 5", lim, err)
	}
	if o, err := l.Organ(ctx, code); err != nil || o.PushPipeline != 6 {
		t.Fatalf("directory %+v %v, want push_pipeline 6", o, err)
	}
	if err := l.SetLimits(ctx, code, Limits{MaxAttempts: 5, MaxAge: time.Hour, PushPipeline: MaxPushPipeline + 1}, "test"); !errors.Is(err, ErrBadLimits) {
		t.Fatalf("push_pipeline %d: %v, want ErrBadLimits", MaxPushPipeline+1, err)
	}
	// Retry limits alone (PushPipeline 0) keep the push pipeline.
	if err := l.SetLimits(ctx, code, Limits{MaxAttempts: 7, MaxAge: time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	if lim, _ := l.OrganLimits(ctx, code); lim.PushPipeline != 6 || lim.MaxAttempts != 7 {
		t.Fatalf("after retry limits alone: %+v, want push_pipeline 6 kept, max_attempts 7", lim)
	}
	if err := l.SetLimits(ctx, code, Limits{MaxAttempts: 7, MaxAge: time.Hour, PushPipeline: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	if o, _ := l.Organ(ctx, code); o.PushPipeline != 0 {
		t.Fatalf("push_pipeline 1 reads %d, want 0 (one at a time)", o.PushPipeline)
	}
	if err := l.SetLimits(ctx, "000.00.00.Z99", Limits{MaxAttempts: 7, MaxAge: time.Hour}, "test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown organ: %v, want ErrNotFound", err)
	}
}
