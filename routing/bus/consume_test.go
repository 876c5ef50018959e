package bus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing/embedbroker"
)

// ConsumeBatches hands a burst over as one batch as soon as the burst ends,
// not after the whole linger, and commits it: a new member of the group
// starts after it.
func TestConsumeBatchesEndsLingerAfterBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir(), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := Config{Brokers: b.Addrs(), Prefix: "c", Partitions: 1}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	publish := func(from, n int) time.Time {
		msgs := make([]Message, n)
		for i := range msgs {
			msgs[i] = Message{Topic: "route", Key: "k", Value: fmt.Appendf(nil, "%d", from+i)}
		}
		if err := p.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	const linger = 3 * time.Second
	type got struct {
		msgs []string
		at   time.Time
	}
	batches := make(chan got, 10)
	consume := func(cctx context.Context) error {
		rd := NewGroupReader(cfg, "route", "burst")
		defer rd.Close()
		return ConsumeBatches(cctx, rd, 100, linger, slog.New(slog.DiscardHandler), func(_ context.Context, ms []kafka.Message) error {
			g := got{at: time.Now()}
			for _, m := range ms {
				g.msgs = append(g.msgs, string(m.Value))
			}
			batches <- g
			return nil
		})
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consume(cctx) }()
	publish(0, 1) // the group's first assignment is not measured
	<-batches
	sent := publish(1, 5)
	g := <-batches
	if len(g.msgs) != 5 || g.msgs[0] != "1" || g.msgs[4] != "5" {
		t.Fatalf("the burst came as %v, want 1..5 in one batch", g.msgs)
	}
	if d := g.at.Sub(sent); d > linger/2 {
		t.Fatalf("a burst of 5 was handed over %v after it was published: the batch waited for the whole linger (%v)", d, linger)
	} else {
		t.Logf("burst handed over %v after the publish (linger %v)", d, linger)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Committed: a new member starts with what comes next.
	cctx, stop = context.WithCancel(ctx)
	go func() { done <- consume(cctx) }()
	publish(6, 1)
	g = <-batches
	stop()
	<-done
	if len(g.msgs) != 1 || g.msgs[0] != "6" {
		t.Fatalf("after a restart the group read %v, want only 6", g.msgs)
	}
}
