package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"lienthong/routing/pgtest"
)

// deliveryQueries are the scans of deliveries that the stages run all the
// time (the SQL of Inbox, Predecessors, RequeueStuck, RequeueDue, Orphans,
// the deadline checker, the route and acknowledgement lookups, the dead
// letter list), with arguments for the fixture of TestDeliveryQueriesUseIndexes.
// Each must find its rows through an index, never by reading the table.
var deliveryQueries = []struct {
	name, sql string
	args      func(now time.Time, f planFixture) []any
}{
	{"inbox", `SELECT d.id::text, d.sender, d.doc_ref, d.subject, d.format, r.seq, d.size, d.sha256, r.delivered_at
		FROM deliveries r JOIN documents d ON d.id = r.document_id
		WHERE r.recipient = $1 AND r.state = 'delivered' AND r.channel = 'pull' AND r.seq > $2
		ORDER BY r.seq LIMIT $3`,
		func(time.Time, planFixture) []any { return []any{"000.00.00.C04", int64(0), 100} }},
	{"predecessors", `SELECT id, document_id::text, recipient, seq, state FROM deliveries
		WHERE recipient = $1 AND seq < $2 AND state IN ('accepted', 'routed') ORDER BY seq LIMIT $3`,
		func(_ time.Time, f planFixture) []any { return []any{"000.00.00.C03", f.topSeq, 300} }},
	{"waiting before a routing batch", `SELECT r.code, w.seq FROM unnest($1::text[]) AS r(code)
		LEFT JOIN LATERAL (SELECT seq FROM deliveries WHERE recipient = r.code
			AND state IN ('accepted', 'routed')
			AND id <> ALL ($2) ORDER BY seq LIMIT 1) w ON true`,
		func(time.Time, planFixture) []any { return []any{[]string{"000.00.00.C04"}, []int64{1, 2}} }},
	{"stuck", `SELECT id FROM deliveries WHERE state IN ($2, $3, $4) AND updated_at < $1 AND delivered_at IS NULL
		ORDER BY updated_at LIMIT $5 FOR UPDATE SKIP LOCKED`,
		func(now time.Time, _ planFixture) []any {
			return []any{now.Add(-2 * time.Minute), StateAccepted, StateRouted, StateDelivering, 500}
		}},
	{"due", `SELECT id FROM deliveries WHERE state = 'retrying' AND next_attempt_at <= $1
		ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
		func(now time.Time, _ planFixture) []any { return []any{now, 500} }},
	{"orphans", `SELECT r.id, r.document_id::text, r.recipient, coalesce(r.seq, 0)
		FROM deliveries r
		JOIN LATERAL (SELECT at, detail FROM events e WHERE e.document_id = r.document_id AND e.recipient = r.recipient
			ORDER BY id DESC LIMIT 1) last ON true
		WHERE r.state IN ($1, $2) AND r.delivered_at IS NULL
		  AND coalesce((last.detail->>'next_attempt_at')::timestamptz, last.at) < $3
		  AND (r.state = $1 OR r.updated_at < $3)
		ORDER BY r.recipient, r.seq LIMIT $4`,
		func(now time.Time, _ planFixture) []any {
			return []any{StateRouted, StateRetrying, now.Add(-6 * time.Minute), 500}
		}},
	{"overdue delivery", overdueQueries[0].sql,
		func(now time.Time, _ planFixture) []any { return []any{now, 500, OverdueHorizon} }},
	{"overdue acknowledgement", overdueQueries[1].sql,
		func(now time.Time, _ planFixture) []any { return []any{now, 500, OverdueHorizon} }},
	{"route", `SELECT id, document_id::text, recipient, coalesce(seq, 0) FROM deliveries
		WHERE document_id = ANY ($1) AND state = $2 ORDER BY document_id, id FOR UPDATE`,
		func(_ time.Time, f planFixture) []any { return []any{f.someDocs, StateAccepted} }},
	{"acknowledge", `SELECT document_id, state FROM deliveries WHERE recipient = $1 AND document_id = ANY ($2)
		ORDER BY document_id FOR UPDATE`,
		func(_ time.Time, f planFixture) []any { return []any{"000.00.00.C04", f.someDocs} }},
	{"attempts", attemptsSQL, func(_ time.Time, f planFixture) []any { return []any{f.someIDs, MaxPrefetchBody} }},
	{"settle", settleSQL, func(now time.Time, f planFixture) []any {
		n := len(f.someIDs)
		vs, ks, es, ns := make([]string, n), make([]string, n), make([]string, n), make([]*time.Time, n)
		for i := range n {
			vs[i], ks[i] = "1", OutcomeDelivered
		}
		return []any{f.someIDs, vs, ks, es, ns, now}
	}},
	{"dead letters", `SELECT id FROM deliveries WHERE state = 'dead' AND ($1 = '' OR recipient = $1)
		AND ($2::timestamptz IS NULL OR updated_at >= $2) AND ($3::timestamptz IS NULL OR updated_at < $3)
		ORDER BY id LIMIT $4 FOR UPDATE`,
		func(now time.Time, _ planFixture) []any {
			return []any{"000.00.00.C03", now.Add(-time.Hour), now, 10000}
		}},
}

// planFixture is what the queries' arguments refer to.
type planFixture struct {
	topSeq   int64    // the highest sequence of the push recipient
	someDocs []string // a few document ids
	someIDs  []int64  // a few delivery ids
}

// TestDeliveryQueriesUseIndexes fills a ledger with deliveries in every
// state, mostly finished ones as on a hub that has run for a while, and
// checks with EXPLAIN that every scan of deliveries the stages run uses an
// index of deliveries (so that dropping or narrowing one did not leave a
// query reading the whole table).
func TestDeliveryQueriesUseIndexes(t *testing.T) {
	l, c := newLedger(t)
	ctx := context.Background()
	for _, o := range []Organ{{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x"},
		{Code: "000.00.00.C04", Name: "Pull", Channel: ChannelPull}} {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	runLifecycle(t, l, 3000)
	f := fillEveryState(t, l, 40)
	if _, err := l.pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	now := c.now().Add(time.Hour)
	// The plans PostgreSQL may settle on for a prepared statement run
	// often (pgx prepares each statement once per connection): generic
	// plans, which cannot read the arguments.
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for i, q := range deliveryQueries {
		name := fmt.Sprintf("q%d", i)
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+q.sql); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		args := q.args(now, f)
		ps := make([]string, len(args))
		for j := range args {
			ps[j] = fmt.Sprintf("$%d", j+1)
		}
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) EXECUTE "+name+"("+strings.Join(ps, ", ")+")",
			append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		text := strings.Join(plan, "\n")
		t.Logf("%s (generic plan):\n%s", q.name, text)
		if strings.Contains(text, "Seq Scan on deliveries") {
			t.Errorf("%s (generic plan) reads the whole deliveries table:\n%s", q.name, text)
		}
	}
	for _, q := range deliveryQueries {
		rows, err := l.pool.Query(ctx, "EXPLAIN (COSTS OFF) "+q.sql, q.args(now, f)...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		text := strings.Join(plan, "\n")
		t.Logf("%s:\n%s", q.name, text)
		if strings.Contains(text, "Seq Scan on deliveries") {
			t.Errorf("%s reads the whole deliveries table:\n%s", q.name, text)
		}
	}
}

// fillEveryState accepts k documents for C03 (push) and C04 (pull) and
// leaves their deliveries spread over every state a delivery can be in:
// accepted, routed, delivering, delivered, acknowledged, retrying, dead.
func fillEveryState(t *testing.T, l *Ledger, k int) planFixture {
	t.Helper()
	ctx := context.Background()
	var f planFixture
	ids := make([]string, k)
	for i := range k {
		d := doc(fmt.Sprintf("STATE-%d", i), fmt.Sprintf("<state n='%d'/>", i))
		d.Recipients = []string{"000.00.00.C03", "000.00.00.C04"}
		a, err := l.Accept(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
	}
	f.someDocs = ids[:5]
	// ids[0:k/7] stay accepted; the rest are routed.
	if _, err := l.Route(ctx, ids[k/7:], l.Organ); err != nil {
		t.Fatal(err)
	}
	if err := l.pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM deliveries
		WHERE document_id::text = ANY ($1) ORDER BY id LIMIT 5) s`, ids[k/7:]).Scan(&f.someIDs); err != nil {
		t.Fatal(err)
	}
	pushIDs := func(docs []string) []int64 {
		rows, err := l.pool.Query(ctx, `SELECT id FROM deliveries WHERE document_id::text = ANY ($1) AND recipient = $2
			ORDER BY seq`, docs, "000.00.00.C03")
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		return out
	}
	// Push: routed (2/7…3/7), delivering (3/7…4/7), retrying (4/7…5/7),
	// dead (5/7…6/7), delivered (6/7…). The delivery stage settles attempts
	// without a delivering state (Attempts, Settle); a delivering row is one
	// a worker of an earlier version claimed and left, as the sweep
	// (RequeueStuck) still finds after an upgrade.
	step := func(i int) []string { return ids[i*k/7 : (i+1)*k/7] }
	leaveDelivering(t, l, pushIDs(step(3))...)
	as, err := l.Attempts(ctx, pushIDs(ids[4*k/7:]))
	if err != nil {
		t.Fatal(err)
	}
	step4, step5 := map[int64]bool{}, map[int64]bool{}
	for _, id := range pushIDs(step(4)) {
		step4[id] = true
	}
	for _, id := range pushIDs(step(5)) {
		step5[id] = true
	}
	start := l.now()
	outs := make([]Outcome, len(as))
	for i, a := range as {
		switch {
		case step4[a.ID]:
			outs[i] = a.Retry(start, "HTTP 503", start.Add(time.Minute))
		case step5[a.ID]:
			outs[i] = a.Dead(start, "HTTP 410")
		default:
			outs[i] = a.Delivered(start)
		}
	}
	if n, err := l.Settle(ctx, outs); err != nil || n != len(outs) || len(outs) != len(pushIDs(ids[4*k/7:])) {
		t.Fatalf("settle: %d of %d, %v", n, len(outs), err)
	}
	// Pull: delivered for the routed ones of the first half, acknowledged
	// for some of those.
	var pull []int64
	rows, err := l.pool.Query(ctx, `SELECT id FROM deliveries WHERE document_id::text = ANY ($1) AND recipient = $2
		AND state = 'routed' ORDER BY seq`, ids[:k/2], "000.00.00.C04")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		pull = append(pull, id)
	}
	if _, _, err := l.DeliverInstant(ctx, pull, ChannelPull); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AckMany(ctx, "000.00.00.C04", ids[k/7:2*k/7]); err != nil {
		t.Fatal(err)
	}
	if err := l.pool.QueryRow(ctx, `SELECT max(seq) FROM deliveries WHERE recipient = $1`, "000.00.00.C03").Scan(&f.topSeq); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDeliveryIndexMigrationUpgradesInPlace applies migration 0013 to a
// ledger that already holds deliveries in every state (a hub upgraded in
// place): the new indexes are built over them, the old ones are gone, and
// the scans find the same rows as before the upgrade.
func TestDeliveryIndexMigrationUpgradesInPlace(t *testing.T) {
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
		if name >= "migrations/0013" && name != "migrations/0020_push_pipeline.sql" {
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
	c := &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	l := New(pool, Config{Now: c.now})
	upsertOldOrgans(t, l, Organ{Code: "000.00.00.C01", Name: "S", Channel: ChannelPull, Active: true},
		Organ{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x", Active: true},
		Organ{Code: "000.00.00.C04", Name: "Pull", Channel: ChannelPull, Active: true})
	fillEveryState(t, l, 70)
	type snapshot struct {
		states  map[string]int
		inbox   []int64
		preds   int
		orphans int
	}
	look := func() snapshot {
		s := snapshot{states: map[string]int{}}
		rows, err := pool.Query(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				t.Fatal(err)
			}
			s.states[st] = n
		}
		items, err := l.Inbox(ctx, "000.00.00.C04", 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			s.inbox = append(s.inbox, it.Sequence)
		}
		p, err := l.Predecessors(ctx, "000.00.00.C03", 1<<40, 1000)
		if err != nil {
			t.Fatal(err)
		}
		s.preds = len(p)
		o, err := l.Orphans(ctx, time.Minute, 1000)
		if err != nil {
			t.Fatal(err)
		}
		s.orphans = len(o)
		return s
	}
	c.add(10 * time.Minute)
	old := look()
	for _, st := range []string{StateAccepted, StateRouted, StateDelivering, StateDelivered, StateAcknowledged,
		StateRetrying, StateDead} {
		if old.states[st] == 0 {
			t.Fatalf("fixture has no delivery %s: %v", st, old.states)
		}
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var have []string
	rows, err := pool.Query(ctx, `SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE tablename = 'deliveries' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		have = append(have, s)
	}
	all := strings.Join(have, "\n")
	for _, want := range []string{"deliveries_open: CREATE INDEX deliveries_open ON public.deliveries USING btree (state, updated_at) WHERE (delivered_at IS NULL)",
		"deliveries_inbox: CREATE INDEX deliveries_inbox ON public.deliveries USING btree (recipient, seq)"} {
		if !strings.Contains(all, want) {
			t.Errorf("after the upgrade the indexes of deliveries are\n%s\nwant %s", all, want)
		}
	}
	for _, gone := range []string{"deliveries_stuck", "deliveries_undelivered"} {
		if strings.Contains(all, gone) {
			t.Errorf("%s still exists:\n%s", gone, all)
		}
	}
	if now := look(); !reflect.DeepEqual(now, old) {
		t.Errorf("after the upgrade the scans see %+v, before %+v", now, old)
	}
	if !slices.IsSorted(old.inbox) || len(old.inbox) == 0 {
		t.Errorf("inbox %v: want a non-empty list in sequence order", old.inbox)
	}
	// The sweep finds the stuck deliveries through the new index: every
	// accepted, routed and delivering one, 10 minutes old.
	n, err := l.RequeueStuck(ctx, 2*time.Minute, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := old.states[StateAccepted] + old.states[StateRouted] + old.states[StateDelivering]; n != want {
		t.Errorf("sweep re-announced %d deliveries, want %d", n, want)
	}
	// Accept → deliver → acknowledge still work on the upgraded ledger.
	runLifecycle(t, l, 20)
}
