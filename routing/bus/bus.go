package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Logical topics; Config.Prefix is put in front ("lt" → "lt.route").
var Topics = []string{"route", "deliver", "events", "dead", "security"}

// Config locates the brokers and names the topics.
type Config struct {
	Brokers    []string
	Prefix     string // default "lt"
	Partitions int    // partitions for topics this package creates; default 8
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "lt"
	}
	if c.Partitions <= 0 {
		c.Partitions = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Topic returns the Kafka topic name of a logical topic.
func (c Config) Topic(logical string) string {
	c.setDefaults()
	return c.Prefix + "." + logical
}

// EnsureTopics creates the hub's topics that do not exist yet.
func EnsureTopics(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if len(cfg.Brokers) == 0 {
		return errors.New("bus: no brokers configured")
	}
	var d kafka.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Brokers[0])
	if err != nil {
		return fmt.Errorf("bus: dial %s: %w", cfg.Brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("bus: find controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("bus: dial controller: %w", err)
	}
	defer cc.Close()
	var specs []kafka.TopicConfig
	for _, t := range Topics {
		specs = append(specs, kafka.TopicConfig{Topic: cfg.Topic(t), NumPartitions: cfg.Partitions, ReplicationFactor: 1})
	}
	if err := cc.CreateTopics(specs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("bus: create topics: %w", err)
	}
	return nil
}

// Message is one record to publish, on a logical topic.
type Message struct {
	Topic string // logical topic
	Key   string
	Value []byte
}

// producerBatch is the producer's batch size: kafka-go allocates room for
// this many messages for every partition a Publish touches (about 150 bytes
// each, whatever the batch holds), so 1000 cost a relay batch of 500 rows,
// spread over two dozen partitions, megabytes of garbage. A partition given
// more messages in one Publish gets them in several produce requests, in
// order (kafka-go writes a partition's batches one after the other).
const producerBatch = 128

// producerLinger is the producer's BatchTimeout: how long kafka-go holds a
// partition's batch open for more messages before sending it. Publish is
// synchronous and hands over all its messages at once (under the partition
// writer's lock, so a batch cannot be sent half filled), and its callers (the
// relays) publish one batch at a time: there is nothing to wait for. The
// default 2 ms was added to every Publish, i.e. to every outbox hop
// (BenchmarkPublishSmall, one partition of a durable broker, busy machine:
// 5.4–5.6 ms → 2.0–2.5 ms per Publish).
const producerLinger = 10 * time.Microsecond

// Producer publishes batches synchronously: WriteMessages returns after the
// broker has acknowledged every message (acks=all).
type Producer struct {
	cfg Config
	w   *kafka.Writer
}

// NewProducer returns a producer; it connects lazily.
func NewProducer(cfg Config) *Producer {
	cfg.setDefaults()
	return &Producer{cfg: cfg, w: &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Balancer:               &kafka.Murmur2Balancer{}, // same partitions as Java clients for the same key
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              producerBatch,
		BatchTimeout:           producerLinger,
		WriteTimeout:           10 * time.Second,
		MaxAttempts:            3,
		AllowAutoTopicCreation: false,
	}}
}

// Publish writes msgs and waits for the broker's acknowledgement.
func (p *Producer) Publish(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Topic: p.cfg.Topic(m.Topic), Key: []byte(m.Key), Value: m.Value}
	}
	if err := p.w.WriteMessages(ctx, km...); err != nil {
		return fmt.Errorf("bus: publish %d messages: %w", len(msgs), err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.w.Close() }

// How long a fetch waits on the broker for data, and what kafka-go makes of
// ReaderConfig.MaxWait. kafka-go sets the connection's read deadline to
// MaxWait from the start of a fetch, but asks the broker to wait only MaxWait
// minus its allowance for the round trip: MaxWait/4 below one second, one
// second (its defaultRTT) from one second up. A 50 ms MaxWait thus asked the
// broker for 37 ms and left 12.5 ms for the answer to come back: a fsync or
// GC pause in the broker, or a busy CPU, was enough for the read to time out,
// and every such timeout made kafka-go log an "unknown error" and drop and
// re-dial the partition's connection. With MaxWait = fetchLongPoll +
// fetchMargin the broker waits fetchLongPoll and the answer has a second to
// arrive. The broker answers a waiting fetch as soon as data arrives
// (MinBytes 1), so the long poll costs no latency; it only bounds how long an
// idle partition reader takes to notice a rebalance or Close. Note that a
// MaxWait of exactly one second would ask the broker for no wait at all.
const (
	fetchLongPoll = 500 * time.Millisecond // Kafka's own fetch.max.wait.ms default
	fetchMargin   = time.Second            // kafka-go's defaultRTT
	fetchMaxWait  = fetchLongPoll + fetchMargin
)

// NewReader returns a consumer-group reader of a logical topic.
func NewReader(cfg Config, logical, group string) *kafka.Reader {
	cfg.setDefaults()
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           group,
		Topic:             cfg.Topic(logical),
		MinBytes:          1,
		MaxBytes:          8 << 20,
		MaxWait:           fetchMaxWait,
		StartOffset:       kafka.FirstOffset,
		CommitInterval:    0, // synchronous commits, after the effect is durable
		HeartbeatInterval: time.Second,
		// A dead member (a killed process) is dropped after 6 s (Kafka's
		// minimum); a rebalance waits at most 3 s for members to rejoin, so
		// that members killed and restarted every few seconds do not keep
		// the group rebalancing for ever.
		SessionTimeout:   6 * time.Second,
		RebalanceTimeout: 3 * time.Second,
		JoinGroupBackoff: 500 * time.Millisecond,
		ReadBackoffMin:   10 * time.Millisecond,
		ReadBackoffMax:   200 * time.Millisecond,
		ReadLagInterval:  -1,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			cfg.Logger.Warn("kafka reader: " + fmt.Sprintf(msg, args...))
		}),
	})
}

// Fetcher is what ConsumeBatches reads from: a *kafka.Reader or a *GroupReader.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Config() kafka.ReaderConfig
}

// Handler processes a batch; it returns nil once the batch's effects are durable.
type Handler func(ctx context.Context, msgs []kafka.Message) error

// ConsumeBatches reads from r in batches of up to max messages, calls
// handle, and commits the batch's offsets when handle succeeds: in the
// background, at most once per commitEvery (see committer). Once a
// batch's first message is there it waits at most linger for the batch to
// fill, and stops waiting when no message has come for a fifth of linger
// (see fill). A failing batch
// is retried with back-off, never skipped. It returns when ctx ends.
func ConsumeBatches(ctx context.Context, r Fetcher, max int, linger time.Duration, log *slog.Logger, handle Handler) error {
	backoff := 100 * time.Millisecond
	var batch []kafka.Message
	c := newCommitter(r, log)
	go c.run(ctx)
	defer c.stop()
	for {
		if len(batch) == 0 {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.WarnContext(ctx, "kafka fetch failed", slog.String("topic", r.Config().Topic), slog.Any("error", err))
				if !sleep(ctx, backoff) {
					return nil
				}
				continue
			}
			batch = append(batch, m)
			batch = fill(ctx, r, batch, max, linger)
		}
		if err := handle(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.WarnContext(ctx, "stage failed; retrying the batch", slog.String("topic", r.Config().Topic),
				slog.Int("messages", len(batch)), slog.Any("error", err))
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.add(batch)
		batch = batch[:0]
	}
}

// commitEvery spaces a consumer's offset commits. Each commit is a round
// trip, and the embedded broker fsyncs it in the goroutine that also serves
// every produce and fetch; a crash redelivers at most this much of handled
// work, which every stage takes as a repeat. The delivery worker commits at
// the same pace.
const commitEvery = 100 * time.Millisecond

// committer commits handled offsets for ConsumeBatches off its loop, the
// latest per partition, one commit at a time and at most one per
// commitEvery. What a failed commit held is committed with the next one.
type committer struct {
	r    Fetcher
	log  *slog.Logger
	kick chan struct{}
	done chan struct{}
	quit chan struct{}

	mu   sync.Mutex
	pend map[string]map[int]kafka.Message // topic → partition → last handled
}

func newCommitter(r Fetcher, log *slog.Logger) *committer {
	return &committer{r: r, log: log, kick: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{}),
		pend: map[string]map[int]kafka.Message{}}
}

// add records a handled batch.
func (c *committer) add(batch []kafka.Message) {
	c.mu.Lock()
	for _, m := range batch {
		ps := c.pend[m.Topic]
		if ps == nil {
			ps = map[int]kafka.Message{}
			c.pend[m.Topic] = ps
		}
		if last, ok := ps[m.Partition]; !ok || m.Offset > last.Offset {
			ps[m.Partition] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		}
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *committer) take() []kafka.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kafka.Message
	for t, ps := range c.pend {
		for _, m := range ps {
			out = append(out, m)
		}
		delete(c.pend, t)
	}
	return out
}

func (c *committer) commit(ctx context.Context) {
	if msgs := c.take(); len(msgs) > 0 {
		if err := c.r.CommitMessages(ctx, msgs...); err != nil {
			// Keep them for the next commit (add keeps the highest offset
			// per partition), and for the final one when stopping: a
			// commit interrupted by the end of ctx is made again there.
			// Until then a redelivery is harmless (idempotent stages).
			c.add(msgs)
			if ctx.Err() == nil {
				c.log.WarnContext(ctx, "kafka commit failed", slog.Any("error", err))
			}
		}
	}
}

func (c *committer) run(ctx context.Context) {
	defer close(c.done)
	// Stopping: commit what was handled, briefly, even after ctx ended.
	final := func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		c.commit(fctx)
	}
	for {
		select {
		case <-c.quit:
			final()
			return
		case <-c.kick:
		}
		c.commit(ctx)
		t := time.NewTimer(commitEvery)
		select {
		case <-t.C:
		case <-c.quit:
			t.Stop()
			final()
			return
		}
	}
}

// stop commits what is pending and waits for the committer to end.
func (c *committer) stop() {
	close(c.quit)
	<-c.done
}

// fill adds to batch the messages that follow its first one closely: it
// stops at max messages, linger after it began, or when no message came for
// linger/5. The messages of one fetch (one relay publish) come back to back,
// so a batch still takes what was published together, but the last
// message of a burst no longer waits the whole linger before it is handled.
func fill(ctx context.Context, r Fetcher, batch []kafka.Message, max int, linger time.Duration) []kafka.Message {
	deadline := time.Now().Add(linger)
	gap := linger / 5
	for len(batch) < max {
		wait := min(gap, time.Until(deadline))
		if wait <= 0 {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, wait)
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
