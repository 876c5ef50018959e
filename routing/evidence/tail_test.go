package evidence

import (
	"context"
	"testing"
)

// Tail reads the leaves from a cursor in index order, decoded as the log
// commits to them, and its cursor only moves forward.
func TestTailReadsLeavesFromCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doc := e.accept(t, "D1", "<a/>")
	e.addEvents(t, doc, 9)
	if n := e.drain(t); n != 10 {
		t.Fatalf("%d leaves, want 10", n)
	}
	tail := NewTail(e.pool)
	if c, err := tail.Cursor(ctx); err != nil || c != 0 {
		t.Fatalf("cursor of a fresh log: %d %v", c, err)
	}
	got, err := tail.Leaves(ctx, 3, 4)
	if err != nil || len(got) != 4 {
		t.Fatalf("leaves 3..6: %d %v", len(got), err)
	}
	for i, g := range got {
		ent, err := e.log.Leaf(ctx, uint64(3+i))
		if err != nil {
			t.Fatal(err)
		}
		if g.Index != uint64(3+i) || g.Leaf.EventID != ent.EventID || string(g.Leaf.Encode()) != string(ent.Data) {
			t.Fatalf("leaf %d: %+v, stored event %d", 3+i, g, ent.EventID)
		}
	}
	if g := got[0].Leaf; g.DocumentID != doc || g.Kind != "note" || g.Recipient != recipient || g.Detail == "" {
		t.Fatalf("decoded leaf: %+v", g)
	}
	if rest, err := tail.Leaves(ctx, 8, 100); err != nil || len(rest) != 2 {
		t.Fatalf("leaves from 8: %d %v, want the last 2", len(rest), err)
	}
	if none, err := tail.Leaves(ctx, 10, 100); err != nil || len(none) != 0 {
		t.Fatalf("leaves past the end: %d %v", len(none), err)
	}
	if err := tail.Advance(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := tail.Advance(ctx, 5); err != nil { // never back
		t.Fatal(err)
	}
	if c, _ := tail.Cursor(ctx); c != 7 {
		t.Fatalf("cursor %d, want 7", c)
	}
	if n, err := tail.Backlog(ctx); err != nil || n != 3 {
		t.Fatalf("backlog %d %v, want 3", n, err)
	}
}

// On a hub upgraded in place, the publisher starts after the leaves that are
// already in the log: their events went to lt.events through the outbox.
func TestPublishCursorStartsAtLogSizeOnUpgrade(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Back to the schema before 0003, with a log of 6 leaves.
	if _, err := e.pool.Exec(ctx, `DROP TABLE log_published;
		DELETE FROM schema_migrations WHERE version LIKE 'evidence-0003%'`); err != nil {
		t.Fatal(err)
	}
	doc := e.accept(t, "D1", "<a/>")
	e.addEvents(t, doc, 5)
	if n := e.drain(t); n != 6 {
		t.Fatalf("%d leaves", n)
	}
	if err := Migrate(ctx, e.pool); err != nil {
		t.Fatal(err)
	}
	if c, err := NewTail(e.pool).Cursor(ctx); err != nil || c != 6 {
		t.Fatalf("cursor after the upgrade: %d %v, want 6", c, err)
	}
}
