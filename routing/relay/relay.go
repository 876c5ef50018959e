// Package relay is the stage between the ledger and Kafka. Relay publishes,
// in order, the messages that accept, route and delivery transactions wrote
// to the outbox (lt.route, lt.deliver, lt.dead, lt.security), and deletes
// them only after the broker has acknowledged them. Events publishes
// lt.events from the evidence log instead (events.go): every event is already
// a leaf there, so it needs no outbox row. Each leads alone (a PostgreSQL
// advisory lock); the others stand by. If Kafka is down the outbox and the
// unpublished part of the log grow and the API goes on accepting; the backlog
// drains when the broker returns.
package relay

import (
	"context"
	"log/slog"
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
	Batch     int           // rows per publish; default 500
	Idle      time.Duration // poll interval when the outbox is empty; default 10ms
	Logger    *slog.Logger
	OnBacklog func(n int64) // optional gauge hook
}

// Relay moves outbox rows to Kafka.
type Relay struct {
	l   *ledger.Ledger
	pub Publisher
	cfg Config
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

// Run relays until ctx ends, as leader when it holds the lock.
func (r *Relay) Run(ctx context.Context) error {
	return r.l.RunAsLeader(ctx, ledger.LockRelay, time.Second, r.lead)
}

func (r *Relay) lead(ctx context.Context) error {
	r.cfg.Logger.InfoContext(ctx, "outbox relay leads")
	pump(ctx, r.cfg.Logger, "outbox relay", r.cfg.Batch, r.cfg.Idle, r.Once)
	return nil
}

// pump runs step until ctx ends: at once again after a full batch, after
// idle when there was less, and with a doubling back-off (100 ms to 5 s)
// after a failure, which it logs as what's.
func pump(ctx context.Context, log *slog.Logger, what string, batch int, idle time.Duration,
	step func(context.Context) (int, error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, what+": publish failed; will retry", slog.Any("error", err))
			wait(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n < batch {
			wait(ctx, idle)
		}
	}
}

// Once publishes one batch and returns how many rows it moved.
func (r *Relay) Once(ctx context.Context) (int, error) {
	rows, err := r.l.OutboxBatch(ctx, r.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	msgs := make([]bus.Message, len(rows))
	ids := make([]int64, len(rows))
	for i, row := range rows {
		msgs[i] = bus.Message{Topic: row.Topic, Key: row.Key, Value: row.Payload}
		ids[i] = row.ID
	}
	if err := r.pub.Publish(ctx, msgs); err != nil {
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
