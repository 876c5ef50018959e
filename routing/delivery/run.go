package delivery

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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
//     this stage: with ledger.Config.InboxOnRoute they are delivered where
//     they are routed, in the accept transaction (Config.RouteOnAccept) or
//     by the router, when that keeps the order; their tasks are not queued,
//     and a late one finds its delivery delivered.
//   - push (and every other) deliveries are not claimed: the run's due
//     deliveries and their small bodies are read in one query
//     (ledger.Attempts), then one HTTP attempt per delivery, in order, each
//     with the delivery's idempotency key; the outcomes (delivered,
//     retrying, dead) are recorded together (ledger.Settle), each with the
//     "delivering" event of its attempt at the time it began, at the end of
//     the run or once the oldest has waited flushAfter. A crash before the
//     settle leaves the deliveries routed (or retrying): their tasks come
//     back, or the scheduler re-announces them, and they are pushed again
//     under the same key, harmless to a recipient that honours it
//     (principle 2). A settle applies only to the row version its attempt
//     read, so a second worker holding the same task (a consumer-group
//     rebalance) cannot record it twice. If the endpoint's circuit opens
//     during the run, or the worker shuts down, the deliveries not attempted
//     yet are deferred in the same settle, without an attempt used.
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
		list, top, err := w.withPredecessors(ctx, recp, same)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: predecessors", slog.String("recipient", recp), slog.Any("error", err))
		}
		clean := err == nil
		for len(list) > 0 && ctx.Err() == nil {
			n := min(len(list), w.cfg.MaxRun)
			if !w.deliverRun(ctx, recp, list[:n]) {
				clean = false
			}
			list = list[n:]
		}
		switch {
		case clean && ctx.Err() == nil && top > 0:
			w.firsts.done(recp, top)
		case !clean || ctx.Err() != nil:
			w.firsts.forget(recp) // some may still wait: ask the ledger next time
		}
		dms = rest
	}
}

// withPredecessors keeps first attempts in acceptance order: before each
// task come the deliveries to the same recipient with a lower sequence that
// still wait for their first attempt (their task is late, or their document
// not routed yet). Their own tasks find them settled later and do nothing.
// Deliveries in retry are not waited for: they do not block later ones. One
// query serves the whole run, and none when the run's sequences continue
// without a gap from where the worker's own first attempts for the recipient
// left off (firstAttempts). On error the tasks are returned as they are.
//
// top is the sequence up to which every delivery has had its first attempt
// once the returned list is through (0: not known, for instance because the
// query was cut at its limit).
func (w *Worker) withPredecessors(ctx context.Context, recp string, dms []ledger.DeliverMessage) (
	list []ledger.DeliverMessage, top int64, err error) {
	seqs := make([]int64, len(dms))
	for i, dm := range dms {
		seqs[i] = dm.Sequence
		top = max(top, dm.Sequence)
	}
	if top <= 0 {
		return dms, 0, nil
	}
	if w.firsts.follows(recp, seqs) {
		return dms, top, nil
	}
	limit := 256 + len(dms)
	preds, err := w.l.Predecessors(ctx, recp, top, limit)
	if err != nil {
		return dms, 0, err
	}
	if len(preds) == limit {
		top = 0 // more may wait beyond the limit
	}
	var unrouted []string
	for _, p := range preds {
		if p.State == ledger.StateAccepted {
			unrouted = append(unrouted, p.DocumentID)
		}
	}
	if len(unrouted) > 0 {
		if _, err := w.l.Route(ctx, unrouted, w.l.Organ); err != nil {
			return dms, 0, err
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
	return out, top, nil
}

// deliverRun delivers a run of tasks to one recipient, in order. It reports
// whether every task reached its end cleanly (an outcome recorded, or
// nothing to do), without an error of the ledger.
func (w *Worker) deliverRun(ctx context.Context, recp string, run []ledger.DeliverMessage) (clean bool) {
	clean = true
	one := func(dms []ledger.DeliverMessage) {
		for _, dm := range dms {
			if ctx.Err() != nil {
				clean = false
				return
			}
			if err := w.Deliver(ctx, dm); err != nil {
				clean = false
				if ctx.Err() == nil {
					w.cfg.Logger.WarnContext(ctx, "delivery: task failed", slog.Int64("delivery", dm.DeliveryID), slog.Any("error", err))
				}
			}
		}
	}
	organ, err := w.l.Organ(ctx, recp)
	if err != nil {
		one(run) // an unknown organ or a ledger error: one by one decides
		return clean
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
			return false
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
		return clean
	}
	if len(run) == 1 {
		one(run) // nothing to group: read, attempt and settle, as one by one
		return clean
	}
	circuit := ""
	if organ.Channel != ledger.ChannelPull {
		circuit = organ.Channel + " " + organ.Endpoint
		if w.cfg.Breaker.State(circuit) != "closed" {
			one(run) // deferrals and the half-open probe: one by one
			return clean
		}
	}
	// The run's due deliveries with their small bodies, in one query; a
	// body left out (large, purged) is opened on its own.
	as, err := w.l.Attempts(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: reading a run failed", slog.String("recipient", recp), slog.Any("error", err))
		}
		return false
	}
	var outs []ledger.Outcome
	var oldest time.Time
	// Outcomes are recorded in the background while the next pushes go
	// out, one group commit in flight at a time (so their events keep the
	// order of the attempts); flush(true) waits for it. The run's tasks are
	// done only after the last one is durable (handleRun returns after it).
	var inflight chan bool
	settle := func() {
		if inflight != nil {
			if !<-inflight {
				clean = false
			}
			inflight = nil
		}
	}
	flush := func(wait bool) {
		if len(outs) > 0 {
			batch := outs
			outs = nil
			settle()
			ch := make(chan bool, 1)
			inflight = ch
			go func() {
				// Outcomes are recorded even when shutting down.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_, err := w.l.Settle(fctx, batch)
				if err != nil {
					w.cfg.Logger.WarnContext(ctx, "delivery: recording a run's outcomes failed; the scheduler will recover them",
						slog.String("recipient", recp), slog.Int("deliveries", len(batch)), slog.Any("error", err))
				}
				ch <- err == nil
			}()
		}
		if wait {
			settle()
		}
	}
	deferRest := func(rest []ledger.Attempt, until time.Time, reason string) {
		for _, a := range rest {
			outs = append(outs, a.Deferred(reason, until))
		}
		flush(true)
	}
	record := func(out ledger.Outcome) {
		if len(outs) == 0 {
			oldest = time.Now()
		}
		outs = append(outs, out)
		if time.Since(oldest) >= flushAfter {
			flush(false)
		}
	}
	failed := func(a ledger.Attempt, err error) {
		clean = false
		if ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "delivery: task failed", slog.Int64("delivery", a.ID), slog.Any("error", err))
		}
	}
	if pl, ok := w.cfg.Channels[organ.Channel].(routing.Pipeliner); ok && organ.PushPipeline > 1 && circuit != "" {
		as = w.pipelined(ctx, pl, as, organ, circuit, record, failed)
	}
	for i, a := range as {
		if ctx.Err() != nil {
			deferRest(as[i:], w.cfg.Now(), "attempt interrupted by shutdown")
			return false
		}
		probe := false
		if circuit != "" {
			var allowed bool
			var until time.Time
			if allowed, probe, until = w.cfg.Breaker.allow(circuit); !allowed {
				until = until.Add(time.Duration(w.cfg.Rand() * float64(w.cfg.Policy.Base)))
				for range as[i:] {
					w.cfg.OnResult(organ.Channel, "deferred", 0)
				}
				deferRest(as[i:], until, "circuit open for "+organ.Endpoint)
				return clean
			}
		}
		out, err := w.attempt(ctx, a, organ, nil, circuit, probe)
		if err != nil {
			failed(a, err)
			continue
		}
		record(out)
	}
	flush(true)
	return clean
}

// pipelined attempts the first of as over one pipelined connection to
// organ's endpoint (routing.Pipeliner), with up to organ.PushPipeline
// requests unanswered at once, and hands each outcome to record in order,
// or an attempt whose outcome could not be made to failed. It returns the
// attempts it did not finish, for the one-at-a-time loop: those after a
// broken connection (their requests, if written, were not answered: they
// go again under the same keys), after the circuit stopped letting
// attempts through (the loop defers them), from the first routed to
// another channel than the organ's now, or all of them when no connection
// could be opened.
func (w *Worker) pipelined(ctx context.Context, pl routing.Pipeliner, as []ledger.Attempt, organ ledger.Organ,
	circuit string, record func(ledger.Outcome), failed func(ledger.Attempt, error)) []ledger.Attempt {
	p, err := pl.Pipeline(ctx, organ.Endpoint)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.InfoContext(ctx, "delivery: no pipelined connection; pushing one at a time",
				slog.String("endpoint", organ.Endpoint), slog.Any("error", err))
		}
		return as
	}
	defer p.Close()
	window := min(organ.PushPipeline, ledger.MaxPushPipeline)
	starts := make([]time.Time, 0, len(as))
	probes := make([]bool, 0, len(as))
	sent, answered := 0, 0
	sending := true
	for {
		for sending && sent < len(as) && sent-answered < window && ctx.Err() == nil {
			if as[sent].Delivery.Channel != organ.Channel {
				// Routed to a channel the organ has left: the loop's
				// attempt decides what becomes of it, and of those after it.
				sending = false
				break
			}
			allowed, probe, _ := w.cfg.Breaker.allow(circuit)
			if !allowed {
				sending = false
				break
			}
			a := as[sent]
			d := a.Delivery
			start := w.cfg.Now()
			if err := p.Send(ctx, d, w.bodyOf(a)); err != nil {
				if probe {
					w.cfg.Breaker.Release(circuit) // not attempted: the loop tries it again
				}
				sending = false
				break
			}
			starts, probes = append(starts, start), append(probes, probe)
			sent++
			if probe {
				sending = false // a half-open circuit lets one through
			}
		}
		if answered == sent {
			return as[answered:]
		}
		derr := p.Receive(ctx)
		if errors.Is(derr, routing.ErrUnanswered) || ctx.Err() != nil {
			// This one and the others sent after it were not answered.
			if slices.Contains(probes[answered:], true) {
				w.cfg.Breaker.Release(circuit)
			}
			return as[answered:]
		}
		out, err := w.outcome(ctx, as[answered], derr, starts[answered], circuit, probes[answered])
		if err != nil {
			failed(as[answered], err)
		} else {
			record(out)
		}
		answered++
	}
}

// isInstant reports whether a channel's delivery is the ledger state itself.
func isInstant(ch routing.Channel) bool {
	switch ch.(type) {
	case Inbox, *Inbox:
		return true
	}
	return false
}
