package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing"
	"lienthong/routing/bus"
	"lienthong/routing/ledger"
)

// Policy is the retry schedule of a delivery.
type Policy struct {
	MaxAttempts int           // then dead; default 12
	Base        time.Duration // first back-off; default 2s
	Max         time.Duration // back-off cap; default 1h
}

func (p *Policy) setDefaults() {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 12
	}
	if p.Base <= 0 {
		p.Base = 2 * time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Hour
	}
}

// Backoff returns the wait before attempt n+1 after n failed attempts:
// exponential with full jitter in [d/2, d].
func (p Policy) Backoff(n int, rnd func() float64) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// Config wires a Worker.
type Config struct {
	Bus      bus.Config
	Group    string                     // default "lt-delivery"
	Channels map[string]routing.Channel // by directory channel name (push, pull, axis, partner)
	Policy   Policy
	Lanes    int // parallel lanes; default 32
	Now      func() time.Time
	Rand     func() float64
	Logger   *slog.Logger
	// OnResult is an optional hook for metrics: channel, outcome (delivered, retrying, dead).
	OnResult func(channel, outcome string, took time.Duration)
}

// Worker consumes lt.deliver.
type Worker struct {
	l   *ledger.Ledger
	cfg Config
}

// New returns a worker; nothing starts before Run.
func New(l *ledger.Ledger, cfg Config) (*Worker, error) {
	if cfg.Group == "" {
		cfg.Group = "lt-delivery"
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnResult == nil {
		cfg.OnResult = func(string, string, time.Duration) {}
	}
	cfg.Policy.setDefaults()
	if len(cfg.Channels) == 0 {
		return nil, errors.New("delivery: no channels configured")
	}
	return &Worker{l: l, cfg: cfg}, nil
}

type task struct {
	msg  kafka.Message
	done func()
}

// Run consumes until ctx ends. Offsets are committed per partition only up to
// the first task not finished yet, so a crash redelivers unfinished tasks and
// never skips one.
func (w *Worker) Run(ctx context.Context) error {
	rd := bus.NewReader(w.cfg.Bus, "deliver", w.cfg.Group)
	defer rd.Close()

	tr := newTracker()
	lanes := make([]chan task, w.cfg.Lanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan task, 64)
		wg.Add(1)
		go func(ch chan task) {
			defer wg.Done()
			for t := range ch {
				w.handle(ctx, t.msg)
				t.done()
			}
		}(lanes[i])
	}
	commitDone := make(chan struct{})
	go func() { // commit what is contiguous, a few times a second
		defer close(commitDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				w.commit(context.WithoutCancel(ctx), rd, tr)
				return
			case <-tick.C:
				w.commit(ctx, rd, tr)
			}
		}
	}()
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.cfg.Logger.WarnContext(ctx, "delivery: fetch failed", slog.Any("error", err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		done := tr.add(m)
		h := fnv.New32a()
		h.Write(m.Key)
		select {
		case lanes[h.Sum32()%uint32(len(lanes))] <- task{msg: m, done: done}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	for _, ch := range lanes {
		close(ch)
	}
	wg.Wait()
	<-commitDone
	return nil
}

func (w *Worker) commit(ctx context.Context, rd *kafka.Reader, tr *tracker) {
	msgs := tr.committable()
	if len(msgs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rd.CommitMessages(cctx, msgs...); err != nil {
		w.cfg.Logger.WarnContext(ctx, "delivery: commit failed", slog.Any("error", err))
	}
}

// handle runs one delivery task to its outcome. Errors of the ledger are
// logged; the scheduler recovers the task later from its state.
func (w *Worker) handle(ctx context.Context, m kafka.Message) {
	dm, err := ledger.DecodeDeliver(m.Value)
	if err != nil {
		w.cfg.Logger.ErrorContext(ctx, "delivery: dropping undecodable task", slog.Any("error", err))
		return
	}
	if err := w.Deliver(ctx, dm.DeliveryID); err != nil && ctx.Err() == nil {
		w.cfg.Logger.WarnContext(ctx, "delivery: task failed", slog.Int64("delivery", dm.DeliveryID), slog.Any("error", err))
	}
}

// Deliver makes one attempt at a delivery, if it is due.
func (w *Worker) Deliver(ctx context.Context, deliveryID int64) error {
	d, ok, err := w.l.StartDelivery(ctx, deliveryID)
	if err != nil || !ok {
		return err
	}
	start := w.cfg.Now()
	ch, found := w.cfg.Channels[d.Channel]
	var derr error
	if !found {
		derr = &routing.PermanentError{Reason: fmt.Sprintf("no channel %q configured for %s", d.Channel, d.Recipient)}
	} else {
		organ, err := w.l.Organ(ctx, d.Recipient)
		if err != nil {
			derr = err
		} else {
			d.Endpoint = organ.Endpoint
			derr = ch.Deliver(ctx, d, w.opener(d.DocumentID))
		}
	}
	took := w.cfg.Now().Sub(start)
	switch {
	case derr == nil:
		w.cfg.OnResult(d.Channel, "delivered", took)
		return w.l.Delivered(ctx, d, d.Channel)
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the scheduler will retry the interrupted attempt
	case routing.IsPermanent(derr) || d.Attempt >= w.cfg.Policy.MaxAttempts:
		w.cfg.OnResult(d.Channel, "dead", took)
		return w.l.Failed(ctx, d, derr.Error(), time.Time{})
	default:
		w.cfg.OnResult(d.Channel, "retrying", took)
		next := w.cfg.Now().Add(w.cfg.Policy.Backoff(d.Attempt, w.cfg.Rand))
		return w.l.Failed(ctx, d, derr.Error(), next)
	}
}

func (w *Worker) opener(docID string) routing.BodyOpener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		b, _, err := w.l.Content(ctx, docID)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// Inbox is the pull channel: the ledger row itself is the inbox, so a
// delivery to it is durable as soon as the state is recorded.
type Inbox struct{}

// Deliver implements routing.Channel.
func (Inbox) Deliver(context.Context, routing.Delivery, routing.BodyOpener) error { return nil }
