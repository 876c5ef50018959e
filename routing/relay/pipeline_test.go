package relay

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"lienthong/routing/bus"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

// outboxRig is a migrated ledger, its pool, and topics on an embedded broker
// reached over TCP.
type outboxRig struct {
	t    testing.TB
	pool *pgxpool.Pool
	l    *ledger.Ledger
	cfg  bus.Config
}

func newOutboxRig(t testing.TB) *outboxRig {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and the embedded broker")
	}
	ctx := context.Background()
	pool, err := ledger.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ledger.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	broker := embedbroker.StartForTest(t)
	cfg := bus.Config{Brokers: broker.Addrs(), Prefix: fmt.Sprintf("t%d", time.Now().UnixNano())}
	if err := bus.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Partitions = 8 // EnsureTopics' default, for reading back
	return &outboxRig{t: t, pool: pool, l: ledger.New(pool, ledger.Config{}), cfg: cfg}
}

func (r *outboxRig) producer() *bus.Producer {
	p := bus.NewProducer(r.cfg)
	r.t.Cleanup(func() { _ = p.Close() })
	return p
}

// seqPayload is what the rig's outbox rows carry: their place in the
// sequence of their key.
type seqPayload struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// insert writes n lt.deliver outbox rows directly, spread over keys, each
// key's rows numbered from first on in id order.
func (r *outboxRig) insert(keys []string, first, n int) {
	r.t.Helper()
	ctx := context.Background()
	var ks []string
	var ps []string
	for i := range n {
		k := keys[i%len(keys)]
		b, _ := json.Marshal(seqPayload{Key: k, N: first + i/len(keys)})
		ks, ps = append(ks, k), append(ps, string(b))
	}
	if _, err := r.pool.Exec(ctx, `INSERT INTO outbox (topic, key, payload)
		SELECT $1, k, p::jsonb FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(k, p, o) ORDER BY o`,
		ledger.TopicDeliver, ks, ps); err != nil {
		r.t.Fatal(err)
	}
}

func (r *outboxRig) backlog() int64 {
	r.t.Helper()
	n, err := r.l.OutboxBacklog(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *outboxRig) waitEmpty(within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for r.backlog() > 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d outbox rows left after %v", r.backlog(), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run runs fn until the test ends.
func (r *outboxRig) run(fn func(context.Context) error) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fn(ctx) }()
	stop := func() { cancel(); <-done }
	r.t.Cleanup(stop)
	return stop
}

// readDeliver reads every message of lt.deliver back over TCP, partition by
// partition, from the first offset to the last: for each key, the sequence
// numbers in the order the broker holds them.
func (r *outboxRig) readDeliver() map[string][]int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := r.cfg.Topic(ledger.TopicDeliver)
	out := map[string][]int{}
	for p := range r.cfg.Partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", r.cfg.Brokers[0], topic, p)
		if err != nil {
			r.t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			r.t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.cfg.Brokers, Topic: topic, Partition: p, MinBytes: 1,
			MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond})
		if err := rd.SetOffset(kafka.FirstOffset); err != nil {
			r.t.Fatal(err)
		}
		for {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				r.t.Fatalf("partition %d: %v", p, err)
			}
			var sp seqPayload
			if err := json.Unmarshal(m.Value, &sp); err != nil || sp.Key != string(m.Key) {
				r.t.Fatalf("partition %d offset %d: %v: key %q, %s", p, m.Offset, err, m.Key, m.Value)
			}
			out[sp.Key] = append(out[sp.Key], sp.N)
			if m.Offset >= last-1 {
				break
			}
		}
		rd.Close()
	}
	return out
}

// checkOrder asserts that every key's messages 0..n-1 were published, each
// first time in order (a republished stretch may repeat earlier numbers, but
// never brings a number before one of its predecessors). It returns how many
// messages were repeats.
func checkOrder(t *testing.T, got map[string][]int, keys []string, n int) int {
	t.Helper()
	repeats := 0
	for _, k := range keys {
		next := 0 // the lowest number not seen yet
		for _, v := range got[k] {
			switch {
			case v == next:
				next++
			case v < next:
				repeats++
			default:
				t.Fatalf("key %s: %d published before %d: %v", k, v, next, got[k])
			}
		}
		if next != n {
			t.Fatalf("key %s: %d of %d messages published", k, next, n)
		}
	}
	return repeats
}

// A commit in this process wakes the relay: with a poll interval of an hour
// a new row is still published at once.
func TestRelayWakesOnCommit(t *testing.T) {
	r := newOutboxRig(t)
	for _, c := range []string{"000.00.00.C01", "000.00.00.C02"} {
		if err := r.l.UpsertOrgan(context.Background(), ledger.Organ{Code: c, Name: c, Channel: ledger.ChannelPull, Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	pub := &countingPublisher{p: r.producer()}
	r.run(New(r.l, pub, Config{Idle: time.Hour}).Run)
	time.Sleep(300 * time.Millisecond) // the relay is leader and idle now
	for i := range 3 {
		raw := fmt.Appendf(nil, "<d%d/>", i)
		sum := sha256.Sum256(raw)
		began := time.Now()
		if _, err := r.l.Accept(context.Background(), ledger.NewDocument{Sender: "000.00.00.C01", DocRef: fmt.Sprint("W", i),
			Format: "edxml", Recipients: []string{"000.00.00.C02"}, Raw: raw, SHA256: sum[:]}); err != nil {
			t.Fatal(err)
		}
		for pub.messages.Load() < int64(i+1) {
			if time.Since(began) > 5*time.Second {
				t.Fatalf("row %d committed %v ago is not published: the relay waits for its poll", i, time.Since(began))
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("accept → acknowledged by the broker in %v", time.Since(began))
		time.Sleep(50 * time.Millisecond)
	}
}

// crashOnCall publishes for real; on call number crashAt, once the broker
// has acknowledged, it ends the relay's leadership (as a crash would) and
// fails, so that the batch is never deleted.
type crashOnCall struct {
	p       Publisher
	crashAt int64
	crash   context.CancelFunc
	calls   atomic.Int64
}

func (c *crashOnCall) Publish(ctx context.Context, msgs []bus.Message) error {
	err := c.p.Publish(ctx, msgs)
	if c.calls.Add(1) == c.crashAt {
		c.crash()
		return errors.New("crashed after the acknowledgement")
	}
	return err
}

// The relay pipelines batches and still keeps every key's order across them;
// a crash between the acknowledgement and the delete publishes the batch
// again (at least once) and skips nothing.
func TestRelayPipelineOrderAndCrash(t *testing.T) {
	r := newOutboxRig(t)
	keys := []string{"000.00.00.K1", "000.00.00.K2", "000.00.00.K3"}
	const batch, perKey = 40, 200
	r.insert(keys, 0, len(keys)*perKey/2)

	ctx, crash := context.WithCancel(context.Background())
	crasher := &crashOnCall{p: r.producer(), crashAt: 4, crash: crash}
	first := New(r.l, crasher, Config{Batch: batch})
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	// Rows keep coming while the relay runs.
	r.insert(keys, perKey/2, len(keys)*perKey/2)
	<-done
	left := r.backlog()
	if left < batch {
		t.Fatalf("%d rows left after the crash, want at least the crashed batch of %d", left, batch)
	}

	pub := &countingPublisher{p: r.producer()}
	r.run(New(r.l, pub, Config{Batch: batch}).Run) // the new leader
	r.waitEmpty(30 * time.Second)
	repeats := checkOrder(t, r.readDeliver(), keys, perKey)
	if repeats < batch {
		t.Fatalf("%d messages published twice, want at least the crashed batch's %d", repeats, batch)
	}
	if c := crasher.calls.Load(); c != 4 {
		t.Fatalf("%d publishes before the crash, want 4", c)
	}
	t.Logf("%d rows left by the crash, %d republished; new leader: %d publishes, %d messages",
		left, repeats, pub.calls.Load(), pub.messages.Load())
}

// A row that commits after rows with higher ids (its id was taken first) is
// published all the same, while the relay pipelines around it.
func TestRelayPublishesLateCommittedLowerID(t *testing.T) {
	r := newOutboxRig(t)
	ctx := context.Background()
	pub := &countingPublisher{p: r.producer()}
	r.run(New(r.l, pub, Config{Batch: 10}).Run)

	tx, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after commit
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, key, payload) VALUES ($1, 'late', '{"key":"late","n":0}')`,
		ledger.TopicDeliver); err != nil {
		t.Fatal(err)
	}
	keys := []string{"000.00.00.K1", "000.00.00.K2"}
	r.insert(keys, 0, 100)
	r.waitEmpty(30 * time.Second)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r.insert(keys, 50, 100) // keeps the pipeline busy
	r.waitEmpty(30 * time.Second)
	got := r.readDeliver()
	checkOrder(t, got, keys, 100)
	if len(got["late"]) != 1 {
		t.Fatalf("the late row was published %d times, want once", len(got["late"]))
	}
	if m := pub.messages.Load(); m != 201 {
		t.Fatalf("%d messages published, want 201 (no repeats without a crash)", m)
	}
}

// Two relays on one database: only the leader publishes; when it stops, the
// other takes over.
func TestRelayOneLeader(t *testing.T) {
	r := newOutboxRig(t)
	keys := []string{"000.00.00.K1"}
	a := &countingPublisher{p: r.producer()}
	b := &countingPublisher{p: r.producer()}
	stopA := r.run(New(r.l, a, Config{Batch: 25}).Run)
	time.Sleep(200 * time.Millisecond) // a leads
	r.run(New(r.l, b, Config{Batch: 25}).Run)
	r.insert(keys, 0, 300)
	r.waitEmpty(30 * time.Second)
	if a.messages.Load() != 300 || b.messages.Load() != 0 {
		t.Fatalf("published by a %d, by b %d; want 300 and 0", a.messages.Load(), b.messages.Load())
	}
	stopA()
	r.insert(keys, 300, 100)
	r.waitEmpty(30 * time.Second)
	if a.messages.Load() != 300 || b.messages.Load() != 100 {
		t.Fatalf("after a stopped: published by a %d, by b %d; want 300 and 100", a.messages.Load(), b.messages.Load())
	}
	checkOrder(t, r.readDeliver(), keys, 400)
}

// BenchmarkRelayHop measures one outbox hop at no load: from the commit of
// an accept transaction (one lt.route row) to a consumer-group reader's
// FetchMessage over TCP, through the relay and a durable broker (DataDir,
// fsync per batch, as in hubd dev). ns/op is the hop's latency.
func BenchmarkRelayHop(b *testing.B) {
	r := newOutboxRig(b)
	ctx := context.Background()
	for _, c := range []string{"000.00.00.C01", "000.00.00.C02"} {
		if err := r.l.UpsertOrgan(ctx, ledger.Organ{Code: c, Name: c, Channel: ledger.ChannelPull, Active: true}); err != nil {
			b.Fatal(err)
		}
	}
	br, err := embedbroker.Start(embedbroker.Config{DataDir: b.TempDir(), Partitions: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	r.cfg = bus.Config{Brokers: br.Addrs(), Prefix: "hop", Partitions: 2}
	if err := bus.EnsureTopics(ctx, r.cfg); err != nil {
		b.Fatal(err)
	}
	r.run(New(r.l, r.producer(), Config{}).Run)
	rd := bus.NewGroupReader(r.cfg, "route", "hop")
	defer rd.Close()
	accept := func(i int) {
		raw := fmt.Appendf(nil, "<hop%d/>", i)
		sum := sha256.Sum256(raw)
		if _, err := r.l.Accept(ctx, ledger.NewDocument{Sender: "000.00.00.C01", DocRef: fmt.Sprint("H", i),
			Format: "edxml", Recipients: []string{"000.00.00.C02"}, Raw: raw, SHA256: sum[:]}); err != nil {
			b.Fatal(err)
		}
	}
	fetch := func() {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := rd.FetchMessage(fctx); err != nil {
			b.Fatal(err)
		}
	}
	accept(-1) // the group's first assignment is not part of the hop
	fetch()
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		time.Sleep(2 * time.Millisecond) // the relay is idle again
		b.StartTimer()
		accept(i)
		began := time.Now() // Accept returns after the commit
		fetch()
		total += time.Since(began)
		i++
	}
	b.ReportMetric(float64(total.Microseconds())/float64(i)/1000, "ms/hop")
}

// BenchmarkRelayDrain measures how fast the leader drains a backlog of 5000
// lt.deliver rows (10 keys) to a durable broker with 2 partitions, as hubd
// dev runs it: rows/s, and rows per publish.
func BenchmarkRelayDrain(b *testing.B) {
	r := newOutboxRig(b)
	ctx := context.Background()
	br, err := embedbroker.Start(embedbroker.Config{DataDir: b.TempDir(), Partitions: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	r.cfg = bus.Config{Brokers: br.Addrs(), Prefix: "drain", Partitions: 2}
	if err := bus.EnsureTopics(ctx, r.cfg); err != nil {
		b.Fatal(err)
	}
	pub := &countingPublisher{p: r.producer()}
	r.run(New(r.l, pub, Config{}).Run)
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("000.00.00.K%02d", i)
	}
	const rows = 5000
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		r.insert(keys, 0, rows)
		b.StartTimer()
		began := time.Now()
		r.waitEmpty(time.Minute)
		took += time.Since(began)
	}
	b.ReportMetric(float64(pub.messages.Load())/took.Seconds(), "rows/s")
	b.ReportMetric(float64(pub.messages.Load())/float64(pub.calls.Load()), "rows/publish")
}
