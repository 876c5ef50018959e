package ledger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The delivery stage's statements that reach deliveries by a list of keys
// (Attempts, Settle, AckMany) are planned at each call, never kept as a
// prepared statement of the connection: a generic plan cached while the
// table was small kept sequential scans as it grew (see replanned). The
// statements of other calls still are prepared, so the check can see them.
func TestDeliveryStatementsArePlannedPerCall(t *testing.T) {
	l, clk := newLedger(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(l.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = 1, 1 // one session: its prepared statements are all of them
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	lc := New(pool, Config{Now: clk.now})

	// Set up through l (its own pool); only the calls checked use lc's one session.
	_, push := pushDoc(t, l, "REPLAN-1")
	for range 7 { // past the five custom plans after which PostgreSQL may keep a generic one
		if _, err := lc.Attempts(ctx, []int64{push}); err != nil {
			t.Fatal(err)
		}
	}
	as, err := lc.Attempts(ctx, []int64{push})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts: %d %v", len(as), err)
	}
	if n, err := lc.Settle(ctx, []Outcome{as[0].Delivered(clk.now().Add(-time.Second))}); err != nil || n != 1 {
		t.Fatalf("settle: %d %v", n, err)
	}
	a, err := l.Accept(ctx, doc("REPLAN-2", "<replan/>"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Route(ctx, []string{a.ID}, l.Organ); err != nil {
		t.Fatal(err)
	}
	var pull int64
	if err := l.pool.QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1 AND channel = $2`, a.ID, ChannelPull).Scan(&pull); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.DeliverInstant(ctx, []int64{pull}, ChannelPull); err != nil {
		t.Fatal(err)
	}
	if res, err := lc.AckMany(ctx, "000.00.00.C02", []string{a.ID}); err != nil || res[0].Outcome != AckDone {
		t.Fatalf("ack: %+v %v", res, err)
	}

	// A call of another kind on the same session is prepared, so the view
	// does show this session's statements.
	if _, err := lc.Organ(ctx, "000.00.00.C01"); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT statement FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	var prepared []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		prepared = append(prepared, s)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	sawOther := false
	for _, s := range prepared {
		sawOther = sawOther || strings.Contains(s, "organs")
		for name, marker := range map[string]string{"Attempts": attemptsSQL, "Settle": settleSQL,
			"AckMany": "SELECT document_id, state FROM deliveries WHERE recipient = $1 AND document_id = ANY ($2)"} {
			if strings.Contains(s, marker) {
				t.Errorf("%s's statement is prepared on the connection (a cached plan): %.80s…", name, s)
			}
		}
	}
	if !sawOther {
		t.Fatalf("the directory lookup is not among the session's prepared statements %q: the check cannot see them", prepared)
	}
}
