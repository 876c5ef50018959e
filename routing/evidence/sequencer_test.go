package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

func TestLedgerEventsBecomeLeavesInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var docs []string
	for i, body := range []string{"<a/>", "<b/>", "<c/>"} {
		docs = append(docs, e.accept(t, string(rune('A'+i)), body))
	}
	if _, err := e.led.Route(ctx, docs, e.led.Organ); err != nil {
		t.Fatal(err)
	}
	if n := e.drain(t); n != 6 {
		t.Fatalf("sequenced %d leaves, want 6 (3 accepted + 3 routed)", n)
	}
	if n := e.drain(t); n != 0 {
		t.Fatalf("second run appended %d", n)
	}
	other, err := NewSequencer(e.pool, SequencerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := other.Step(ctx); n != 0 || err != nil {
		t.Fatalf("a fresh sequencer appended %d (%v)", n, err)
	}

	// More events later continue the same log.
	e.clk.add(time.Second)
	docs = append(docs, e.accept(t, "D", "<d/>"))
	if n := e.drain(t); n != 1 {
		t.Fatalf("appended %d, want 1", n)
	}

	var want []ledger.Event
	for _, d := range docs {
		evs, err := e.led.Events(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, evs...)
	}
	byID := map[int64]ledger.Event{}
	for _, ev := range want {
		byID[ev.ID] = ev
	}
	size, err := e.log.Size(ctx)
	if err != nil || size != uint64(len(want)) {
		t.Fatalf("size %d (%v), want %d", size, err, len(want))
	}
	var prev int64
	for i := range size {
		entry, err := e.log.Leaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if entry.EventID <= prev {
			t.Fatalf("leaf %d holds event %d after event %d", i, entry.EventID, prev)
		}
		prev = entry.EventID
		if !bytes.Equal(entry.Hash, logverify.LeafHash(entry.Data)) {
			t.Fatalf("leaf %d: hash does not match bytes", i)
		}
		l, err := logverify.DecodeLeaf(entry.Data)
		if err != nil {
			t.Fatal(err)
		}
		ev := byID[entry.EventID]
		var a, b any
		_ = json.Unmarshal(ev.Detail, &a)
		_ = json.Unmarshal([]byte(l.Detail), &b)
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if l.EventID != ev.ID || l.DocumentID != ev.DocumentID || l.Kind != ev.Kind || l.State != ev.State ||
			l.Recipient != ev.Recipient || !l.At.Equal(ev.At) || !bytes.Equal(aj, bj) {
			t.Fatalf("leaf %d = %+v, event %+v", i, l, ev)
		}
		if ev.Kind == "accepted" {
			var sum []byte
			if err := e.pool.QueryRow(ctx, `SELECT sha256(body) FROM documents WHERE id = $1`, ev.DocumentID).Scan(&sum); err != nil {
				t.Fatal(err)
			}
			if len(sum) != 32 || !bytes.Equal(l.DocumentSHA256, sum) {
				t.Fatalf("accepted leaf %d: digest %x, want %x", i, l.DocumentSHA256, sum)
			}
		} else if l.DocumentSHA256 != nil {
			t.Fatalf("leaf %d of kind %s carries a digest", i, l.Kind)
		}
		if idx, err := e.log.LeafIndexOfEvent(ctx, ev.ID); err != nil || idx != i {
			t.Fatalf("LeafIndexOfEvent(%d) = %d, %v; want %d", ev.ID, idx, err, i)
		}
	}
	if _, err := Audit(ctx, e.pool); err != nil {
		t.Fatalf("audit of an untouched log: %v", err)
	}
}

// TestLateCommitIsNotSkipped: event ids commit out of order; the log must
// neither skip nor duplicate any.
func TestLateCommitIsNotSkipped(t *testing.T) {
	for _, tc := range []struct {
		name string
		// after the higher id committed and one Step saw the gap:
		resolve   func(t *testing.T, e *env, low pgx.Tx)
		wantOrder []string // "low"/"high" by leaf order; low absent when rolled back
		wantGaps  int64
	}{
		{
			name: "lower id commits soon after",
			resolve: func(t *testing.T, e *env, low pgx.Tx) {
				mustCommit(t, low)
			},
			wantOrder: []string{"low", "high"},
		},
		{
			name: "lower id rolls back",
			resolve: func(t *testing.T, e *env, low pgx.Tx) {
				_ = low.Rollback(context.Background())
				e.clk.add(500 * time.Millisecond)
				if n := e.drain(t); n != 0 {
					t.Fatalf("gap skipped before Settle: appended %d", n)
				}
				e.clk.add(500 * time.Millisecond)
			},
			wantOrder: []string{"high"},
			wantGaps:  1,
		},
		{
			name: "lower id held open beyond the gap timeout",
			resolve: func(t *testing.T, e *env, low pgx.Tx) {
				e.clk.add(5 * time.Second) // past Settle, but the holder still runs
				if n := e.drain(t); n != 0 {
					t.Fatalf("gap held by a running transaction skipped after Settle: appended %d", n)
				}
				e.clk.add(5 * time.Second) // GapTimeout
				if n := e.drain(t); n != 1 {
					t.Fatalf("after GapTimeout appended %d, want 1", n)
				}
				mustCommit(t, low)
			},
			wantOrder: []string{"high", "low"},
			wantGaps:  1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			doc := e.accept(t, "A", "<a/>")
			e.drain(t)

			low, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer low.Rollback(ctx) //nolint:errcheck
			var lowID, highID int64
			insert := `INSERT INTO events (document_id, kind, detail, at) VALUES ($1, 'note', '{}', now()) RETURNING id`
			if err := low.QueryRow(ctx, insert, doc).Scan(&lowID); err != nil {
				t.Fatal(err)
			}
			if err := e.pool.QueryRow(ctx, insert, doc).Scan(&highID); err != nil {
				t.Fatal(err)
			}
			if highID <= lowID {
				t.Fatalf("ids %d, %d", lowID, highID)
			}
			if n := e.drain(t); n != 0 {
				t.Fatalf("appended %d past a gap seen for the first time", n)
			}
			tc.resolve(t, e, low)
			e.drain(t)

			var got []string
			rows, _ := e.pool.Query(ctx, `SELECT event_id FROM log_leaves WHERE leaf_index > 0 ORDER BY leaf_index`)
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				switch id {
				case lowID:
					got = append(got, "low")
				case highID:
					got = append(got, "high")
				default:
					t.Fatalf("unexpected event %d", id)
				}
			}
			if !equal(got, tc.wantOrder) {
				t.Fatalf("leaf order %v, want %v", got, tc.wantOrder)
			}
			if n := count(t, e.pool, `SELECT count(*) FROM log_gaps`); n != tc.wantGaps {
				t.Fatalf("%d gaps recorded, want %d", n, tc.wantGaps)
			}
			if _, err := Audit(ctx, e.pool); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustCommit(t *testing.T, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConcurrentSequencersNeverDoubleAppend runs two leader-elected
// sequencers and two that call Step directly (bypassing the leader lock)
// while writers commit events concurrently and out of order.
func TestConcurrentSequencersNeverDoubleAppend(t *testing.T) {
	e := newEnv(t)
	doc := e.accept(t, "A", "<a/>")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seqs []*Sequencer
	for range 4 {
		s, err := NewSequencer(e.pool, SequencerConfig{Idle: 5 * time.Millisecond, Settle: 50 * time.Millisecond,
			GapTimeout: 20 * time.Second, LockRetry: 50 * time.Millisecond, BatchSize: 37})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	for _, s := range seqs[:2] {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
	}
	stepErrs := make(chan error, 2)
	for _, s := range seqs[2:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := s.Step(ctx); err != nil && ctx.Err() == nil {
					stepErrs <- err
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 100 {
				tx, err := e.pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = tx.Exec(ctx, `INSERT INTO events (document_id, kind, detail, at)
					SELECT $1, 'note', jsonb_build_object('w', $2::int, 'i', $3::int), now() FROM generate_series(1, 3)`, doc, w, i)
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					time.Sleep(time.Millisecond) // commit later than others
				}
				if err := tx.Commit(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writers.Wait()
	want := count(t, e.pool, `SELECT count(*) FROM events`)
	deadline := time.Now().Add(20 * time.Second)
	for count(t, e.pool, `SELECT count(*) FROM log_leaves`) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(stepErrs)
	for err := range stepErrs {
		t.Errorf("direct Step: %v", err)
	}
	if got := count(t, e.pool, `SELECT count(*) FROM log_leaves`); got != want {
		t.Fatalf("%d leaves for %d events", got, want)
	}
	if got := count(t, e.pool, `SELECT count(DISTINCT event_id) FROM log_leaves`); got != want {
		t.Fatalf("%d distinct events in %d leaves", got, want)
	}
	if got := count(t, e.pool, `SELECT max(leaf_index) + 1 FROM log_leaves`); got != want {
		t.Fatalf("leaf indices are not contiguous: max+1 = %d, want %d", got, want)
	}
	if got := count(t, e.pool, `SELECT count(*) FROM log_gaps`); got != 0 {
		t.Fatalf("%d gaps skipped, want none: every event committed", got)
	}
	if _, err := Audit(context.Background(), e.pool); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateRecordsVersionsAndLogIsAppendOnly(t *testing.T) {
	e := newEnv(t)
	want, _ := fs.Glob(migrationFS, "migrations/*.sql")
	if n := count(t, e.pool, `SELECT count(*) FROM schema_migrations WHERE version LIKE 'evidence-%'`); n != int64(len(want)) {
		t.Fatalf("%d evidence migrations recorded, want %d", n, len(want))
	}
	e.accept(t, "A", "<a/>")
	doc := e.accept(t, "B", "<b/>")
	e.addEvents(t, doc, 1<<nodeFloor) // so that log_nodes has a row
	e.drain(t)
	if n := count(t, e.pool, `SELECT count(*) FROM log_nodes`); n == 0 {
		t.Fatal("no row in log_nodes")
	}
	c, _ := e.checkpointer(t)
	e.sign(t, c)
	for _, sql := range []string{`UPDATE log_leaves SET leaf = ''`, `DELETE FROM log_leaves`,
		`DELETE FROM log_nodes`, `UPDATE log_checkpoints SET note = ''`} {
		if _, err := e.pool.Exec(context.Background(), sql); err == nil {
			t.Errorf("%s: succeeded on an append-only table", sql)
		}
	}
}

// A sequencer stopped before an id that a running transaction holds polls
// again after Blocked, not after Idle: the log (and lt.events, published
// from it) waits for that commit only briefly.
func TestBlockedSequencerRetriesSoon(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doc := e.accept(t, "A", "<a/>") // event 1
	held, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := held.Exec(ctx, `INSERT INTO events (document_id, kind, detail, at) VALUES ($1, 'note', '{}', now())`, doc); err != nil {
		t.Fatal(err) // event 2, not visible yet
	}
	e.addEvents(t, doc, 1) // event 3, visible
	s, err := NewSequencer(e.pool, SequencerConfig{Idle: time.Hour, Settle: time.Hour, GapTimeout: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	waitSize := func(want uint64) time.Duration {
		began := time.Now()
		for {
			if n, _ := e.log.Size(ctx); n == want {
				return time.Since(began)
			}
			if time.Since(began) > 10*time.Second {
				t.Fatalf("log size still not %d after 10s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSize(1)
	time.Sleep(50 * time.Millisecond) // the sequencer is now waiting for event 2
	if err := held.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the held event and the one after it sequenced %v after its commit", waitSize(3))
}
