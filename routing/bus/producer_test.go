package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing/embedbroker"
)

// TestPublishKeepsOrderAcrossBatches: more messages for one partition than
// fit in one producer batch, in one Publish, arrive complete and in order.
func TestPublishKeepsOrderAcrossBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := Config{Brokers: b.Addrs(), Prefix: "o", Partitions: 4}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	n := 3*producerBatch + 7
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Topic: "deliver", Key: "000.00.00.C02", Value: fmt.Appendf(nil, "%d", i)}
	}
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	rd := NewGroupReader(cfg, "deliver", "order")
	defer rd.Close()
	for i := range n {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := string(m.Value); got != fmt.Sprint(i) {
			t.Fatalf("message %d is %s", i, got)
		}
	}
}

// BenchmarkPublish publishes what the relay publishes under load: 500
// messages (documents' route messages, events and deliveries to two
// recipients) over the three topics' partitions.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	br, err := embedbroker.Start(embedbroker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	cfg := Config{Brokers: br.Addrs(), Prefix: "b", Partitions: 8}
	if err := EnsureTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	msgs := make([]Message, 0, 500)
	for d := 0; len(msgs) < 500; d++ {
		id := fmt.Sprintf("0197a1b2-0000-7000-8000-%012d", d)
		msgs = append(msgs, Message{Topic: "route", Key: id, Value: []byte(`{"document_id":"` + id + `"}`)})
		for e := 0; e < 6 && len(msgs) < 500; e++ {
			msgs = append(msgs, Message{Topic: "events", Key: id, Value: []byte(`{"kind":"accepted"}`)})
		}
		for _, r := range []string{"000.00.00.C02", "000.00.00.C03"} {
			if len(msgs) < 500 {
				msgs = append(msgs, Message{Topic: "deliver", Key: r, Value: []byte(`{"document_id":"` + id + `"}`)})
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Publish(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishSmall publishes what the relay publishes at a light load,
// 20 messages, to a durable broker (DataDir, fsync per partition batch, as
// in `hubd dev`), with the messages' keys spread over 1, 2 or 8 partitions:
// the broker's time grows with the partitions a publish touches.
func BenchmarkPublishSmall(b *testing.B) {
	ctx := context.Background()
	br, err := embedbroker.Start(embedbroker.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	cfg := Config{Brokers: br.Addrs(), Prefix: "s", Partitions: 8}
	if err := EnsureTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	for _, keys := range []int{1, 2, 20} {
		msgs := make([]Message, 20)
		parts := map[int]bool{}
		for i := range msgs {
			k := fmt.Sprintf("000.00.00.K%02d", i%keys)
			msgs[i] = Message{Topic: "deliver", Key: k, Value: []byte(`{"document_id":"0197a1b2-0000-7000-8000-000000000000"}`)}
			parts[(&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(k)}, 0, 1, 2, 3, 4, 5, 6, 7)] = true
		}
		b.Run(fmt.Sprintf("partitions=%d", len(parts)), func(b *testing.B) {
			for b.Loop() {
				if err := p.Publish(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
