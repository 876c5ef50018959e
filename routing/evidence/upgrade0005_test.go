package evidence

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"lienthong/routing/evidence/logverify"
)

// legacyLog is a log written by a hub before migration 0005 (leaf bytes in
// log_leaves, UNIQUE (event_id), no log_runs), with a skipped gap and an
// event that committed into it later, so that its leaves are several runs
// of event ids. It returns the event id of every leaf.
func legacyLog(t *testing.T) (*env, string, []int64) {
	t.Helper()
	e := newEnvWith(t, func(ctx context.Context, e *env) { migrateBefore(t, e, "0005") })
	e.seq.legacyLeaves = true
	ctx := context.Background()
	doc := e.accept(t, "L", "<l/>")
	if _, err := e.led.Route(ctx, []string{doc}, e.led.Organ); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, doc, 40)
	e.drain(t)
	low, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer low.Rollback(ctx) //nolint:errcheck
	insert := `INSERT INTO events (document_id, kind, detail, at) VALUES ($1, 'note', '{}', now()) RETURNING id`
	var lowID int64
	if err := low.QueryRow(ctx, insert, doc).Scan(&lowID); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, doc, 30)
	if n := e.drain(t); n != 0 {
		t.Fatalf("appended %d past a gap seen for the first time", n)
	}
	e.clk.add(11 * time.Second) // beyond GapTimeout: skipped
	if n := e.drain(t); n != 30 {
		t.Fatalf("appended %d past the gap, want 30", n)
	}
	mustCommit(t, low)
	e.addEvents(t, doc, 20)
	e.drain(t) // the late event, then the 20
	rows, _ := e.pool.Query(ctx, `SELECT event_id FROM log_leaves ORDER BY leaf_index`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ids); n != 1+1+40+30+1+20 || ids[72] != lowID {
		t.Fatalf("legacy log of %d leaves, leaf 72 holds event %d (late event %d)", n, ids[72], lowID)
	}
	return e, doc, ids
}

// TestUpgrade0005InPlace: migration 0005 on a log written before it derives
// log_runs from the leaves (one row per run of consecutive event ids),
// drops UNIQUE (event_id), keeps the stored leaf bytes and serves the same
// leaves, proofs and event → leaf lookups; a sequencer of the old layout
// (no runs) is refused; the sequencer of this code then appends leaves with
// their bytes and their runs; an event cannot enter the log twice; the tail
// reads across the upgrade; the audit is clean and receipts verify.
func TestUpgrade0005InPlace(t *testing.T) {
	e, doc, ids := legacyLog(t)
	ctx := context.Background()
	c, _ := e.checkpointer(t)
	old := e.sign(t, c)
	ref := refOf(t, e)
	if !bytes.Equal(ref.HashAt(old.Size), old.Root) {
		t.Fatal("the reference tree disagrees with the signed checkpoint")
	}

	for range 2 { // and again: already applied
		if err := Migrate(ctx, e.pool); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	// Runs: [accepted, routed, 40 notes], [30 notes], [the late one], [20 notes].
	type run struct{ first, last, index int64 }
	rows, _ := e.pool.Query(ctx, `SELECT first_event, last_event, first_index FROM log_runs ORDER BY first_index`)
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
		var x run
		return x, r.Scan(&x.first, &x.last, &x.index)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []run{{ids[0], ids[41], 0}, {ids[42], ids[71], 42}, {ids[72], ids[72], 72}, {ids[73], ids[92], 73}}
	if len(runs) != len(want) {
		t.Fatalf("runs %v, want %v", runs, want)
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Fatalf("runs %v, want %v", runs, want)
		}
	}
	for i, id := range ids {
		if got, err := e.log.LeafIndexOfEvent(ctx, id); err != nil || got != uint64(i) {
			t.Fatalf("event %d: leaf %d (%v), want %d", id, got, err, i)
		}
	}
	if _, err := e.log.LeafIndexOfEvent(ctx, ids[len(ids)-1]+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an event not in the log: %v", err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM pg_indexes WHERE tablename = 'log_leaves'`); n != 1 {
		t.Fatalf("log_leaves has %d indexes after 0005, want its primary key only", n)
	}
	if got := refOf(t, e); !bytes.Equal(got.HashAt(old.Size), old.Root) {
		t.Fatal("the leaves read after the upgrade do not hash to the signed root")
	}
	checkAllProofs(t, e, ref, old.Size)

	// A sequencer of the old layout, which writes no runs, appends nothing
	// (sequenced_at has no default any more).
	e.addEvents(t, doc, 5)
	var pe *pgconn.PgError
	if _, err := e.seq.Step(ctx); !errors.As(err, &pe) || pe.Code != "23502" || pe.ColumnName != "sequenced_at" {
		t.Fatalf("old sequencer: %v, want the NOT NULL of log_leaves.sequenced_at", err)
	}
	if n := count(t, e.pool, `SELECT size FROM log_state`); n != int64(len(ids)) {
		t.Fatalf("the old sequencer moved the tree head to %d", n)
	}

	// The sequencer of this code extends the log.
	seq, err := NewSequencer(e.pool, SequencerConfig{Now: e.clk.now, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	e.seq = seq
	e.addEvents(t, doc, 25)
	if n := e.drain(t); n != 30 {
		t.Fatalf("appended %d, want 30", n)
	}
	cur := e.sign(t, c)
	if n := count(t, e.pool, `SELECT count(*) FROM log_leaves WHERE leaf IS NOT NULL AND leaf_hash = sha256('\x00'::bytea || leaf)`); n != int64(cur.Size) {
		t.Fatalf("%d leaves with their bytes, want all %d", n, cur.Size)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM log_leaves WHERE leaf_index >= $1 AND sequenced_at <> (SELECT updated_at FROM log_state)`, int64(cur.Size-2)); n != 0 {
		t.Fatalf("the last batch's leaves were sequenced at another time than its tree head")
	}
	if n := count(t, e.pool, `SELECT count(*) FROM log_runs`); n != int64(len(want))+5 { // 30 leaves in batches of 7
		t.Fatalf("%d runs after appending 30 leaves in 5 batches", n)
	}
	ref = refOf(t, e)
	if !bytes.Equal(ref.HashAt(cur.Size), cur.Root) || !bytes.Equal(ref.HashAt(old.Size), old.Root) {
		t.Fatal("the reference tree disagrees with the signed checkpoints")
	}
	checkAllProofs(t, e, ref, cur.Size)
	p, err := e.log.ConsistencyProof(ctx, old.Size, cur.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(old.Size, cur.Size, p, old.Root, cur.Root); err != nil {
		t.Fatalf("checkpoints across the upgrade: %v", err)
	}

	// No event twice: the exclusion constraint of log_runs.
	_, err = e.pool.Exec(ctx, `INSERT INTO log_runs (first_event, last_event, first_index) VALUES ($1, $1, $2)`,
		ids[10], int64(cur.Size))
	if !errors.As(err, &pe) || pe.ConstraintName != "log_runs_each_event_once" {
		t.Fatalf("a second run for event %d: %v, want the log_runs_each_event_once constraint", ids[10], err)
	}

	// The tail reads across the upgrade, in order, as Leaf does.
	tail := NewTail(e.pool)
	got, err := tail.Leaves(ctx, 0, int(cur.Size)+10)
	if err != nil || uint64(len(got)) != cur.Size {
		t.Fatalf("tail: %d leaves, %v", len(got), err)
	}
	for _, te := range got {
		l, err := e.log.Leaf(ctx, te.Index)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(te.Leaf.Encode(), l.Data) || !bytes.Equal(logverify.LeafHash(l.Data), l.Hash) {
			t.Fatalf("leaf %d: the tail and Leaf disagree", te.Index)
		}
	}

	if rep, err := Audit(ctx, e.pool); err != nil || rep.TreeSize != cur.Size || rep.CheckpointsChecked != 2 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	set, err := e.log.Receipts(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Receipts) != int(cur.Size) {
		t.Fatalf("%d receipts for %d leaves", len(set.Receipts), cur.Size)
	}
	for _, r := range set.Receipts {
		pr := set.Proofs[r.LeafIndex]
		l, err := e.log.Leaf(ctx, r.LeafIndex)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(l.Data, r.LeafIndex, cur.Size, pr.Hashes, cur.Root); err != nil {
			t.Fatalf("receipt %s: %v", r.Name, err)
		}
	}
}
