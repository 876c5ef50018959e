package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"lienthong/routing/bus"
	"lienthong/routing/evidence"
	"lienthong/routing/ledger"
)

// LockEvents is the advisory-lock key held by the one running Events.
const LockEvents = 0x4c54_4556_5042 // "LTEVPB"

// EventsConfig tunes the lt.events publisher. Zero values take the defaults shown.
type EventsConfig struct {
	Batch     int           // leaves per publish; default 1000
	Idle      time.Duration // poll interval when every leaf is published; default 20ms
	LockRetry time.Duration // how often a follower tries for the leader lock; default 1s
	Logger    *slog.Logger
}

// Events publishes lt.events from the evidence log instead of the outbox:
// the sequencer (routing/evidence) appends every committed event, in order,
// as a leaf with a dense index, so Events reads the leaves after its
// persisted cursor, publishes them (key: the document id, or
// ledger.KindAdmin for an event without a document), waits for the broker's
// acknowledgement, then moves the cursor, one UPDATE per batch. A crash
// between the two publishes the batch again (at least once; consumers are
// idempotent by event id); nothing is lost while Kafka is down, the cursor
// just stays. A message exists only for an event already in the evidence
// log, and one document's events, created causally, keep their order. It
// needs an evidence.Sequencer running in some process (hubd's relay role
// starts one when the process has no evidence role). When that sequencer
// runs in this process and shares an evidence.Feed with the tail
// (Tail.WithFeed), the leaves it has just committed are published from
// memory, as soon as they commit, without being read back from PostgreSQL;
// the cursor and log_leaves remain the crash-safe path whenever the feed
// does not hold the next leaf (a restart, a lagging broker, a sequencer in
// another process). One Events leads at a time (LockEvents); the others
// stand by.
type Events struct {
	l    *ledger.Ledger
	tail *evidence.Tail
	pub  Publisher
	cfg  EventsConfig
}

// EventMessage is the value of an lt.events message: the ledger's event as
// before, and the index of its leaf in the evidence log.
type EventMessage struct {
	ledger.Event
	LeafIndex uint64 `json:"leaf_index"`
}

// NewEvents returns the publisher; nothing starts before Run. The ledger
// provides leader election; the tail must be over the same database.
func NewEvents(l *ledger.Ledger, tail *evidence.Tail, pub Publisher, cfg EventsConfig) *Events {
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 20 * time.Millisecond
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Events{l: l, tail: tail, pub: pub, cfg: cfg}
}

// Run publishes until ctx ends, as leader when it holds LockEvents.
func (e *Events) Run(ctx context.Context) error {
	return e.l.RunAsLeader(ctx, LockEvents, e.cfg.LockRetry, e.lead)
}

func (e *Events) lead(ctx context.Context) error {
	e.cfg.Logger.InfoContext(ctx, "lt.events publisher leads")
	var (
		next  uint64
		known bool // next is the stored cursor
	)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// Taken before reading, so that a batch the sequencer of this
		// process commits meanwhile wakes the wait below.
		woken := e.tail.Wait()
		n, err := e.step(ctx, &next, &known)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.cfg.Logger.WarnContext(ctx, "lt.events publisher: publish failed; will retry", slog.Any("error", err))
			wait(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n < e.cfg.Batch {
			t := time.NewTimer(e.cfg.Idle)
			select {
			case <-ctx.Done():
			case <-t.C:
			case <-woken: // leaves in the feed (Tail.WithFeed): publish them now
			}
			t.Stop()
		}
	}
	return nil
}

// step publishes the next batch after next (the stored cursor, read again
// when known is false) and moves next past it.
func (e *Events) step(ctx context.Context, next *uint64, known *bool) (int, error) {
	if !*known {
		var err error
		if *next, err = e.tail.Cursor(ctx); err != nil {
			return 0, err
		}
		*known = true
	}
	n, err := e.publish(ctx, *next)
	if err != nil {
		*known = false // the cursor may or may not have moved
		return 0, err
	}
	*next += uint64(n)
	return n, nil
}

// Once publishes the next batch of leaves after the stored cursor and
// returns how many it published.
func (e *Events) Once(ctx context.Context) (int, error) {
	from, err := e.tail.Cursor(ctx)
	if err != nil {
		return 0, err
	}
	return e.publish(ctx, from)
}

// publish publishes at most one batch of leaves from index from on, then
// moves the cursor past them. While it leads, only this process moves the
// cursor, so lead keeps it in memory instead of reading it every time.
func (e *Events) publish(ctx context.Context, from uint64) (int, error) {
	leaves, err := e.tail.Leaves(ctx, from, e.cfg.Batch)
	if err != nil || len(leaves) == 0 {
		return 0, err
	}
	msgs := make([]bus.Message, len(leaves))
	for i, t := range leaves {
		m, err := eventMessage(t)
		if err != nil {
			return 0, err
		}
		msgs[i] = m
	}
	if err := e.pub.Publish(ctx, msgs); err != nil {
		return 0, err
	}
	if err := e.tail.Advance(ctx, from+uint64(len(leaves))); err != nil {
		return 0, err // published again next time: consumers are idempotent
	}
	return len(leaves), nil
}

// eventMessage is the lt.events message of one leaf.
func eventMessage(t evidence.TailEntry) (bus.Message, error) {
	l := t.Leaf
	ev := EventMessage{Event: ledger.Event{ID: l.EventID, DocumentID: l.DocumentID, Recipient: l.Recipient,
		Kind: l.Kind, State: l.State, Detail: json.RawMessage(l.Detail), At: l.At}, LeafIndex: t.Index}
	if l.Detail == "" {
		ev.Detail = nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return bus.Message{}, fmt.Errorf("lt.events: leaf %d (event %d): %w", t.Index, l.EventID, err)
	}
	key := l.DocumentID
	if key == "" {
		key = ledger.KindAdmin
	}
	return bus.Message{Topic: ledger.TopicEvents, Key: key, Value: b}, nil
}
