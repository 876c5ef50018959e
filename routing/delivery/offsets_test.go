package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/adapters/webhook"
	"lienthong/routing"
	"lienthong/routing/bus"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
)

// Through Kafka: while the last push of a run hangs, the successes before it
// wait for their group commit, and the consumer group's committed offset
// never passes a task whose outcome is not durable in the ledger. Once the
// push returns, every task is delivered and every offset committed.
func TestOffsetsCommittedOnlyAfterTheLedger(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const k = 8
	release := make(chan struct{})
	var last atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seq, _ := strconv.Atoi(r.Header.Get(webhook.HeaderSequence)); seq == k {
			last.Store(true)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before srv.Close, which waits for the handler
	const recp = "000.00.00.R27"
	r := newRig(t, map[string]string{recp: srv.URL}, nil)
	broker := embedbroker.StartForTest(t)
	bc := bus.Config{Brokers: broker.Addrs(), Prefix: "offsets", Partitions: 1}
	if err := bus.EnsureTopics(ctx, bc); err != nil {
		t.Fatal(err)
	}
	const group = "lt-delivery-offsets"
	w, err := New(r.l, Config{Bus: bc, Group: group, Channels: map[string]routing.Channel{"push": &webhook.Pusher{}},
		Now: r.clk.now, Rand: func() float64 { return 0.5 }, Breaker: &Breaker{Threshold: 1000, Now: r.clk.now}})
	if err != nil {
		t.Fatal(err)
	}
	tasks := r.submitN(recp, k)
	var msgs []bus.Message
	for _, m := range tasks {
		b, _ := ledgerJSON(m)
		msgs = append(msgs, bus.Message{Topic: "deliver", Key: m.Recipient, Value: b})
	}
	prod := bus.NewProducer(bc)
	defer prod.Close()
	if err := prod.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := &kafka.Client{Addr: kafka.TCP(broker.Addrs()...)}
	committed := func() int64 {
		t.Helper()
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group,
			Topics: map[string][]int{bc.Topic("deliver"): {0}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Topics[bc.Topic("deliver")] {
			if p.Partition == 0 {
				return max(p.CommittedOffset, 0)
			}
		}
		return 0
	}
	// offsets are those of the tasks, in publication order (one partition).
	check := func() int64 {
		t.Helper()
		c := committed()
		for off := int64(0); off < c && off < k; off++ {
			if st := r.row(tasks[off].DeliveryID).state; st != ledger.StateDelivered {
				t.Fatalf("offset %d committed while its delivery is %s", off, st)
			}
		}
		return c
	}
	deadline := time.Now().Add(20 * time.Second)
	for !last.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the last push never came")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 5 { // commits run every 100 ms
		check()
		time.Sleep(100 * time.Millisecond)
	}
	unblock()
	for check() < k {
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of %d offsets", committed(), k)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range tasks {
		if st := r.row(m.DeliveryID).state; st != ledger.StateDelivered {
			t.Fatalf("seq %d: %s", m.Sequence, st)
		}
	}
}
