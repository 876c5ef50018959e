package evidence

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/evidence/logverify"
)

// tamper runs sql with the append-only triggers bypassed, as a superuser
// with direct access to the database would.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `SET session_replication_role = origin`) //nolint:errcheck
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatalf("%s changed nothing", sql)
	}
}

// fixture is the log of TestAuditNamesFirstTamperedLeaf.
type fixture struct {
	e      *env
	docs   []string
	events []int64 // by leaf index
}

func TestAuditNamesFirstTamperedLeaf(t *testing.T) {
	// The log: leaves 0–2 accepted A, B, C; 3–5 routed A, B, C; 6–9 notes on A.
	for _, tc := range []struct {
		name     string
		change   func(t *testing.T, f fixture)
		wantLeaf uint64
		reason   string
	}{
		{name: "untouched"},
		{
			name: "event detail changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE events SET detail = '{"channel": "forged"}' WHERE id = $1`, f.events[4])
			},
			wantLeaf: 4, reason: "detail changed",
		},
		{
			name: "event recipient changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE events SET recipient = '000.00.00.C01' WHERE id = $1`, f.events[7])
			},
			wantLeaf: 7, reason: "recipient changed",
		},
		{
			name: "two events changed: the first is named",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE events SET at = at + interval '1 second' WHERE id = ANY ($1)`,
					[]int64{f.events[8], f.events[5]})
			},
			wantLeaf: 5, reason: "time changed",
		},
		{
			name: "document digest changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE documents SET sha256 = sha256('<forged/>') WHERE id = $1`, f.docs[1])
			},
			wantLeaf: 1, reason: "document digest changed",
		},
		{
			name: "document bytes changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE documents SET body = '<forged/>' WHERE id = $1`, f.docs[2])
			},
			wantLeaf: 2, reason: "bytes no longer match",
		},
		{
			name: "document bytes and digest changed together",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE documents SET body = '<x/>', sha256 = sha256('<x/>') WHERE id = $1`, f.docs[1])
			},
			wantLeaf: 1, reason: "document digest changed",
		},
		{
			name: "leaf hash changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE log_leaves SET leaf_hash = sha256(leaf_hash) WHERE leaf_index = 3`)
			},
			wantLeaf: 3, reason: "stored leaf hash does not match the stored leaf bytes",
		},
		{
			name: "stored leaf changed",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE log_leaves SET leaf = leaf || '\x00'::bytea WHERE leaf_index = 6`)
			},
			wantLeaf: 6, reason: "stored leaf hash does not match the stored leaf bytes",
		},
		{
			name: "leaf moved to another event",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE log_leaves SET event_id = $1 WHERE leaf_index = 9`, f.events[9]+1000)
			},
			wantLeaf: 9, reason: "gone",
		},
		{
			name: "run remapped",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE log_runs SET first_event = first_event + 1, last_event = last_event + 1
					WHERE first_index = (SELECT max(first_index) FROM log_runs)`)
			},
			wantLeaf: 0, reason: "log_runs maps this leaf to event",
		},
		{
			name: "event deleted",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `DELETE FROM events WHERE id = $1`, f.events[6])
			},
			wantLeaf: 6, reason: "gone",
		},
		{
			name: "event and its stored leaf rewritten together",
			change: func(t *testing.T, f fixture) {
				tamper(t, f.e.pool, `UPDATE events SET detail = '{"n": 99}' WHERE id = $1`, f.events[8])
				row := f.e.pool.QueryRow(context.Background(), `SELECT `+eventColumns+eventFrom+` WHERE e.id = $1`, f.events[8])
				l, err := scanEvent(row)
				if err != nil {
					t.Fatal(err)
				}
				b := l.Encode()
				tamper(t, f.e.pool, `UPDATE log_leaves SET leaf = $2, leaf_hash = $3 WHERE leaf_index = $1`, 8, b, logverify.LeafHash(b))
			},
			wantLeaf: 0, reason: "signed root",
		},
	} {
		for _, legacy := range []bool{false, true} {
			name := tc.name
			if legacy {
				name += "/written before 0005"
			}
			t.Run(name, func(t *testing.T) {
				auditCase(t, legacy, tc.change, tc.wantLeaf, tc.reason)
			})
		}
	}
}

// auditCase builds the fixture (its leaves written by the sequencer of today,
// or, legacy, by one from before migration 0005 and then upgraded in
// place), applies change and checks what Audit names.
func auditCase(t *testing.T, legacy bool, change func(*testing.T, fixture), wantLeaf uint64, reason string) {
	var e *env
	if legacy {
		e = newEnvWith(t, func(ctx context.Context, e *env) { migrateBefore(t, e, "0005") })
		e.seq.legacyLeaves = true
	} else {
		e = newEnv(t)
	}
	ctx := context.Background()
	f := fixture{e: e}
	for _, r := range []string{"A", "B", "C"} {
		f.docs = append(f.docs, e.accept(t, r, "<"+r+"/>"))
	}
	if _, err := e.led.Route(ctx, f.docs, e.led.Organ); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, f.docs[0], 4)
	e.drain(t)
	c, _ := e.checkpointer(t)
	e.sign(t, c)
	if legacy {
		if err := Migrate(ctx, e.pool); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(10) {
		entry, err := e.log.Leaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		f.events = append(f.events, entry.EventID)
	}
	if change != nil {
		change(t, f)
	}
	rep, err := Audit(ctx, e.pool)
	if change == nil {
		if err != nil || rep.TreeSize != 10 || rep.CheckpointsChecked != 1 || rep.Latest == nil {
			t.Fatalf("audit: %+v %v", rep, err)
		}
		return
	}
	var te *TamperError
	if !errors.As(err, &te) {
		t.Fatalf("audit: %v, want a *TamperError", err)
	}
	if te.LeafIndex != wantLeaf || !strings.Contains(te.Reason, reason) {
		t.Fatalf("audit: %v; want leaf %d, reason containing %q", te, wantLeaf, reason)
	}
	if now := count(t, e.pool, `SELECT coalesce(max(event_id), 0) FROM log_leaves WHERE leaf_index = $1`, int64(te.LeafIndex)); te.EventID != 0 && te.EventID != f.events[te.LeafIndex] && te.EventID != now {
		t.Fatalf("audit names event %d for leaf %d, which held event %d and now names %d", te.EventID, te.LeafIndex, f.events[te.LeafIndex], now)
	}
}
