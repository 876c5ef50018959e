package relay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/routing/bus"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// countingPublisher counts the calls that reach the real producer.
type countingPublisher struct {
	p        *bus.Producer
	calls    atomic.Int64
	messages atomic.Int64
}

func (c *countingPublisher) Publish(ctx context.Context, msgs []bus.Message) error {
	c.calls.Add(1)
	c.messages.Add(int64(len(msgs)))
	return c.p.Publish(ctx, msgs)
}

// setup returns a ledger with n accepted documents (n lt.route outbox rows;
// lt.events is published from the evidence log, events.go) and a
// publisher to the embedded broker.
func setup(tb testing.TB, n int) (*ledger.Ledger, *countingPublisher) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs PostgreSQL and the embedded broker")
	}
	ctx := context.Background()
	pool, err := ledger.Connect(ctx, pgtest.NewDatabase(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := ledger.Migrate(ctx, pool); err != nil {
		tb.Fatal(err)
	}
	l := ledger.New(pool, ledger.Config{})
	for _, c := range []string{"000.00.00.C01", "000.00.00.C02"} {
		if err := l.UpsertOrgan(ctx, ledger.Organ{Code: c, Name: c, Channel: ledger.ChannelPull, Active: true}); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range n {
		raw := fmt.Appendf(nil, "<d%d/>", i)
		sum := sha256.Sum256(raw)
		if _, err := l.Accept(ctx, ledger.NewDocument{Sender: "000.00.00.C01", DocRef: fmt.Sprint("D", i),
			Format: "edxml", Recipients: []string{"000.00.00.C02"}, Raw: raw, SHA256: sum[:]}); err != nil {
			tb.Fatal(err)
		}
	}
	broker := embedbroker.StartForTest(tb)
	cfg := bus.Config{Brokers: broker.Addrs(), Prefix: fmt.Sprintf("t%d", time.Now().UnixNano())}
	if err := bus.EnsureTopics(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
	prod := bus.NewProducer(cfg)
	tb.Cleanup(func() { _ = prod.Close() })
	return l, &countingPublisher{p: prod}
}

func TestRelayPublishesAndDeletesInBatches(t *testing.T) {
	const docs = 1200 // 1200 outbox rows
	l, pub := setup(t, docs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := New(l, pub, Config{Batch: 500})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := l.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows left after 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := pub.messages.Load(); m != docs {
		t.Fatalf("%d messages published, want %d", m, docs)
	}
	if c := pub.calls.Load(); c > 3 {
		t.Fatalf("%d publish calls for %d rows: not batched", c, docs)
	}
	// A new row is relayed promptly: the relay polls an empty outbox often.
	raw := []byte("<late/>")
	sum := sha256.Sum256(raw)
	began := time.Now()
	if _, err := l.Accept(ctx, ledger.NewDocument{Sender: "000.00.00.C01", DocRef: "LATE", Format: "edxml",
		Recipients: []string{"000.00.00.C02"}, Raw: raw, SHA256: sum[:]}); err != nil {
		t.Fatal(err)
	}
	for pub.messages.Load() < docs+1 {
		if time.Since(began) > 2*time.Second {
			t.Fatal("a new outbox row was not relayed within 2s")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("accept → published in %v", time.Since(began))
	cancel()
	<-done
}

// BenchmarkRelay measures outbox rows moved to the broker per second.
func BenchmarkRelay(b *testing.B) {
	l, pub := setup(b, 5000)
	ctx := context.Background()
	r := New(l, pub, Config{})
	b.ResetTimer()
	began := time.Now()
	moved := 0
	for {
		n, err := r.Once(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		moved += n
	}
	b.ReportMetric(float64(moved)/time.Since(began).Seconds(), "rows/s")
}
