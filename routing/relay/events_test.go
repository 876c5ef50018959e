package relay

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing/bus"
	"lienthong/routing/embedbroker"
	"lienthong/routing/evidence"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

const (
	orgA = "000.00.00.C01"
	orgB = "000.00.00.C02"
)

// eventsRig is a ledger with the evidence log, its sequencer, and a broker.
type eventsRig struct {
	t    *testing.T
	l    *ledger.Ledger
	tail *evidence.Tail
	cfg  bus.Config
	seq  *evidence.Sequencer
	seqN int // documents created so far
}

func newEventsRig(t *testing.T, brokers []string) *eventsRig {
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
	if err := evidence.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	l := ledger.New(pool, ledger.Config{})
	for _, c := range []string{orgA, orgB} {
		if err := l.UpsertOrgan(ctx, ledger.Organ{Code: c, Name: c, Channel: ledger.ChannelPull, Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	if brokers == nil {
		brokers = embedbroker.StartForTest(t).Addrs()
	}
	cfg := bus.Config{Brokers: brokers, Prefix: fmt.Sprintf("t%d", time.Now().UnixNano()), Partitions: 4}
	if err := bus.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := evidence.NewSequencer(pool, evidence.SequencerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &eventsRig{t: t, l: l, tail: evidence.NewTail(pool), cfg: cfg, seq: seq}
}

// producer returns a real producer to the rig's broker.
func (r *eventsRig) producer() *bus.Producer {
	p := bus.NewProducer(r.cfg)
	r.t.Cleanup(func() { _ = p.Close() })
	return p
}

// run starts fn in the background until the test ends.
func (r *eventsRig) run(fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fn(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// flow takes n new documents A → B through every stage the ledger records
// with events: accepted (group commit), routed, delivering, delivered (the
// attempts of a run settled together), acknowledged (one transaction); and
// one admin action. It returns the document ids.
func (r *eventsRig) flow(n int) []string {
	r.t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			raw := fmt.Appendf(nil, "<d%d/>", r.seqN+i)
			sum := sha256.Sum256(raw)
			a, err := r.l.Accept(ctx, ledger.NewDocument{Sender: orgA, DocRef: fmt.Sprint("D", r.seqN+i), Format: "edxml",
				Recipients: []string{orgB}, Raw: raw, SHA256: sum[:]})
			ids[i], errs[i] = a.ID, err
		})
	}
	wg.Wait()
	r.seqN += n
	if err := errors.Join(errs...); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.l.Route(ctx, ids, r.l.Organ); err != nil {
		r.t.Fatal(err)
	}
	var dids []int64
	for _, id := range ids {
		var did int64
		if err := r.l.Pool().QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1`, id).Scan(&did); err != nil {
			r.t.Fatal(err)
		}
		dids = append(dids, did)
	}
	start := time.Now()
	as, err := r.l.Attempts(ctx, dids)
	if err != nil || len(as) != n {
		r.t.Fatalf("attempts: %d of %d, %v", len(as), n, err)
	}
	outs := make([]ledger.Outcome, len(as))
	for i, a := range as {
		outs[i] = a.Delivered(start)
	}
	if k, err := r.l.Settle(ctx, outs); err != nil || k != n {
		r.t.Fatalf("settle: %d of %d, %v", k, n, err)
	}
	for _, id := range ids {
		if _, err := r.l.Ack(ctx, orgB, id); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := r.l.AdminEvent(ctx, ledger.AdminLimitsChanged, "test", map[string]any{"organ": orgB}); err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// storedEvent is an events row as the test expects to read it on lt.events.
type storedEvent struct {
	doc, recp, kind, state string
	leaf                   uint64
}

// events returns every committed event by id, with its leaf index.
func (r *eventsRig) events() map[int64]storedEvent {
	r.t.Helper()
	rows, err := r.l.Pool().Query(context.Background(), `SELECT e.id, coalesce(e.document_id::text, ''), e.recipient,
		e.kind, e.state, coalesce(l.leaf_index, -1) FROM events e LEFT JOIN log_leaves l ON l.event_id = e.id`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]storedEvent{}
	for rows.Next() {
		var id, leaf int64
		var e storedEvent
		if err := rows.Scan(&id, &e.doc, &e.recp, &e.kind, &e.state, &leaf); err != nil {
			r.t.Fatal(err)
		}
		e.leaf = uint64(leaf)
		out[id] = e
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// sequenceAll appends every committed event to the log.
func (r *eventsRig) sequenceAll() int {
	r.t.Helper()
	total := 0
	for {
		n, err := r.seq.Step(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// waitPublished waits until every committed event is in the log and the
// publish cursor has reached the log's size.
func (r *eventsRig) waitPublished(within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var events, size int64
		_ = r.l.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT size FROM log_state)`).
			Scan(&events, &size)
		c, err := r.tail.Cursor(context.Background())
		if err == nil && size == events && c == uint64(size) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v: %d events, %d leaves, cursor %d (%v)", within, events, size, c, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kafkaEvent is one lt.events message read back from the broker.
type kafkaEvent struct {
	key       string
	partition int
	offset    int64
	ev        EventMessage
}

// readAll reads every message of lt.events back over TCP, partition by
// partition, from the first offset to the last.
func (r *eventsRig) readAll() []kafkaEvent {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := r.cfg.Topic(ledger.TopicEvents)
	var out []kafkaEvent
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
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.cfg.Brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 8 << 20,
			MaxWait: 200 * time.Millisecond})
		if err := rd.SetOffset(kafka.FirstOffset); err != nil {
			r.t.Fatal(err)
		}
		for {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				r.t.Fatalf("partition %d: %v", p, err)
			}
			var ev EventMessage
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				r.t.Fatalf("partition %d offset %d: %v: %s", p, m.Offset, err, m.Value)
			}
			out = append(out, kafkaEvent{key: string(m.Key), partition: p, offset: m.Offset, ev: ev})
			if m.Offset >= last-1 {
				break
			}
		}
		rd.Close()
	}
	return out
}

// check asserts that msgs carry every committed event at least once (exactly
// once when exact), each as stored, keyed by its document (admin events by
// ledger.KindAdmin), and one document's events in event order. It returns
// how many times each event id was read.
func (r *eventsRig) check(msgs []kafkaEvent, exact bool) map[int64]int {
	r.t.Helper()
	want := r.events()
	seen := map[int64]int{}
	lastOf := map[string]int64{} // key → last event id read, in partition order
	for _, m := range msgs {
		e := m.ev
		seen[e.ID]++
		s, ok := want[e.ID]
		if !ok {
			r.t.Fatalf("lt.events carries event %d, which is not committed", e.ID)
		}
		if e.DocumentID != s.doc || e.Recipient != s.recp || e.Kind != s.kind || e.State != s.state || e.LeafIndex != s.leaf ||
			e.At.IsZero() || len(e.Detail) == 0 {
			r.t.Fatalf("event %d: read %+v, stored %+v", e.ID, e, s)
		}
		wantKey := s.doc
		if s.doc == "" {
			wantKey = ledger.KindAdmin
		}
		if m.key != wantKey {
			r.t.Fatalf("event %d keyed %q, want %q", e.ID, m.key, wantKey)
		}
		if last, ok := lastOf[m.key]; ok && e.ID <= last && seen[e.ID] == 1 && m.key != ledger.KindAdmin {
			r.t.Fatalf("document %s: event %d (%s) after event %d", m.key, e.ID, e.Kind, last)
		}
		lastOf[m.key] = max(lastOf[m.key], e.ID)
	}
	for id, s := range want {
		if seen[id] == 0 {
			r.t.Fatalf("event %d (%s %s) never reached lt.events", id, s.kind, s.doc)
		}
		if exact && seen[id] != 1 {
			r.t.Fatalf("event %d (%s %s) read %d times", id, s.kind, s.doc, seen[id])
		}
	}
	return seen
}

// outboxRows returns the outbox's rows by topic.
func (r *eventsRig) outboxRows() map[string]int {
	r.t.Helper()
	rows, err := r.l.Pool().Query(context.Background(), `SELECT topic, count(*) FROM outbox GROUP BY topic`)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var topic string
		var n int
		if err := rows.Scan(&topic, &n); err != nil {
			r.t.Fatal(err)
		}
		out[topic] = n
	}
	return out
}

// Every event of a document's flow reaches lt.events exactly once, keyed by
// its document, in order per document, with its leaf index; the admin action
// too; and the outbox holds no lt.events row, only the lt.route and
// lt.deliver messages. Publishing is batched.
func TestEventsPublishesEveryEventOnceInOrder(t *testing.T) {
	r := newEventsRig(t, nil)
	const docs = 150
	r.flow(docs)
	if n := r.sequenceAll(); n != 5*docs+1 {
		t.Fatalf("%d leaves for %d documents, want %d", n, docs, 5*docs+1)
	}
	if got := r.outboxRows(); len(got) != 2 || got[ledger.TopicRoute] != docs || got[ledger.TopicDeliver] != docs {
		t.Fatalf("outbox rows by topic %v: want %d lt.route and %d lt.deliver, no lt.events", got, docs, docs)
	}
	pub := &countingPublisher{p: r.producer()}
	r.run(NewEvents(r.l, r.tail, pub, EventsConfig{Batch: 300}).Run)
	r.waitPublished(30 * time.Second)
	r.check(r.readAll(), true)
	if c, m := pub.calls.Load(), pub.messages.Load(); m != 5*docs+1 || c > 3 {
		t.Fatalf("%d messages in %d publish calls, want %d in at most 3", m, c, 5*docs+1)
	}
}

// crashAfterPublish publishes for real, then "crashes": it ends the
// publisher's context before the cursor is moved.
type crashAfterPublish struct {
	p     Publisher
	crash context.CancelFunc
}

func (c *crashAfterPublish) Publish(ctx context.Context, msgs []bus.Message) error {
	err := c.p.Publish(ctx, msgs)
	c.crash()
	return err
}

// A crash between the broker's acknowledgement and the cursor's update
// publishes that batch again after the restart, and loses nothing.
func TestEventsRepublishesAfterCrashBeforeCursor(t *testing.T) {
	r := newEventsRig(t, nil)
	r.flow(20)
	r.sequenceAll()
	ctx, crash := context.WithCancel(context.Background())
	const batch = 30
	first := NewEvents(r.l, r.tail, &crashAfterPublish{p: r.producer(), crash: crash}, EventsConfig{Batch: batch})
	if n, err := first.Once(ctx); err == nil || n != 0 {
		t.Fatalf("crashed publish: %d, %v; want an error", n, err)
	}
	if c, err := r.tail.Cursor(context.Background()); err != nil || c != 0 {
		t.Fatalf("cursor after the crash: %d %v, want 0", c, err)
	}
	r.run(NewEvents(r.l, r.tail, r.producer(), EventsConfig{}).Run) // the restart
	r.waitPublished(30 * time.Second)
	seen := r.check(r.readAll(), false)
	twice := 0
	for _, n := range seen {
		switch n {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("an event read %d times", n)
		}
	}
	if twice != batch {
		t.Fatalf("%d events published twice, want the %d of the crashed batch", twice, batch)
	}
}

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// With the broker down nothing is lost: the cursor stays, the API side goes
// on committing events, and everything is published once the broker is back.
func TestEventsCatchUpAfterBrokerOutage(t *testing.T) {
	addr, dir := freePort(t), t.TempDir()
	broker, err := embedbroker.Start(embedbroker.Config{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { broker.Close() }()
	r := newEventsRig(t, []string{addr})
	r.run(r.seq.Run)
	r.run(NewEvents(r.l, r.tail, r.producer(), EventsConfig{}).Run)
	r.flow(10)
	r.waitPublished(30 * time.Second)

	broker.Close()
	r.flow(10)
	var size int64
	deadline := time.Now().Add(30 * time.Second)
	for size != 2*(5*10+1) { // the sequencer does not need the broker
		_ = r.l.Pool().QueryRow(context.Background(), `SELECT size FROM log_state`).Scan(&size)
		if time.Now().After(deadline) {
			t.Fatalf("log size %d with the broker down", size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // the publisher tries and fails meanwhile
	if c, _ := r.tail.Cursor(context.Background()); c != 5*10+1 {
		t.Fatalf("cursor %d with the broker down, want %d (what was published before)", c, 5*10+1)
	}

	if broker, err = embedbroker.Start(embedbroker.Config{DataDir: dir, Listen: addr}); err != nil {
		t.Fatal(err)
	}
	r.waitPublished(60 * time.Second)
	seen := r.check(r.readAll(), false)
	dup := 0
	for _, n := range seen {
		dup += n - 1
	}
	t.Logf("%d events, %d published more than once", len(seen), dup)
}

// Two publishers on one database: one leads, the other stands by, and every
// event is published once.
func TestEventsOneLeader(t *testing.T) {
	r := newEventsRig(t, nil)
	a, b := &countingPublisher{p: r.producer()}, &countingPublisher{p: r.producer()}
	r.run(r.seq.Run)
	r.run(NewEvents(r.l, r.tail, a, EventsConfig{Batch: 7}).Run)
	r.run(NewEvents(r.l, r.tail, b, EventsConfig{Batch: 7}).Run)
	r.flow(30)
	r.waitPublished(30 * time.Second)
	r.check(r.readAll(), true)
	if x, y := a.messages.Load(), b.messages.Load(); x != 0 && y != 0 {
		t.Fatalf("both publishers published: %d and %d messages", x, y)
	}
}

// An event committed while everything is idle reaches lt.events well within
// a second, with the sequencer and the publisher at their defaults: the
// publisher adds little to the sequencer's own polling.
func TestEventsLatency(t *testing.T) {
	r := newEventsRig(t, nil)
	r.run(r.seq.Run)
	r.run(NewEvents(r.l, r.tail, r.producer(), EventsConfig{}).Run)
	// Admin events are keyed ledger.KindAdmin: all on the partition of that key.
	part := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(ledger.KindAdmin)}, 0, 1, 2, 3)
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.cfg.Brokers, Topic: r.cfg.Topic(ledger.TopicEvents),
		Partition: part, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	defer rd.Close()
	if err := rd.SetOffset(kafka.LastOffset); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lat []time.Duration
	for i := range 10 {
		began := time.Now()
		id, err := r.l.AdminEvent(ctx, ledger.AdminLimitsChanged, "test", map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ev EventMessage
			if json.Unmarshal(m.Value, &ev) == nil && ev.ID == id {
				break
			}
		}
		lat = append(lat, time.Since(began))
	}
	slices.Sort(lat)
	t.Logf("commit → read from lt.events: min %v, median %v, max %v", lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)/2] > time.Second {
		t.Fatalf("median latency %v", lat[len(lat)/2])
	}
}
