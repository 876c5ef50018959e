package delivery

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"time"

	"lienthong/routing"
	"lienthong/routing/ledger"
)

// A run is the tasks of one recipient's lane taken together (at most
// Config.MaxRun). Ordering (ARCHITECTURE.md principle 6) is unchanged: within
// a run the attempts go one at a time in task order, each after the earlier
// deliveries of the recipient that still wait for their first attempt. What a
// run changes is the number of PostgreSQL commits:
//
//   - pull (inbox) deliveries are only a change of state: the run is claimed
//     and delivered in one transaction (ledger.DeliverInstant). There is no
//     attempt outside PostgreSQL between the claim and the outcome, so the
//     delivering state, which exists to make an interrupted attempt visible,
//     never needs to be durable on its own. In the hub most never reach
//     this stage: with ledger.Config.InboxOnRoute the router delivers them
//     as it routes them, when that keeps the order; their tasks are not
//     queued, and a late one finds its delivery delivered.
//   - push (and every other) deliveries are claimed in one transaction
//     (ledger.StartDeliveries: delivering, as StartDelivery one by one) before
//     any request goes out, so that a crash in the middle of the run leaves
//     them visibly delivering, and the sweep (RequeueStuck) makes them
//     retrying, to be attempted again under the same idempotency key. Then
//     one HTTP attempt per delivery, in order; failures are recorded at once,
//     one by one, as before; the successes are recorded together
//     (ledger.DeliveredRun), at the end of the run or once the oldest has
//     waited flushAfter. If the endpoint's circuit opens during the run, the
//     deliveries not attempted yet are handed back (ledger.ReleaseDeliveries)
//     without using up an attempt.
//
// The run's Kafka offsets are marked done only after handleRun returns, that
// is after its outcomes are committed.

// flushAfter bounds how long a successful attempt of a run waits for the
// group commit of its outcome.
const flushAfter = 20 * time.Millisecond

// handleRun runs a run of tasks to their outcomes. Errors of the ledger are
// logged; the scheduler recovers the tasks later from their state.
func (w *Worker) handleRun(ctx context.Context, dms []ledger.DeliverMessage) {
	// Lanes are per recipient; group by recipient anyway, keeping the order.
	for len(dms) > 0 {
		recp := dms[0].Recipient
		var same, rest []ledger.DeliverMessage
		for _, dm := range dms {
			if dm.Recipient == recp {
				same = append(same, dm)
			} else {
				rest = append(rest, dm)
			}
		}
		list, err := w.withPredecessors(ctx, recp, same)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: predecessors", slog.String("recipient", recp), slog.Any("error", err))
		}
		for len(list) > 0 && ctx.Err() == nil {
			n := min(len(list), w.cfg.MaxRun)
			w.deliverRun(ctx, recp, list[:n])
			list = list[n:]
		}
		dms = rest
	}
}

// withPredecessors keeps first attempts in acceptance order: before each
// task come the deliveries to the same recipient with a lower sequence that
// still wait for their first attempt (their task is late, or their document
// not routed yet). Their own tasks find them settled later and do nothing.
// Deliveries in retry are not waited for: they do not block later ones. One
// query serves the whole run. On error the tasks are returned as they are.
func (w *Worker) withPredecessors(ctx context.Context, recp string, dms []ledger.DeliverMessage) ([]ledger.DeliverMessage, error) {
	var top int64
	for _, dm := range dms {
		top = max(top, dm.Sequence)
	}
	if top <= 0 {
		return dms, nil
	}
	preds, err := w.l.Predecessors(ctx, recp, top, 256+len(dms))
	if err != nil {
		return dms, err
	}
	var unrouted []string
	for _, p := range preds {
		if p.State == ledger.StateAccepted {
			unrouted = append(unrouted, p.DocumentID)
		}
	}
	if len(unrouted) > 0 {
		if _, err := w.l.Route(ctx, unrouted, w.l.Organ); err != nil {
			return dms, err
		}
	}
	out := make([]ledger.DeliverMessage, 0, len(preds)+len(dms))
	seen := make(map[int64]bool, len(preds)+len(dms))
	add := func(m ledger.DeliverMessage) {
		if !seen[m.DeliveryID] {
			seen[m.DeliveryID] = true
			out = append(out, m)
		}
	}
	next := 0
	for _, dm := range dms {
		if dm.Sequence > 0 {
			for next < len(preds) && preds[next].Sequence < dm.Sequence {
				add(preds[next].DeliverMessage)
				next++
			}
		}
		add(dm)
	}
	return out, nil
}

// deliverRun delivers a run of tasks to one recipient, in order.
func (w *Worker) deliverRun(ctx context.Context, recp string, run []ledger.DeliverMessage) {
	one := func(dms []ledger.DeliverMessage) {
		for _, dm := range dms {
			if ctx.Err() != nil {
				return
			}
			if err := w.Deliver(ctx, dm); err != nil && ctx.Err() == nil {
				w.cfg.Logger.WarnContext(ctx, "delivery: task failed", slog.Int64("delivery", dm.DeliveryID), slog.Any("error", err))
			}
		}
	}
	organ, err := w.l.Organ(ctx, recp)
	if err != nil {
		one(run) // an unknown organ or a ledger error: one by one decides
		return
	}
	ids := make([]int64, len(run))
	byID := make(map[int64]ledger.DeliverMessage, len(run))
	for i, dm := range run {
		ids[i] = dm.DeliveryID
		byID[dm.DeliveryID] = dm
	}
	if ch, ok := w.cfg.Channels[organ.Channel]; ok && organ.Channel == ledger.ChannelPull && isInstant(ch) {
		start := w.cfg.Now()
		done, other, err := w.l.DeliverInstant(ctx, ids, organ.Channel)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Logger.WarnContext(ctx, "delivery: inbox run failed", slog.String("recipient", recp), slog.Any("error", err))
			}
			return
		}
		took := w.cfg.Now().Sub(start)
		for _, d := range done {
			w.cfg.OnResult(d.Channel, "delivered", took)
		}
		rest := make([]ledger.DeliverMessage, 0, len(other))
		for _, id := range other { // routed to another channel before the directory changed
			rest = append(rest, byID[id])
		}
		one(rest)
		return
	}
	if len(run) == 1 {
		one(run) // nothing to group: claim and outcome, as one by one
		return
	}
	circuit := ""
	if organ.Channel != ledger.ChannelPull {
		circuit = organ.Channel + " " + organ.Endpoint
		if w.cfg.Breaker.State(circuit) != "closed" {
			one(run) // deferrals and the half-open probe: one by one
			return
		}
	}
	ds, err := w.l.StartDeliveries(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: claiming a run failed", slog.String("recipient", recp), slog.Any("error", err))
		}
		return
	}
	// The run's small bodies in one query instead of one per push; a body
	// left out (large, purged, or the query failed) is opened on its own.
	docIDs := make([]string, len(ds))
	for i, d := range ds {
		docIDs[i] = d.DocumentID
	}
	bodies, err := w.l.InlineBodies(ctx, docIDs)
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.WarnContext(ctx, "delivery: prefetching a run's bodies failed; opening them one by one",
			slog.String("recipient", recp), slog.Any("error", err))
	}
	var ok []routing.Delivery
	var oldest time.Time
	// Successes are recorded in the background while the next pushes go
	// out, one group commit in flight at a time (so their events keep the
	// order of the attempts); flush(true) waits for it. The run's tasks are
	// done only after the last one is durable (handleRun returns after it).
	var inflight chan struct{}
	settle := func() {
		if inflight != nil {
			<-inflight
			inflight = nil
		}
	}
	flush := func(wait bool) {
		if len(ok) > 0 {
			batch := ok
			ok = nil
			settle()
			ch := make(chan struct{})
			inflight = ch
			go func() {
				defer close(ch)
				// Successful attempts are recorded even when shutting down.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if _, err := w.l.DeliveredRun(fctx, batch); err != nil {
					w.cfg.Logger.WarnContext(ctx, "delivery: recording delivered run failed; the sweep will retry it",
						slog.String("recipient", recp), slog.Int("deliveries", len(batch)), slog.Any("error", err))
				}
			}()
		}
		if wait {
			settle()
		}
	}
	release := func(rest []routing.Delivery, until time.Time, reason string) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := w.l.ReleaseDeliveries(rctx, rest, until, reason); err != nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: handing back a run failed; the sweep will recover it",
				slog.String("recipient", recp), slog.Any("error", err))
		}
	}
	for i, d := range ds {
		if ctx.Err() != nil {
			flush(true)
			release(ds[i:], w.cfg.Now(), "attempt interrupted by shutdown")
			return
		}
		probe := false
		if circuit != "" {
			var allowed bool
			var until time.Time
			if allowed, probe, until = w.cfg.Breaker.allow(circuit); !allowed {
				flush(true)
				until = until.Add(time.Duration(w.cfg.Rand() * float64(w.cfg.Policy.Base)))
				for range ds[i:] {
					w.cfg.OnResult(organ.Channel, "deferred", 0)
				}
				release(ds[i:], until, "circuit open for "+organ.Endpoint)
				return
			}
		}
		var open routing.BodyOpener
		if b, found := bodies[d.DocumentID]; found {
			open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
		delivered, err := w.attempt(ctx, d, organ, nil, circuit, probe, open)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: task failed", slog.Int64("delivery", d.ID), slog.Any("error", err))
		}
		if delivered {
			if len(ok) == 0 {
				oldest = time.Now()
			}
			ok = append(ok, d)
			if time.Since(oldest) >= flushAfter {
				flush(false)
			}
		}
	}
	flush(true)
}

// isInstant reports whether a channel's delivery is the ledger state itself.
func isInstant(ch routing.Channel) bool {
	switch ch.(type) {
	case Inbox, *Inbox:
		return true
	}
	return false
}
