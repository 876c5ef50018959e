package delivery

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/adapters/webhook"
	"lienthong/routing"
	"lienthong/routing/bus"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/relay"
	"lienthong/routing/router"
)

// benchDocs is how many documents one round of BenchmarkDeliver accepts; each
// has two recipients (a push webhook and a pull inbox).
const benchDocs = 1000

// BenchmarkDeliver measures the stages after the accept commit end to end,
// against real PostgreSQL and the embedded broker over TCP: benchDocs accepted
// 20 KB documents × 2 recipients (one push webhook sink, one pull inbox).
//
//   - deliver: the delivery tasks are published to lt.deliver, and the clock
//     runs until every delivery is in state delivered;
//   - route: lt.route messages are published, the router, the outbox relay
//     and the delivery worker run, until every delivery is delivered.
//   - fulllane: as deliver, with lanes of 200 tasks, so that the push lane
//     is full most of the round (a saturated hub: its tasks back up in
//     Kafka instead of being parked in the ledger; "parked" counts those
//     that were).
//
// It reports deliveries/s (two per document).
func BenchmarkDeliver(b *testing.B) {
	for _, stage := range []string{"deliver", "route", "fulllane"} {
		b.Run(stage, func(b *testing.B) { benchDeliver(b, stage) })
	}
}

func benchDeliver(b *testing.B, stage string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var posts atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
	}))
	b.Cleanup(sink.Close)
	const push, pull = "000.00.00.B01", "000.00.00.B02"
	r := newRig(b, map[string]string{push: sink.URL, pull: ""}, nil)
	poll := r.l.Pool() // the benchmark's own queries, not counted
	stmts := r.counting()
	l := ledger.New(r.l.Pool(), ledger.Config{}) // the real clock; statements counted
	broker := embedbroker.StartForTest(b)
	bc := bus.Config{Brokers: broker.Addrs(), Prefix: "bench", Partitions: 8}
	if err := bus.EnsureTopics(ctx, bc); err != nil {
		b.Fatal(err)
	}
	var parked atomic.Int64
	depth := 0 // the default
	if stage == "fulllane" {
		depth = 200
	}
	w, err := New(l, Config{Bus: bc, LaneDepth: depth, Channels: map[string]routing.Channel{"push": &webhook.Pusher{}, "pull": Inbox{}},
		OnResult: func(_, outcome string, _ time.Duration) {
			if outcome == "deferred" {
				parked.Add(1)
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	prod := bus.NewProducer(bc)
	defer prod.Close()
	var wg sync.WaitGroup
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}
	run(w.Run)
	if stage == "route" {
		run(router.New(l, router.Config{Bus: bc}).Run)
	}
	defer func() { cancel(); wg.Wait() }()

	body := make([]byte, 20<<10)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	round := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		round++
		ids := acceptMany(b, l, round, body, []string{push, pull})
		var msgs []bus.Message
		if stage != "route" {
			if _, err := l.Route(ctx, ids, l.Organ); err != nil {
				b.Fatal(err)
			}
			keys, payloads := rawOutbox(b, l, ledger.TopicDeliver)
			for i := range keys {
				msgs = append(msgs, bus.Message{Topic: "deliver", Key: keys[i], Value: payloads[i]})
			}
		} else {
			for _, id := range ids {
				msgs = append(msgs, bus.Message{Topic: "route", Key: id,
					Value: fmt.Appendf(nil, `{"document_id":%q}`, id)})
			}
		}
		if _, err := l.Pool().Exec(ctx, `DELETE FROM outbox`); err != nil {
			b.Fatal(err)
		}
		// What the stages write to the outbox from now on goes out (deliver
		// tasks of the router; parked tasks that come back through the
		// scheduler).
		rctx, stop := context.WithCancel(ctx)
		var rwg sync.WaitGroup
		rwg.Add(2)
		go func() { defer rwg.Done(); _ = relay.New(l, prod, relay.Config{}).Run(rctx) }()
		go func() { defer rwg.Done(); _ = (&Scheduler{L: l, Every: 100 * time.Millisecond}).Run(rctx) }()
		b.StartTimer()
		start := time.Now()
		stmts0 := stmts.stmts.Load()
		if err := prod.Publish(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		want := int64(round * benchDocs * 2)
		var routedIn time.Duration
		for {
			var n, unrouted int64
			if err := poll.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = $1),
				count(*) FILTER (WHERE state = $2) FROM deliveries`,
				ledger.StateDelivered, ledger.StateAccepted).Scan(&n, &unrouted); err != nil {
				b.Fatal(err)
			}
			if unrouted == 0 && routedIn == 0 {
				routedIn = time.Since(start)
			}
			if n == want {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("round %d: %d of %d deliveries delivered", round, n, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(benchDocs*2)/time.Since(start).Seconds(), "deliveries/s")
		b.ReportMetric(float64(parked.Swap(0)), "parked")
		b.ReportMetric(float64(stmts.stmts.Load()-stmts0)/float64(benchDocs*2), "stmts/delivery")
		b.ReportMetric(routedIn.Seconds()*1000, "ms-to-routed")
		b.StopTimer()
		stop()
		rwg.Wait()
		b.StartTimer()
	}
	if got := posts.Load(); got < int64(b.N*benchDocs) {
		b.Fatalf("%d posts to the push sink, want at least %d", got, b.N*benchDocs)
	}
}

// acceptMany accepts benchDocs documents to recipients, a few at a time.
func acceptMany(tb testing.TB, l *ledger.Ledger, round int, body []byte, recipients []string) []string {
	tb.Helper()
	ids := make([]string, benchDocs)
	var wg sync.WaitGroup
	var failed atomic.Value
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < benchDocs; i += 8 {
				raw := fmt.Appendf(append([]byte(nil), body...), "<n r=%d i=%d/>", round, i)
				sum := sha256.Sum256(raw)
				acc, err := l.Accept(context.Background(), ledger.NewDocument{Sender: sender,
					DocRef: fmt.Sprintf("bench-%d-%d", round, i), Format: "edxml", Recipients: recipients, Raw: raw, SHA256: sum[:]})
				if err != nil {
					failed.Store(err)
					return
				}
				ids[i] = acc.ID
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		tb.Fatal(err)
	}
	return ids
}

// rawOutbox returns the keys and payloads of a topic's outbox rows, in order.
func rawOutbox(tb testing.TB, l *ledger.Ledger, topic string) (keys []string, payloads [][]byte) {
	tb.Helper()
	rows, err := l.Pool().Query(context.Background(), `SELECT key, payload::text FROM outbox WHERE topic = $1 ORDER BY id`, topic)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, p string
		if err := rows.Scan(&k, &p); err != nil {
			tb.Fatal(err)
		}
		keys, payloads = append(keys, k), append(payloads, []byte(p))
	}
	return keys, payloads
}
