package ledger

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/pgtest"
)

// EnvDeliveryCost makes TestDeliveryWriteCost run: it drives documents
// through the whole delivery life cycle and logs what PostgreSQL wrote for
// them (rows updated, HOT updates, WAL records and bytes per relation). It
// needs a superuser (pg_walinspect), as the test cluster has. Its numbers
// are counts, not timings: they do not depend on the load of the machine.
const EnvDeliveryCost = "LT_DELIVERY_COST"

// costPhase, when set, is told as runDocs finishes each phase of the life
// cycle (accept, route, push, pull, ack), so that the measure can be split.
var costPhase func(phase string)

// costDocs is the number of documents of TestDeliveryWriteCost
// (LT_DELIVERY_COST=<n> overrides it).
const costDocs = 1000

// TestDeliveryWriteCost accepts documents for a push and a pull recipient
// and takes each delivery to its end the way the stages do (router batches,
// push runs read and settled together, pull runs delivered at once, inbox
// pages acknowledged together), then reports per document: deliveries
// updated and HOT-updated, WAL records and bytes, in total and per relation.
func TestDeliveryWriteCost(t *testing.T) {
	if os.Getenv(EnvDeliveryCost) == "" {
		t.Skip("set " + EnvDeliveryCost + "=1 to measure")
	}
	n := costDocs
	if v, err := strconv.Atoi(os.Getenv(EnvDeliveryCost)); err == nil && v > 1 {
		n = v
	}
	for _, onRoute := range []bool{false, true} {
		t.Run(fmt.Sprintf("InboxOnRoute=%v", onRoute), func(t *testing.T) { measureDeliveryCost(t, n, onRoute) })
	}
}

func measureDeliveryCost(t *testing.T, n int, inboxOnRoute bool) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	l := New(pool, Config{InboxOnRoute: inboxOnRoute})
	for _, o := range []Organ{{Code: "000.00.00.C01", Name: "S", Channel: ChannelPull},
		{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x"},
		{Code: "000.00.00.C04", Name: "Pull", Channel: ChannelPull}} {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if ff := os.Getenv(EnvDeliveryCost + "_FILLFACTOR"); ff != "" { // experiments
		if _, err := pool.Exec(ctx, `ALTER TABLE deliveries SET (fillfactor = `+ff+`)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_walinspect`); err != nil {
		t.Skipf("pg_walinspect: %v", err)
	}
	var start string
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&start); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // the backends so far flush their statistics as they exit
	time.Sleep(100 * time.Millisecond)
	var commits0 int64
	if err := pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).
		Scan(&commits0); err != nil {
		t.Fatal(err)
	}
	// The WAL of each phase of the life cycle, as ranges of LSNs.
	type span struct{ from, to string }
	var phases []string
	spans := map[string][]span{}
	mark := start
	costPhase = func(phase string) {
		var now string
		if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		if _, ok := spans[phase]; !ok {
			phases = append(phases, phase)
		}
		if now != mark { // a phase that wrote nothing has no WAL range (pg_get_wal_records_info refuses an empty one)
			spans[phase] = append(spans[phase], span{mark, now})
		}
		mark = now
	}
	defer func() { costPhase = nil }()
	if w, err := strconv.Atoi(os.Getenv(EnvDeliveryCost + "_WAVE")); err == nil && w > 0 {
		// Waves of w documents each taken to their end before the next
		// is accepted: rows are updated while their page still fills.
		for from := 0; from < n; from += w {
			runDocs(t, l, from, min(w, n-from))
		}
	} else {
		runLifecycle(t, l, n)
	}
	var end string
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	pool.Close() // the backends flush their table statistics as they exit

	pool, err = pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for { // pg_walinspect reads only flushed WAL (synchronous_commit is off in the test cluster)
		var flushed bool
		if err := pool.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, end).Scan(&flushed); err != nil {
			t.Fatal(err)
		}
		if flushed {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ins, upd, hot, commits int64
	var walBytes float64
	if err := pool.QueryRow(ctx, `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_wal_lsn_diff($2, $1),
			(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())
		FROM pg_stat_user_tables WHERE relname = 'deliveries'`, start, end).Scan(&ins, &upd, &hot, &walBytes, &commits); err != nil {
		t.Fatal(err)
	}
	per := func(x float64) float64 { return x / float64(n) }
	t.Logf("%d documents, 2 recipients (push, pull): per document deliveries %.2f inserted, %.2f updated, %.2f HOT; "+
		"WAL %.0f bytes; %.2f transactions committed (read-only ones included)",
		n, per(float64(ins)), per(float64(upd)), per(float64(hot)), per(walBytes), per(float64(commits-commits0)))

	// WAL records of the run, by the relation of their first block.
	rows, err := pool.Query(ctx, `SELECT coalesce(block_ref, ''), record_length FROM pg_get_wal_records_info($1, $2)`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	relOf := regexp.MustCompile(`rel \d+/\d+/(\d+)`)
	type tally struct{ records, bytes int64 }
	byNode := map[string]*tally{}
	var total tally
	for rows.Next() {
		var ref string
		var length int64
		if err := rows.Scan(&ref, &length); err != nil {
			t.Fatal(err)
		}
		node := "(none)"
		if m := relOf.FindStringSubmatch(ref); m != nil {
			node = m[1]
		}
		if byNode[node] == nil {
			byNode[node] = &tally{}
		}
		byNode[node].records++
		byNode[node].bytes += length
		total.records++
		total.bytes += length
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	rows, err = pool.Query(ctx, `SELECT pg_relation_filenode(oid)::text, relname, pg_relation_size(oid) FROM pg_class
		WHERE pg_relation_filenode(oid) IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for rows.Next() {
		var node, name string
		var size int64
		if err := rows.Scan(&node, &name, &size); err != nil {
			t.Fatal(err)
		}
		names[node], sizes[name] = name, size
	}
	type line struct {
		name string
		tally
	}
	var lines []line
	for node, tl := range byNode {
		name := names[node]
		if name == "" {
			name = "filenode " + node
		}
		lines = append(lines, line{name, *tl})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].bytes > lines[j].bytes })
	var b strings.Builder
	fmt.Fprintf(&b, "WAL per document: %.1f records, %.0f bytes (without full-page images)\n",
		per(float64(total.records)), per(float64(total.bytes)))
	fmt.Fprintf(&b, "%-40s %10s %10s %12s\n", "relation", "records", "bytes", "size now")
	for _, ln := range lines {
		fmt.Fprintf(&b, "%-40s %10.2f %10.0f %12d\n", ln.name, per(float64(ln.records)), per(float64(ln.bytes)), sizes[ln.name])
	}
	t.Log("\n" + b.String())

	// The records of the deliveries heap, by type.
	rows, err = pool.Query(ctx, `SELECT resource_manager || ' ' || split_part(record_type, ' ', 1), count(*), sum(record_length)
		FROM pg_get_wal_records_info($1, $2)
		WHERE block_ref LIKE '%/' || pg_relation_filenode('deliveries') || ' %' GROUP BY 1 ORDER BY 3 DESC`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	for rows.Next() {
		var kind string
		var cnt, bytes int64
		if err := rows.Scan(&kind, &cnt, &bytes); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%-30s %8.2f records %8.0f bytes per document\n", kind, per(float64(cnt)), per(float64(bytes)))
	}
	t.Log("deliveries heap records:\n" + b.String())

	// Write transactions: their commit records (a read-only transaction
	// writes none).
	var commitRecs int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_get_wal_records_info($1, $2)
		WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%'`, start, end).Scan(&commitRecs); err != nil {
		t.Fatal(err)
	}
	t.Logf("write transactions: %.3f per document (%d commit records)", per(float64(commitRecs)), commitRecs)

	// Per phase: write transactions (commit records), WAL records and bytes.
	b.Reset()
	fmt.Fprintf(&b, "%-8s %14s %12s %10s\n", "phase", "transactions", "records", "bytes")
	for _, ph := range phases {
		var commits, records, bytes int64
		for _, sp := range spans[ph] {
			var c, r, by int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%'),
				count(*), coalesce(sum(record_length), 0) FROM pg_get_wal_records_info($1, $2)`, sp.from, sp.to).
				Scan(&c, &r, &by); err != nil {
				t.Fatal(err)
			}
			commits, records, bytes = commits+c, records+r, bytes+by
		}
		fmt.Fprintf(&b, "%-8s %14.3f %12.2f %10.0f\n", ph, per(float64(commits)), per(float64(records)), per(float64(bytes)))
	}
	t.Log("per document, by phase (without full-page images):\n" + b.String())
}

// runLifecycle accepts n documents from C01 to C03 (push) and C04 (pull)
// and takes every delivery to its end: routed, delivered, and for the pull
// recipient acknowledged.
func runLifecycle(t *testing.T, l *Ledger, n int) {
	t.Helper()
	runDocs(t, l, 0, n)
}

// runDocs is runLifecycle for the documents from, from+1, … from+n-1.
func runDocs(t *testing.T, l *Ledger, from, n int) {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				d := doc(fmt.Sprintf("COST-%d", from+i), fmt.Sprintf("<doc n=%q/>", strconv.Itoa(from+i)))
				d.Recipients = []string{"000.00.00.C03", "000.00.00.C04"}
				a, err := l.Accept(ctx, d)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = a.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if costPhase != nil {
		costPhase("accept")
	}
	// The router sees the documents in the order of their route messages,
	// which the accepts queued in commit order: the order of sequences.
	rows, err := l.pool.Query(ctx, `SELECT document_id::text FROM deliveries WHERE recipient = $1
		AND document_id::text = ANY ($2) ORDER BY seq`, "000.00.00.C04", ids)
	if err != nil {
		t.Fatal(err)
	}
	byRoute := make([]string, 0, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		byRoute = append(byRoute, id)
	}
	if len(byRoute) != n {
		t.Fatalf("%d of %d documents for C04", len(byRoute), n)
	}
	const batch = 64
	for i := 0; i < n; i += batch {
		if _, err := l.Route(ctx, byRoute[i:min(i+batch, n)], l.Organ); err != nil {
			t.Fatal(err)
		}
	}
	if costPhase != nil {
		costPhase("route")
	}
	runs := func(recipient string) [][]int64 {
		rows, err := l.pool.Query(ctx, `SELECT id FROM deliveries WHERE recipient = $1 AND document_id::text = ANY ($2)
			AND state = $3 ORDER BY seq`, recipient, ids, StateRouted)
		if err != nil {
			t.Fatal(err)
		}
		var all []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			all = append(all, id)
		}
		var out [][]int64
		for i := 0; i < len(all); i += batch {
			out = append(out, all[i:min(i+batch, len(all))])
		}
		return out
	}
	for _, run := range runs("000.00.00.C03") {
		as, err := l.Attempts(ctx, run)
		if err != nil || len(as) != len(run) {
			t.Fatalf("attempts: %d of %d, %v", len(as), len(run), err)
		}
		outs := make([]Outcome, len(as))
		for i, a := range as {
			outs[i] = a.Delivered(l.now())
		}
		if k, err := l.Settle(ctx, outs); err != nil || k != len(run) {
			t.Fatalf("settle: %d of %d, %v", k, len(run), err)
		}
	}
	if costPhase != nil {
		costPhase("push")
	}
	for _, run := range runs("000.00.00.C04") { // the routed ones (all of them unless InboxOnRoute)
		if _, other, err := l.DeliverInstant(ctx, run, ChannelPull); err != nil || len(other) != 0 {
			t.Fatalf("instant: %d other, %v", len(other), err)
		}
	}
	if costPhase != nil {
		costPhase("pull")
	}
	var inInbox int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE recipient = $1 AND document_id::text = ANY ($2)
		AND state = $3`, "000.00.00.C04", ids, StateDelivered).Scan(&inInbox); err != nil || inInbox != n {
		t.Fatalf("%d of %d pull deliveries delivered (%v)", inInbox, n, err)
	}
	for after := int64(0); ; {
		page, err := l.Inbox(ctx, "000.00.00.C04", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		docs := make([]string, len(page))
		for i, it := range page {
			docs[i] = it.DocumentID
			after = it.Sequence
		}
		if _, err := l.AckMany(ctx, "000.00.00.C04", docs); err != nil {
			t.Fatal(err)
		}
	}
	if costPhase != nil {
		costPhase("ack")
	}
}
