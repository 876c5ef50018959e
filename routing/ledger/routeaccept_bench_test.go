package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/pgtest"
)

// BenchmarkRouteCost compares the database work of getting a document routed
// (20 KB, one pull and one push recipient, rounds of 16 concurrent accepts):
// "router" accepts and then routes each round with Route, as the router does
// for one fetch batch of lt.route; "accept" routes in the accept transaction
// (Config.RouteOnAccept). Both then delete the outbox rows they queued, as
// the relay does. It reports, per document, the transactions committed
// (xact_commit), the rows inserted, updated and deleted (pg_stat_user_tables),
// the WAL bytes, the outbox rows, and the server's CPU time. The counters
// are read after the pool's connections have closed, which flushes their
// statistics.
//
//	go test ./routing/ledger -run '^$' -bench RouteCost -benchtime 640x
func BenchmarkRouteCost(b *testing.B) {
	if testing.Short() {
		b.Skip("needs PostgreSQL")
	}
	for _, atAccept := range []bool{false, true} {
		b.Run(map[bool]string{false: "router", true: "accept"}[atAccept], func(b *testing.B) {
			ctx := context.Background()
			url := pgtest.NewDatabase(b)
			pool, err := Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			if err := Migrate(ctx, pool); err != nil {
				b.Fatal(err)
			}
			const round = 16
			l := New(pool, Config{AcceptBatch: round, AcceptFlushers: 1, InboxOnRoute: true, RouteOnAccept: atAccept})
			for _, o := range []Organ{{Code: "000.00.00.C01", Name: "S", Channel: ChannelPush, Endpoint: "http://x", Active: true},
				{Code: "000.00.00.C02", Name: "Pull", Channel: ChannelPull, Active: true},
				{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x", Active: true}} {
				if err := l.UpsertOrgan(ctx, o); err != nil {
					b.Fatal(err)
				}
			}
			rnd := make([]byte, 15*1024)
			_, _ = rand.Read(rnd)
			body := []byte(base64.StdEncoding.EncodeToString(rnd))
			mk := func(i int) NewDocument {
				raw := append(fmt.Appendf(nil, "<d n='%d'>", i), body...)
				sum := sha256.Sum256(raw)
				return NewDocument{Sender: "000.00.00.C01", DocRef: fmt.Sprint("RC", i), Format: "edxml",
					Recipients: []string{"000.00.00.C02", "000.00.00.C03"}, Raw: raw, SHA256: sum[:], Flow: &Flow{Kind: FlowNew},
					Meta: map[string]any{"channel": "api"}, Verification: map[string]any{"outcome": "valid"}}
			}
			// Warm up: statements prepared, counters exist, nothing waits.
			warm := acceptAll(l, []NewDocument{mk(-1)})()[0]
			if _, err := l.Route(ctx, []string{warm.ID}, l.Organ); warm.err != nil || err != nil {
				b.Fatal(warm.err, err)
			}
			s0 := routeCostStats(ctx, b, pool, url)
			cpu0 := postgresCPU(ctx, pool)
			var outbox int64
			b.ResetTimer()
			for i := 0; i < b.N; i += round {
				docs := make([]NewDocument, 0, round)
				for j := i; j < min(i+round, b.N); j++ {
					docs = append(docs, mk(j))
				}
				var ids []string
				for _, r := range acceptAll(l, docs)() {
					if r.err != nil {
						b.Fatal(r.err)
					}
					ids = append(ids, r.ID)
				}
				if !atAccept {
					if _, err := l.Route(ctx, ids, l.Organ); err != nil {
						b.Fatal(err)
					}
				}
				// The relay: read the outbox, delete what it published.
				rows, _ := pool.Query(ctx, `SELECT id FROM outbox ORDER BY id LIMIT 1000`)
				ob, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY ($1)`, ob); err != nil {
					b.Fatal(err)
				}
				outbox += int64(len(ob))
			}
			b.StopTimer()
			cpu1 := postgresCPU(ctx, pool)
			s1 := routeCostStats(ctx, b, pool, url)
			n := float64(b.N)
			b.ReportMetric(float64(s1.commits-s0.commits)/n, "commits/doc")
			b.ReportMetric(float64(s1.ins-s0.ins)/n, "ins/doc")
			b.ReportMetric(float64(s1.upd-s0.upd)/n, "upd/doc")
			b.ReportMetric(float64(s1.del-s0.del)/n, "del/doc")
			b.ReportMetric(float64(s1.wal-s0.wal)/n, "wal-B/doc")
			b.ReportMetric(float64(outbox)/n, "outbox/doc")
			if cpu0 >= 0 && cpu1 >= 0 {
				b.ReportMetric((cpu1-cpu0)/n*1e6, "pg-cpu-µs/doc")
			}
			pool.Close()
		})
	}
}

type routeCost struct{ commits, ins, upd, del, wal int64 }

// routeCostStats closes pool's idle connections (their backends flush their
// statistics as they exit) and reads the counters on a connection of its own.
func routeCostStats(ctx context.Context, b *testing.B, pool *pgxpool.Pool, url string) routeCost {
	b.Helper()
	pool.Reset()
	time.Sleep(200 * time.Millisecond) // the backends' exit
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var s routeCost
	if err := conn.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		(SELECT sum(n_tup_ins)::bigint FROM pg_stat_user_tables), (SELECT sum(n_tup_upd)::bigint FROM pg_stat_user_tables),
		(SELECT sum(n_tup_del)::bigint FROM pg_stat_user_tables), (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).
		Scan(&s.commits, &s.ins, &s.upd, &s.del, &s.wal); err != nil {
		b.Fatal(err)
	}
	return s
}
