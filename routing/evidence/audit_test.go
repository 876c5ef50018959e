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

func TestAuditNamesFirstTamperedLeaf(t *testing.T) {
	// The log: leaves 0–2 accepted A, B, C; 3–5 routed A, B, C; 6–9 notes on A.
	type fixture struct {
		e      *env
		docs   []string
		events []int64 // by leaf index
	}
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
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var f fixture
			f.e = e
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
			for i := range uint64(10) {
				entry, err := e.log.Leaf(ctx, i)
				if err != nil {
					t.Fatal(err)
				}
				f.events = append(f.events, entry.EventID)
			}
			if tc.change != nil {
				tc.change(t, f)
			}
			rep, err := Audit(ctx, e.pool)
			if tc.change == nil {
				if err != nil || rep.TreeSize != 10 || rep.CheckpointsChecked != 1 || rep.Latest == nil {
					t.Fatalf("audit: %+v %v", rep, err)
				}
				return
			}
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("audit: %v, want a *TamperError", err)
			}
			if te.LeafIndex != tc.wantLeaf || !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("audit: %v; want leaf %d, reason containing %q", te, tc.wantLeaf, tc.reason)
			}
			if te.EventID != 0 && te.EventID != f.events[te.LeafIndex] {
				t.Fatalf("audit names event %d for leaf %d, which holds event %d", te.EventID, te.LeafIndex, f.events[te.LeafIndex])
			}
		})
	}
}
