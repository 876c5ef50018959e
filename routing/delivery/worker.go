package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"lienthong/routing"
	"lienthong/routing/bus"
	"lienthong/routing/ledger"
)

// Policy is the back-off schedule of a delivery. How many attempts and how
// long are limits of the recipient organ (ledger.Limits, columns of organs).
type Policy struct {
	Base time.Duration // first back-off; default 2s
	Max  time.Duration // back-off cap; default 1h
}

func (p *Policy) setDefaults() {
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
	// Lanes bounds the attempts in flight at once, across recipients;
	// default 64. Each recipient has its own lane (one attempt at a time, in
	// the order of lt.deliver), so a slow recipient holds one slot at most.
	Lanes int
	// LaneDepth bounds the tasks queued per recipient; default 4096. A
	// queued task is a hundred bytes; a burst to one healthy recipient
	// should be taken in runs, not parked (a transaction per task and
	// seconds of latency).
	LaneDepth int
	// LaneWait is how long the consumer waits for room in a full lane
	// (backpressure: Kafka keeps the tasks meanwhile) before it parks the
	// task in the ledger (retrying, due after Policy.Base); default 2s,
	// negative: never wait. A lane that made the consumer wait that long in
	// vain is stalled (its recipient is slow or down): its further tasks are
	// parked at once, without waiting, until its queue is down to half of
	// LaneDepth, so one stalled recipient holds up the others for one
	// LaneWait, not one per task.
	LaneWait time.Duration
	// MaxRun bounds the tasks of one lane taken together as a run; default
	// 256 (a saturated lane takes full runs: the read of the run with its
	// bodies and the predecessor query are paid once per run, on the lane's
	// critical path). A run's outcomes are recorded in one transaction per
	// flush (see run.go); a lane's tasks still go one attempt at a time, in
	// order.
	MaxRun  int
	Breaker *Breaker // nil: a default breaker using Now
	// AdoptAfter: a delivery that has not moved for this long although it
	// is due (its task was lost on the way) is taken straight from the
	// ledger; default 6m. Checked every AdoptAfter/3.
	AdoptAfter time.Duration
	Now        func() time.Time
	Rand       func() float64
	Logger     *slog.Logger
	// OnResult is an optional hook for metrics: channel, outcome (delivered,
	// retrying, dead, deferred).
	OnResult func(channel, outcome string, took time.Duration)
}

// Worker consumes lt.deliver.
type Worker struct {
	l   *ledger.Ledger
	cfg Config
	// firsts spares the predecessor query of a run that follows on from
	// what the worker did last for its recipient (see withPredecessors).
	firsts firstAttempts
}

// New returns a worker; nothing starts before Run.
func New(l *ledger.Ledger, cfg Config) (*Worker, error) {
	if cfg.Group == "" {
		cfg.Group = "lt-delivery"
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 64
	}
	if cfg.LaneDepth <= 0 {
		cfg.LaneDepth = 4096
	}
	if cfg.MaxRun <= 0 {
		cfg.MaxRun = 256
	}
	if cfg.LaneWait == 0 {
		cfg.LaneWait = 2 * time.Second
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
	if cfg.AdoptAfter <= 0 {
		cfg.AdoptAfter = 6 * time.Minute
	}
	if cfg.Breaker == nil {
		cfg.Breaker = &Breaker{Now: cfg.Now}
	}
	cfg.Policy.setDefaults()
	if len(cfg.Channels) == 0 {
		return nil, errors.New("delivery: no channels configured")
	}
	return &Worker{l: l, cfg: cfg, firsts: firstAttempts{upTo: map[string]int64{}}}, nil
}

// Breaker returns the worker's circuit breaker.
func (w *Worker) Breaker() *Breaker { return w.cfg.Breaker }

type task struct {
	dm   ledger.DeliverMessage
	done func()
}

// lane is the queue of one recipient.
type lane struct {
	queue   []task
	held    int  // tasks of the run in hand that wait behind its current attempt
	stalled bool // made the consumer wait LaneWait in vain; see Config.LaneWait
}

// depth is what counts against LaneDepth.
func (ln *lane) depth() int { return len(ln.queue) + ln.held }

// admission is what enqueue did with a task.
type admission int

const (
	queued  admission = iota
	full              // the lane is full: wait for room (or park after LaneWait)
	stalled           // the lane is full and stalled: park at once
)

// Run consumes until ctx ends. Offsets are committed per partition only up to
// the first task not finished yet, so a crash redelivers unfinished tasks and
// never skips one.
func (w *Worker) Run(ctx context.Context) error {
	rd := bus.NewGroupReader(w.cfg.Bus, "deliver", w.cfg.Group)
	defer rd.Close()

	tr := newTracker()
	var (
		mu    sync.Mutex // guards lanes
		lanes = map[string]*lane{}
		wg    sync.WaitGroup
		slots = make(chan struct{}, w.cfg.Lanes)
		// room is signalled (without blocking) whenever a lane's depth
		// falls, for the consumer waiting on a full lane.
		room = make(chan struct{}, 1)
	)
	freed := func() {
		select {
		case room <- struct{}{}:
		default:
		}
	}
	runLane := func(recp string, ln *lane) {
		defer wg.Done()
		for {
			mu.Lock()
			if len(ln.queue) == 0 {
				delete(lanes, recp)
				mu.Unlock()
				return
			}
			n := min(len(ln.queue), w.cfg.MaxRun)
			run := slices.Clone(ln.queue[:n])
			ln.queue = ln.queue[n:]
			ln.held = n - 1 // still queued, as far as LaneDepth is concerned
			mu.Unlock()
			freed()
			if ctx.Err() == nil {
				select {
				case slots <- struct{}{}:
					dms := make([]ledger.DeliverMessage, len(run))
					for i, t := range run {
						dms[i] = t.dm
					}
					w.handleRun(ctx, dms)
					<-slots
				case <-ctx.Done():
				}
			}
			// Only now, with the run's outcomes durable in the ledger, may
			// its offsets be committed. On shutdown unfinished work is left
			// to the ledger's sweep.
			for _, t := range run {
				t.done()
			}
			mu.Lock()
			ln.held = 0
			if ln.stalled && ln.depth() <= w.cfg.LaneDepth/2 {
				ln.stalled = false // caught up: wait for it again when full
			}
			mu.Unlock()
			freed()
		}
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
	// enqueue puts a task in its recipient's lane unless the lane is full.
	enqueue := func(recp string, t task) admission {
		mu.Lock()
		defer mu.Unlock()
		ln := lanes[recp]
		if ln != nil && ln.depth() >= w.cfg.LaneDepth {
			if ln.stalled {
				return stalled
			}
			return full
		}
		if ln == nil {
			ln = &lane{}
			lanes[recp] = ln
			wg.Add(1)
			go runLane(recp, ln)
		}
		ln.queue = append(ln.queue, t)
		return queued
	}
	// stall marks a lane that did not make room within LaneWait.
	stall := func(recp string) {
		mu.Lock()
		defer mu.Unlock()
		if ln := lanes[recp]; ln != nil && ln.depth() >= w.cfg.LaneDepth {
			ln.stalled = true
		}
	}
	// admit queues a task, waiting up to LaneWait for room in a full lane
	// (backpressure: the consumer fetches nothing meanwhile, so the tasks
	// wait in Kafka and cost the ledger nothing); it reports false when the
	// task must be parked.
	admit := func(recp string, t task) bool {
		var timeout <-chan time.Time
		for {
			switch enqueue(recp, t) {
			case queued:
				return true
			case stalled:
				return false
			}
			if w.cfg.LaneWait < 0 || ctx.Err() != nil {
				return false
			}
			if timeout == nil {
				tm := time.NewTimer(w.cfg.LaneWait)
				defer tm.Stop()
				timeout = tm.C
				w.cfg.OnResult("", "backpressure", 0)
			}
			select {
			case <-room:
			case <-timeout:
				if enqueue(recp, t) == queued {
					return true
				}
				stall(recp)
				w.cfg.Logger.WarnContext(ctx, "delivery: recipient lane stays full; parking its tasks until it catches up",
					slog.String("recipient", recp), slog.Int("depth", w.cfg.LaneDepth))
				return false
			case <-ctx.Done():
				return false
			}
		}
	}
	adoptDone := make(chan struct{})
	go func() { // tasks lost on the way: adopt them from the ledger
		defer close(adoptDone)
		tick := time.NewTicker(w.cfg.AdoptAfter / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			orphans, err := w.l.Orphans(ctx, w.cfg.AdoptAfter, 500)
			if err != nil {
				if ctx.Err() == nil {
					w.cfg.Logger.WarnContext(ctx, "delivery: looking for orphans failed", slog.Any("error", err))
				}
				continue
			}
			n := 0
			for _, dm := range orphans {
				if enqueue(dm.Recipient, task{dm: dm, done: func() {}}) == queued {
					n++
				}
			}
			if n > 0 {
				w.cfg.Logger.WarnContext(ctx, "delivery: adopted deliveries whose tasks were lost", slog.Int("deliveries", n))
				for range n {
					w.cfg.OnResult("", "adopted", 0)
				}
			}
		}
	}()
	for ctx.Err() == nil {
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
		dm, err := ledger.DecodeDeliver(m.Value)
		if err != nil {
			w.cfg.Logger.ErrorContext(ctx, "delivery: dropping undecodable task", slog.Any("error", err))
			done()
			continue
		}
		recp := dm.Recipient
		if recp == "" {
			recp = string(m.Key)
		}
		if !admit(recp, task{dm: dm, done: done}) {
			if ctx.Err() != nil {
				break // shutting down: not done, so its offset is not committed and the task comes back
			}
			w.park(ctx, dm) // the lane is full and stalled: the ledger keeps the task
			done()
		}
	}
	<-adoptDone
	wg.Wait()
	<-commitDone
	return nil
}

// park defers a task whose recipient's lane is full.
func (w *Worker) park(ctx context.Context, dm ledger.DeliverMessage) {
	until := w.cfg.Now().Add(w.cfg.Policy.Backoff(1, w.cfg.Rand))
	if _, err := w.l.Defer(ctx, dm.DeliveryID, until, "recipient lane full"); err != nil && ctx.Err() == nil {
		w.cfg.Logger.WarnContext(ctx, "delivery: park failed; the sweep will recover it",
			slog.Int64("delivery", dm.DeliveryID), slog.Any("error", err))
	}
	w.cfg.OnResult("", "deferred", 0)
}

func (w *Worker) commit(ctx context.Context, rd *bus.GroupReader, tr *tracker) {
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

// handle runs one delivery task to its outcome (a run of one). Errors of the
// ledger are logged; the scheduler recovers the task later from its state.
func (w *Worker) handle(ctx context.Context, dm ledger.DeliverMessage) {
	w.handleRun(ctx, []ledger.DeliverMessage{dm})
}

// Deliver makes one attempt at a delivery, if it is due and the circuit of
// its endpoint lets it through; otherwise it defers it. Nothing is written
// before the attempt: its outcome is settled after it, in one transaction
// (see ledger.Attempt).
func (w *Worker) Deliver(ctx context.Context, dm ledger.DeliverMessage) error {
	organ, oerr := w.l.Organ(ctx, dm.Recipient)
	if oerr != nil && !errors.Is(oerr, ledger.ErrUnknownOrgan) {
		return oerr
	}
	circuit, probe := "", false
	if oerr == nil && organ.Channel != ledger.ChannelPull {
		circuit = organ.Channel + " " + organ.Endpoint
		var ok bool
		var until time.Time
		if ok, probe, until = w.cfg.Breaker.allow(circuit); !ok {
			return w.deferOpen(ctx, dm, organ, until)
		}
	}
	as, err := w.l.Attempts(ctx, []int64{dm.DeliveryID})
	if err != nil || len(as) == 0 {
		if circuit != "" {
			w.cfg.Breaker.Release(circuit)
		}
		return err
	}
	out, err := w.attempt(ctx, as[0], organ, oerr, circuit, probe)
	if err != nil {
		return err
	}
	// An outcome is recorded even when shutting down.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = w.l.Settle(sctx, []ledger.Outcome{out})
	return err
}

// attempt makes the attempt at a delivery read for it (ledger.Attempts) and
// returns its outcome; the caller settles it, alone (Deliver) or with the
// others of its run (deliverRun). It records nothing itself. An error (the
// retry window could not be read) leaves the delivery as it was, for the
// scheduler: nothing is settled.
func (w *Worker) attempt(ctx context.Context, a ledger.Attempt, organ ledger.Organ, oerr error, circuit string,
	probe bool) (ledger.Outcome, error) {
	start := w.cfg.Now()
	d := a.Delivery
	ch, found := w.cfg.Channels[d.Channel]
	var derr error
	switch {
	case oerr != nil:
		derr = &routing.PermanentError{Reason: "recipient " + d.Recipient + " left the directory"}
	case !found:
		derr = &routing.PermanentError{Reason: fmt.Sprintf("no channel %q configured for %s", d.Channel, d.Recipient)}
	default:
		d.Endpoint = organ.Endpoint
		derr = ch.Deliver(ctx, d, w.bodyOf(a))
	}
	return w.outcome(ctx, a, derr, start, circuit, probe)
}

// bodyOf opens the original bytes of a's document: those read with it, or
// the ledger's (a large body, streamed).
func (w *Worker) bodyOf(a ledger.Attempt) routing.BodyOpener {
	if b := a.Body; b != nil {
		return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return w.opener(a.Delivery.DocumentID)
}

// outcome is the outcome of an attempt of a that began at start and ended
// with derr (nil: delivered), as attempt describes; circuit and probe are
// attempt's.
func (w *Worker) outcome(ctx context.Context, a ledger.Attempt, derr error, start time.Time, circuit string,
	probe bool) (ledger.Outcome, error) {
	d := a.Delivery
	took := w.cfg.Now().Sub(start)
	switch {
	case derr == nil:
		w.success(circuit)
		w.cfg.OnResult(d.Channel, "delivered", took)
		return a.Delivered(start), nil
	case ctx.Err() != nil:
		// Shutting down: the request may or may not have arrived; the
		// attempt counts and the delivery is due again now, for another
		// worker (the same idempotency key makes a repeat harmless).
		if circuit != "" {
			w.cfg.Breaker.Release(circuit)
		}
		return a.Retry(start, "attempt interrupted by shutdown", w.cfg.Now()), nil
	case routing.IsPermanent(derr):
		w.success(circuit) // the endpoint answered: it is alive
		w.cfg.OnResult(d.Channel, "dead", took)
		return a.Dead(start, derr.Error()), nil
	}
	if circuit != "" {
		w.cfg.Breaker.Failure(circuit)
	}
	lim, winStart, err := w.l.RetryWindow(ctx, d.ID)
	if err != nil {
		return ledger.Outcome{}, err
	}
	now := w.cfg.Now()
	end := winStart.Add(lim.MaxAge)
	// A failed half-open probe says the endpoint is still down, not that
	// this document cannot be delivered: it does not use up the attempts
	// (the window, max_age, still bounds it).
	if (d.Attempt >= lim.MaxAttempts && !probe) || !now.Before(end) {
		w.cfg.OnResult(d.Channel, "dead", took)
		return a.Dead(start, fmt.Sprintf("retries exhausted (%d attempts of %d, window %s): %v",
			d.Attempt, lim.MaxAttempts, lim.MaxAge, derr)), nil
	}
	w.cfg.OnResult(d.Channel, "retrying", took)
	next := now.Add(w.cfg.Policy.Backoff(d.Attempt, w.cfg.Rand))
	if next.After(end) {
		next = end // a last attempt when the window closes
	}
	return a.Retry(start, derr.Error(), next), nil
}

func (w *Worker) success(circuit string) {
	if circuit != "" {
		w.cfg.Breaker.Success(circuit)
	}
}

// deferOpen postpones a due delivery while its endpoint's circuit is open,
// or declares it dead if its retry window has closed meanwhile.
func (w *Worker) deferOpen(ctx context.Context, dm ledger.DeliverMessage, organ ledger.Organ, until time.Time) error {
	lim, winStart, err := w.l.RetryWindow(ctx, dm.DeliveryID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	end := winStart.Add(lim.MaxAge)
	if !w.cfg.Now().Before(end) {
		w.cfg.OnResult(organ.Channel, "dead", 0)
		return w.l.DeadNow(ctx, dm.DeliveryID, fmt.Sprintf("retry window of %s closed while the circuit of %s was open",
			lim.MaxAge, organ.Endpoint))
	}
	// Spread the deferred tasks so that they do not all come back at once.
	until = until.Add(time.Duration(w.cfg.Rand() * float64(w.cfg.Policy.Base)))
	if until.After(end) {
		until = end
	}
	w.cfg.OnResult(organ.Channel, "deferred", 0)
	_, err = w.l.Defer(ctx, dm.DeliveryID, until, "circuit open for "+organ.Endpoint)
	return err
}

func (w *Worker) opener(docID string) routing.BodyOpener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		b, err := w.l.ContentStream(ctx, docID) // large bodies stream from the blob store
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

// Inbox is the pull channel: the ledger row itself is the inbox, so a
// delivery to it is durable as soon as the state is recorded.
type Inbox struct{}

// Deliver implements routing.Channel.
func (Inbox) Deliver(context.Context, routing.Delivery, routing.BodyOpener) error { return nil }
