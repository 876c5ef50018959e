package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// stmtCounter counts the statements a pool sends, and the explicit
// transactions among them.
type stmtCounter struct{ stmts, begins atomic.Int64 }

func (c *stmtCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.stmts.Add(1)
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(d.SQL)), "begin") {
		c.begins.Add(1)
	}
	return ctx
}

func (c *stmtCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// AckMany is one statement (one round trip, no explicit transaction), and
// two acknowledgements of the same page at once acknowledge each document
// once: one says acknowledged, the other already_acknowledged, and there is
// one event per document.
func TestAckManyIsOneStatementAndOncePerDocument(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	const recp = "000.00.00.C02" // pull
	var ids []string
	for i := range 20 {
		a, err := l.Accept(ctx, doc(fmt.Sprintf("ACK-%d", i), fmt.Sprintf("<ack n=\"%d\"/>", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	if _, err := l.Route(ctx, ids, l.Organ); err != nil {
		t.Fatal(err)
	}
	rows, err := l.pool.Query(ctx, `SELECT id FROM deliveries WHERE recipient = $1 ORDER BY seq`, recp)
	if err != nil {
		t.Fatal(err)
	}
	dids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if done, _, err := l.DeliverInstant(ctx, dids, ChannelPull); err != nil || len(done) != len(ids) {
		t.Fatalf("delivered %d of %d, %v", len(done), len(ids), err)
	}

	cfg, err := pgxpool.ParseConfig(l.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	c := &stmtCounter{}
	cfg.ConnConfig.Tracer = c
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	lc := New(pool, Config{Now: l.now})
	res, err := lc.AckMany(ctx, recp, ids[:2])
	if err != nil || res[0].Outcome != AckDone || res[1].Outcome != AckDone {
		t.Fatalf("ack: %+v %v", res, err)
	}
	if c.stmts.Load() != 1 || c.begins.Load() != 0 {
		t.Fatalf("%d statements (%d transactions begun) for one acknowledgement, want 1 (0)", c.stmts.Load(), c.begins.Load())
	}

	// Two clients acknowledge the same page, in opposite orders, at once.
	rev := make([]string, len(ids))
	for i, id := range ids {
		rev[len(ids)-1-i] = id
	}
	var wg sync.WaitGroup
	out := make([][]AckResult, 2)
	errs := make([]error, 2)
	for i, page := range [][]string{ids, rev} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = lc.AckMany(ctx, recp, append(page, "not-an-id", ids[0]))
		}()
	}
	wg.Wait()
	done := map[string]int{}
	for i := range out {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		for j, r := range out[i] {
			switch {
			case j == len(ids): // not-an-id
				if r.Outcome != AckNotFound {
					t.Fatalf("client %d: %+v", i, r)
				}
			case r.Outcome == AckDone:
				done[r.ID]++
			case r.Outcome != AckAlready:
				t.Fatalf("client %d: %+v", i, r)
			}
		}
	}
	for _, id := range ids {
		want := 1
		if id == ids[0] || id == ids[1] {
			want = 0 // acknowledged before
		}
		if done[id] != want {
			t.Fatalf("%s acknowledged %d times, want %d", id, done[id], want)
		}
		if k := kindsOf(t, l, id); k != "routed delivering delivered acknowledged" {
			t.Fatalf("%s: events %q", id, k)
		}
	}
	var n int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE recipient = $1 AND state = $2
		AND acknowledged_at IS NOT NULL`, recp, StateAcknowledged).Scan(&n); err != nil || n != len(ids) {
		t.Fatalf("%d of %d acknowledged (%v)", n, len(ids), err)
	}
}
