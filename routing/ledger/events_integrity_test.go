package ledger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"lienthong/routing/pgtest"
)

// orphanEvents counts the events that name a document the ledger does not hold.
func orphanEvents(t *testing.T, l *Ledger) int {
	t.Helper()
	var n int
	if err := l.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events e
		WHERE e.document_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = e.document_id)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEventsDocumentMigrationUpgradesInPlace applies migration 0016 to a
// ledger that already holds documents with deliveries in every state and
// their events (a hub upgraded in place): the foreign key from events to
// documents is gone, every event still names a stored document, and
// documents can no longer be deleted or truncated — the rule that replaces
// the foreign key. After the upgrade, a full flow (batched and one-by-one
// accepts, status packages, routing, push and pull delivery, failures,
// acknowledgements, admin events) leaves no event without its document,
// and the search by time range finds its events through events_at, now a
// BRIN index.
func TestEventsDocumentMigrationUpgradesInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	before := fstest.MapFS{}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		// The rows are filled in by today's routing code, which reads
		// organs' push_pipeline (0020): that column is there before.
		if name >= "migrations/0016" && name != "migrations/0020_push_pipeline.sql" {
			continue
		}
		b, err := fs.ReadFile(migrationFS, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := ApplyMigrations(ctx, pool, before, ""); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	l := New(pool, Config{Now: c.now, AcceptBatch: 16, AcceptFlushers: 2})
	upsertOldOrgans(t, l, Organ{Code: "000.00.00.C01", Name: "S", Channel: ChannelPull, Active: true},
		Organ{Code: "000.00.00.C02", Name: "R", Channel: ChannelPull, Active: true},
		Organ{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x", Active: true},
		Organ{Code: "000.00.00.C04", Name: "Pull", Channel: ChannelPull, Active: true})
	fillEveryState(t, l, 35)
	foreignKeys := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint
			WHERE conrelid = 'events'::regclass AND contype = 'f' AND confrelid = 'documents'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if foreignKeys() != 1 {
		t.Fatal("fixture: events has no foreign key to documents before the upgrade")
	}
	var docs0, events0 int
	count := func() (int, int) {
		var d, e int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM events)`).Scan(&d, &e); err != nil {
			t.Fatal(err)
		}
		return d, e
	}
	docs0, events0 = count()

	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if n := foreignKeys(); n != 0 {
		t.Fatalf("%d foreign keys from events to documents after the upgrade", n)
	}
	var idx int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexname = 'events_document'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("events_document index: %d %v", idx, err)
	}
	var method string
	if err := pool.QueryRow(ctx, `SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam
		WHERE c.relname = 'events_at'`).Scan(&method); err != nil || method != "brin" {
		t.Fatalf("events_at: access method %q (%v), want brin", method, err)
	}
	if d, e := count(); d != docs0 || e != events0 {
		t.Fatalf("upgrade changed rows: documents %d→%d, events %d→%d", docs0, d, events0, e)
	}
	if n := orphanEvents(t, l); n != 0 {
		t.Fatalf("%d events without their document after the upgrade", n)
	}

	// Documents are kept: neither DELETE nor TRUNCATE goes through, and
	// nothing changes.
	for _, sql := range []string{`DELETE FROM documents WHERE id IN (SELECT id FROM documents LIMIT 1)`,
		`DELETE FROM documents WHERE false`, `TRUNCATE documents CASCADE`} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23001" {
			t.Fatalf("%s: got %v, want restrict_violation (23001)", sql, err)
		}
	}
	if d, e := count(); d != docs0 || e != events0 {
		t.Fatalf("refused deletes changed rows: documents %d→%d, events %d→%d", docs0, d, events0, e)
	}

	// A full flow after the upgrade: batched accepts, then status packages
	// about some of them (one transaction each).
	var originals, statuses []string
	var batch, sts []NewDocument
	for i := range 40 {
		ref := fmt.Sprint("AFTER-", i)
		d := doc(ref, fmt.Sprint("<after n='", i, "'/>"))
		d.Recipients = []string{"000.00.00.C02", "000.00.00.C04"}
		d.Flow = &Flow{Kind: FlowNew}
		batch = append(batch, d)
		if i%8 == 0 {
			st := doc(ref, fmt.Sprint("<status n='", i, "'/>"))
			st.Sender, st.Recipients = "000.00.00.C02", []string{"000.00.00.C01"}
			st.Flow = &Flow{Kind: FlowStatus, Target: ref, Addressee: "000.00.00.C01", Code: "01"}
			sts = append(sts, st)
		}
	}
	for i, r := range acceptAll(l, batch)() {
		if r.err != nil {
			t.Fatalf("document %d: %v", i, r.err)
		}
		originals = append(originals, r.ID)
	}
	for i, r := range acceptAll(l, sts)() {
		if r.err != nil {
			t.Fatalf("status %d: %v", i, r.err)
		}
		statuses = append(statuses, r.ID)
	}
	if _, err := l.Route(ctx, append(originals, statuses...), l.Organ); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AckMany(ctx, "000.00.00.C02", originals[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AdminEvent(ctx, "test", "operator", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	_, e1 := count()
	if e1 <= events0 {
		t.Fatalf("the flow after the upgrade wrote no events (%d → %d)", events0, e1)
	}
	if n := orphanEvents(t, l); n != 0 {
		t.Fatalf("%d events without their document after a full flow", n)
	}

	// The search by time range still finds its events through events_at,
	// and the same ones as a scan.
	if _, err := pool.Exec(ctx, `SELECT brin_summarize_new_values('events_at')`); err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	const byTime = `SELECT count(*) FROM events WHERE at >= $1 AND at < $2`
	var all, indexed int
	if err := pool.QueryRow(ctx, byTime, from, to).Scan(&all); err != nil || all == 0 {
		t.Fatalf("events in range: %d %v", all, err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `EXPLAIN `+byTime, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "Bitmap Index Scan on events_at") {
		t.Fatalf("time range search does not use events_at:\n%s", strings.Join(lines, "\n"))
	}
	if err := tx.QueryRow(ctx, byTime, from, to).Scan(&indexed); err != nil || indexed != all {
		t.Fatalf("through events_at: %d events, by scan %d (%v)", indexed, all, err)
	}
}
