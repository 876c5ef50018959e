// Package relay is the stage between the ledger and Kafka. Relay publishes,
// in order, the messages that accept, route and delivery transactions wrote
// to the outbox (lt.route, lt.deliver, lt.dead, lt.security), and deletes
// them only after the broker has acknowledged them. Events publishes
// lt.events from the evidence log instead (events.go): every event is already
// a leaf there, so it needs no outbox row. Each leads alone (a PostgreSQL
// advisory lock); the others stand by. Relay publishes as soon as a
// transaction of its own process commits (Ledger.Commits), polls for rows of
// other processes, and pipelines: while the broker takes one batch it selects
// the next and deletes the one before. If Kafka is down the outbox and the
// unpublished part of the log grow and the API goes on accepting; the backlog
// drains when the broker returns.
package relay

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"lienthong/routing/bus"
	"lienthong/routing/ledger"
)

// Publisher is what the relay needs from the bus.
type Publisher interface {
	Publish(ctx context.Context, msgs []bus.Message) error
}

// Config tunes the relay.
type Config struct {
	Batch int // rows per publish; default 500
	// Idle is the poll interval when the outbox is empty; default 10ms. A
	// commit of this process's Ledger wakes the relay before that
	// (Ledger.Commits); the poll finds rows that other processes wrote.
	Idle      time.Duration
	Logger    *slog.Logger
	OnBacklog func(n int64) // optional gauge hook
}

// Relay moves outbox rows to Kafka.
type Relay struct {
	l   *ledger.Ledger
	pub Publisher
	cfg Config

	cycles, published atomic.Int64
}

// New returns a relay; nothing starts before Run.
func New(l *ledger.Ledger, pub Publisher, cfg Config) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{l: l, pub: pub, cfg: cfg}
}

// Stats are the leader's counts since the relay was made: Publishes is the
// number of batches the broker acknowledged, Rows the rows in them.
type Stats struct{ Publishes, Rows int64 }

// Stats returns the relay's counts.
func (r *Relay) Stats() Stats { return Stats{Publishes: r.cycles.Load(), Rows: r.published.Load()} }

// Run relays until ctx ends, as leader when it holds the lock.
func (r *Relay) Run(ctx context.Context) error {
	return r.l.RunAsLeader(ctx, ledger.LockRelay, time.Second, r.lead)
}

func (r *Relay) lead(ctx context.Context) error {
	r.cfg.Logger.InfoContext(ctx, "outbox relay leads")
	r.pipeline(ctx)
	return nil
}

// pipeline relays until ctx ends. One batch is published at a time, each in
// id order, and the next one only after the broker acknowledged the last, as
// in Once: that is what keeps the order per topic and key across batches.
// While a batch is being published the relay deletes the rows of the batch
// before it (acknowledged already) and selects the next batch, leaving out the
// rows of both. A row is deleted only after its acknowledgement; a crash or a
// lost leadership before the delete publishes it again (consumers are
// idempotent). After a failed publish the batch selected ahead is dropped and
// the relay starts over from the lowest id, as Once does.
func (r *Relay) pipeline(ctx context.Context) {
	var (
		next    []ledger.OutboxMessage // selected while the previous batch was published
		ahead   bool                   // next holds such a selection (which may be empty)
		acked   []int64                // acknowledged, not deleted yet
		backoff = 100 * time.Millisecond
		wake    = r.l.Commits()
	)
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.WarnContext(ctx, "outbox relay: "+what+" failed; will retry", slog.Any("error", err))
		wait(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	for ctx.Err() == nil {
		batch, pre := next, ahead
		next, ahead = nil, false
		if !pre {
			drain(wake) // a commit from now on wakes the relay again
			var err error
			if batch, err = r.l.OutboxNext(ctx, r.cfg.Batch, idSet(acked, nil)); err != nil {
				fail("select", err)
				continue
			}
		}
		if len(batch) == 0 {
			if len(acked) > 0 {
				if err := r.l.DeleteOutboxPublished(ctx, acked); err != nil {
					fail("delete", err)
					continue
				}
				acked = nil
			}
			idle := time.NewTimer(r.cfg.Idle)
			select {
			case <-ctx.Done():
			case <-wake:
			case <-idle.C:
			}
			idle.Stop()
			continue
		}

		published := make(chan error, 1)
		go func() { published <- r.pub.Publish(ctx, messages(batch)) }()
		deleted := make(chan error, 1)
		go func(ids []int64) { deleted <- r.l.DeleteOutboxPublished(ctx, ids) }(acked)
		drain(wake)
		var selErr error
		next, selErr = r.l.OutboxNext(ctx, r.cfg.Batch, idSet(acked, batch))
		ahead = selErr == nil
		delErr := <-deleted
		pubErr := <-published

		if delErr == nil {
			acked = acked[:0]
		}
		if pubErr != nil {
			ahead = false // start over from the lowest id
			fail("publish", pubErr)
			continue
		}
		r.cycles.Add(1)
		r.published.Add(int64(len(batch)))
		for _, m := range batch {
			acked = append(acked, m.ID)
		}
		switch {
		case delErr != nil:
			ahead = false
			fail("delete", delErr)
		case selErr != nil:
			fail("select", selErr)
		default:
			backoff = 100 * time.Millisecond
			if len(next) < r.cfg.Batch {
				select {
				case <-wake: // rows committed since next was selected: select afresh, not a publish later
					ahead = false
				default:
				}
			}
		}
	}
}

func messages(rows []ledger.OutboxMessage) []bus.Message {
	msgs := make([]bus.Message, len(rows))
	for i, row := range rows {
		msgs[i] = bus.Message{Topic: row.Topic, Key: row.Key, Value: row.Payload}
	}
	return msgs
}

// idSet returns the ids of acked and of rows.
func idSet(acked []int64, rows []ledger.OutboxMessage) map[int64]struct{} {
	if len(acked)+len(rows) == 0 {
		return nil
	}
	s := make(map[int64]struct{}, len(acked)+len(rows))
	for _, id := range acked {
		s[id] = struct{}{}
	}
	for _, m := range rows {
		s[m.ID] = struct{}{}
	}
	return s
}

// drain takes a pending wake-up, if any.
func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// Once publishes one batch and returns how many rows it moved.
func (r *Relay) Once(ctx context.Context) (int, error) {
	rows, err := r.l.OutboxBatch(ctx, r.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.ID
	}
	if err := r.pub.Publish(ctx, messages(rows)); err != nil {
		return 0, err
	}
	if err := r.l.DeleteOutbox(ctx, ids); err != nil {
		return 0, err // published again next time: consumers are idempotent
	}
	return len(rows), nil
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
