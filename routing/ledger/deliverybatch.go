package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"lienthong/routing"
)

// This file holds the group-commit side of the delivery stage: a run of
// deliveries to one recipient is read for its attempts without a write
// (Attempts), and the outcomes of its attempts are settled together, with
// their "delivering" events, in one transaction (Settle), with multi-row
// statements; inbox runs are delivered in one transaction (DeliverInstant).

// newEvent is one event to append with appendEvents.
type newEvent struct {
	doc, recp, kind, state string
	detail                 any
}

// inboxDelivered appends to evs the events of one delivery to an inbox, the
// two steps of the delivery stage in one (DeliverInstant, and Route with
// Config.InboxOnRoute): delivering, then delivered.
func inboxDelivered(evs []newEvent, doc, recp string, attempt int, channel string, seq int64) []newEvent {
	return append(evs,
		newEvent{doc, recp, "delivering", StateDelivering, map[string]any{"attempt": attempt}},
		newEvent{doc, recp, "delivered", StateDelivered,
			map[string]any{"attempt": attempt, "channel": channel, "sequence": seq}})
}

// appendEvents records events in tx, in the order given (their ids increase
// in that order), with one statement whatever their number. lt.events is
// published from the evidence log, not through the outbox (appendEvent).
func appendEvents(ctx context.Context, tx pgx.Tx, evs []newEvent, at time.Time) error {
	ats := make([]time.Time, len(evs))
	for i := range ats {
		ats[i] = at
	}
	return appendEventsAt(ctx, tx, evs, ats)
}

// deliveryCols are what a claimed delivery returns (r: deliveries, d: documents).
const deliveryCols = `r.id, d.id::text, d.sender, r.recipient, d.format, r.seq, r.attempts, d.size, d.sha256, r.channel`

func scanDelivery(row pgx.CollectableRow) (routing.Delivery, error) {
	var d routing.Delivery
	var sum []byte
	if err := row.Scan(&d.ID, &d.DocumentID, &d.Sender, &d.Recipient, &d.Format, &d.Sequence, &d.Attempt, &d.Size,
		&sum, &d.Channel); err != nil {
		return d, err
	}
	d.SHA256 = hex.EncodeToString(sum)
	d.IdempotencyKey = d.DocumentID + "/" + d.Recipient
	return d, nil
}

// inOrder returns ds in the order of ids (ds is a subset of ids).
func inOrder(ids []int64, ds []routing.Delivery) []routing.Delivery {
	pos := make(map[int64]int, len(ids))
	for i, id := range ids {
		if _, ok := pos[id]; !ok {
			pos[id] = i
		}
	}
	slices.SortStableFunc(ds, func(a, b routing.Delivery) int { return pos[a.ID] - pos[b.ID] })
	return ds
}

// DeliverInstant delivers a run of deliveries whose channel is the ledger
// itself (the pull inbox, channel): claiming and settling are one
// transaction, since there is no attempt outside PostgreSQL that a crash
// could interrupt — the transaction either commits (delivered) or leaves the
// deliveries as they were. Each delivered one gets its "delivering" and
// "delivered" events, as Settle records them for a push. It returns the
// delivered ones in the order of ids, and the ids of due deliveries whose
// channel is not channel (the caller delivers those one by one); the rest
// were not due.
func (l *Ledger) DeliverInstant(ctx context.Context, ids []int64, channel string) (delivered []routing.Delivery, other []int64, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	now := l.now().UTC()
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (SELECT id FROM deliveries WHERE id = ANY ($1) AND state IN ($4, $5)
				AND channel = $6 ORDER BY id FOR UPDATE)
			UPDATE deliveries r SET state = $2, attempts = attempts + 1, delivered_at = $3, updated_at = $3,
				next_attempt_at = NULL, last_error = ''
			FROM documents d WHERE r.id IN (SELECT id FROM c) AND d.id = r.document_id
			RETURNING `+deliveryCols, ids, StateDelivered, now, StateRouted, StateRetrying, channel)
		if err != nil {
			return err
		}
		if delivered, err = pgx.CollectRows(rows, scanDelivery); err != nil {
			return err
		}
		delivered = inOrder(ids, delivered)
		rows, err = tx.Query(ctx, `SELECT id FROM deliveries WHERE id = ANY ($1) AND state IN ($2, $3) AND channel <> $4
			ORDER BY seq`, ids, StateRouted, StateRetrying, channel)
		if err != nil {
			return err
		}
		if other, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		evs := make([]newEvent, 0, 2*len(delivered))
		for _, d := range delivered {
			evs = inboxDelivered(evs, d.DocumentID, d.Recipient, d.Attempt, d.Channel, d.Sequence)
		}
		return appendEvents(ctx, tx, evs, now)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: deliver to inbox: %w", err)
	}
	return delivered, other, nil
}

// appendEventsAt is appendEvents with a time per event (ats[i] for evs[i]):
// a settle records the "delivering" event of an attempt at the time the
// attempt began, beside its outcome.
func appendEventsAt(ctx context.Context, tx pgx.Tx, evs []newEvent, ats []time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	if len(ats) != len(evs) {
		return fmt.Errorf("insert events: %d times for %d events", len(ats), len(evs))
	}
	var (
		docs    = make([]string, len(evs))
		recps   = make([]string, len(evs))
		kinds   = make([]string, len(evs))
		states  = make([]string, len(evs))
		details = make([]string, len(evs))
	)
	for i, e := range evs {
		d := []byte("{}")
		if e.detail != nil {
			var err error
			if d, err = json.Marshal(e.detail); err != nil {
				return fmt.Errorf("event detail: %w", err)
			}
		}
		docs[i], recps[i], kinds[i], states[i], details[i] = e.doc, e.recp, e.kind, e.state, string(d)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (document_id, recipient, kind, state, detail, at)
		SELECT d::uuid, r, k, s, x::jsonb, t
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
		WITH ORDINALITY AS u(d, r, k, s, x, t, o) ORDER BY o`, docs, recps, kinds, states, details, ats); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// Attempt is a due delivery read for an attempt (Attempts) without being
// claimed: nothing is written before the request goes out. Its outcome is
// recorded afterwards (Settle), with the "delivering" event of the attempt
// and the event of its outcome together, and only if the delivery's row is
// still the version that was read; a worker that lost the delivery to
// another (two workers holding the same task during a consumer-group
// rebalance, a lease that ran out, an operator's action) cannot settle it.
//
// A crash between the request and the settle leaves the delivery as it was
// (routed or retrying): its task comes back, or the scheduler re-announces
// it, and it is pushed again under the same idempotency key
// (ARCHITECTURE.md principle 2) and recorded once.
type Attempt struct {
	// Delivery is the delivery as read; Delivery.Attempt is the number of
	// the attempt about to be made (attempts so far + 1).
	routing.Delivery
	// Body is the document's bytes when they are stored inline and at most
	// MaxPrefetchBody; otherwise nil, and the body is streamed
	// (ContentStream).
	Body []byte
	// version is the row version read (its xmin): a settle applies only to it.
	version string
}

// Kinds of Outcome.
const (
	OutcomeDelivered = "delivered" // the attempt succeeded: delivered
	OutcomeRetrying  = "retrying"  // the attempt failed: retrying at Next
	OutcomeDead      = "dead"      // the attempt failed for good: dead, on lt.dead
	OutcomeDeferred  = "deferred"  // no attempt made (circuit open, shutdown): retrying at Next
)

// ErrBadOutcome: Settle was given an Outcome not made by an Attempt's methods.
var ErrBadOutcome = errors.New("ledger: settle: outcome not made by an Attempt")

// Outcome is what became of an Attempt, for Settle.
type Outcome struct {
	a       Attempt
	kind    string
	started time.Time // when the attempt began: the time of its "delivering" event
	reason  string
	next    time.Time
}

// Delivered is the outcome of a successful attempt that began at started.
func (a Attempt) Delivered(started time.Time) Outcome {
	return Outcome{a: a.settled(), kind: OutcomeDelivered, started: started}
}

// Retry is the outcome of a failed attempt that began at started: retrying,
// due at next.
func (a Attempt) Retry(started time.Time, reason string, next time.Time) Outcome {
	return Outcome{a: a.settled(), kind: OutcomeRetrying, started: started, reason: reason, next: next}
}

// Dead is the outcome of a failed attempt that began at started after which
// no other is made (a permanent error, retries exhausted).
func (a Attempt) Dead(started time.Time, reason string) Outcome {
	return Outcome{a: a.settled(), kind: OutcomeDead, started: started, reason: reason}
}

// Deferred postpones the delivery to until without an attempt: as Defer, a
// routed delivery becomes retrying with a "deferred" event, a retrying one
// only gets its new time; no attempt is counted.
func (a Attempt) Deferred(reason string, until time.Time) Outcome {
	return Outcome{a: a.settled(), kind: OutcomeDeferred, reason: reason, next: until}
}

// settled drops what a settle does not need (the body).
func (a Attempt) settled() Attempt {
	a.Body = nil
	return a
}

// replanned runs a statement as an unnamed one, planned at each call with
// its arguments and the tables' current size, never from a plan cached per
// connection. It is for the statements of the delivery stage that reach
// deliveries by a list of keys (Attempts, Settle, AckMany): on a young
// database, the generic plan PostgreSQL settles on after a few calls is
// made while deliveries is a few pages, chooses sequential scans (a nested
// loop of them for Settle), and is kept as the table grows until
// autovacuum's first ANALYZE; under hubbench a settle then read the whole
// table once per row, and deliveries fell behind acceptance. Planning per
// call costs far less than that (one plan per run of deliveries).
const replanned = pgx.QueryExecModeDescribeExec

// attemptsSQL reads due deliveries for Attempts: $1 ids, $2 MaxPrefetchBody.
// The states are written out so that even a generic plan reads only due rows.
const attemptsSQL = `SELECT ` + deliveryCols + `, r.xmin::text,
		CASE WHEN d.body_blob IS NULL AND d.size <= $2 AND octet_length(d.body) = d.size THEN d.body END
	FROM deliveries r JOIN documents d ON d.id = r.document_id
	WHERE r.id = ANY ($1) AND r.state IN ('` + StateRouted + `', '` + StateRetrying + `')`

// Attempts reads the deliveries ids that are due (routed or retrying) for an
// attempt each, in the order of ids, in one query and without writing
// anything; the others (delivered, dead, acknowledged, an old claim still
// delivering) are left out, and the caller drops their tasks. Each small
// inline body comes with its delivery (Attempt.Body).
func (l *Ledger) Attempts(ctx context.Context, ids []int64) ([]Attempt, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := l.pool.Query(ctx, attemptsSQL, replanned, ids, MaxPrefetchBody)
	if err != nil {
		return nil, fmt.Errorf("ledger: attempts: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		var sum []byte
		err := row.Scan(&a.ID, &a.DocumentID, &a.Sender, &a.Recipient, &a.Format, &a.Sequence, &a.Attempt, &a.Size,
			&sum, &a.Channel, &a.version, &a.Body)
		a.Attempt++
		a.SHA256 = hex.EncodeToString(sum)
		a.IdempotencyKey = a.DocumentID + "/" + a.Recipient
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: attempts: %w", classify(err))
	}
	pos := make(map[int64]int, len(ids))
	for i, id := range ids {
		if _, ok := pos[id]; !ok {
			pos[id] = i
		}
	}
	slices.SortStableFunc(out, func(a, b Attempt) int { return pos[a.ID] - pos[b.ID] })
	return out, nil
}

// settleSQL settles outcomes for Settle: $1 delivery ids, $2 the row
// versions read, $3 the kinds of outcome, $4 the reasons, $5 the next
// attempts, $6 now. A row is settled only if it is still due and still the
// version read (its xmin: any update since, by anyone, makes a new version);
// the fenced rows are locked in id order first. "r.id = ANY ($1)" lets even
// a generic plan find them by the primary key.
const settleSQL = `WITH u AS (
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, v, k, e, n)),
	c AS (SELECT r.id, r.state, u.k, u.e, u.n FROM deliveries r JOIN u ON u.id = r.id
		WHERE r.id = ANY ($1) AND r.state IN ('` + StateRouted + `', '` + StateRetrying + `') AND r.xmin = u.v::xid
		ORDER BY r.id FOR UPDATE OF r)
	UPDATE deliveries r SET
		state = CASE c.k WHEN '` + OutcomeDelivered + `' THEN '` + StateDelivered + `'
			WHEN '` + OutcomeDead + `' THEN '` + StateDead + `' ELSE '` + StateRetrying + `' END,
		attempts = r.attempts + CASE c.k WHEN '` + OutcomeDeferred + `' THEN 0 ELSE 1 END,
		delivered_at = CASE c.k WHEN '` + OutcomeDelivered + `' THEN $6 ELSE r.delivered_at END,
		next_attempt_at = c.n,
		last_error = CASE WHEN c.k = '` + OutcomeDelivered + `' THEN '' WHEN c.e <> '' THEN c.e ELSE r.last_error END,
		updated_at = $6
	FROM c WHERE r.id = c.id AND r.id = ANY ($1)
	RETURNING r.id, c.state`

// Settle records the outcomes of attempts (and deferrals) in one
// transaction, whatever their mix: each delivery whose row is still due and
// still the version its Attempt read takes its outcome, with, in the order
// of outs, the "delivering" event of the attempt (at the time it began) and
// the event of its outcome (delivered, retrying, dead; deferred for a routed
// delivery put off without an attempt); a dead one is queued on lt.dead.
// The others (settled meanwhile by another worker, deferred, replayed) are
// left alone. It returns how many it settled. The caller acknowledges the
// Kafka messages of the attempts only after it returns nil.
//
// Rows are locked in id order, so two settles never deadlock.
func (l *Ledger) Settle(ctx context.Context, outs []Outcome) (int, error) {
	if len(outs) == 0 {
		return 0, nil
	}
	now := l.now().UTC()
	var (
		ids      = make([]int64, 0, len(outs))
		versions = make([]string, 0, len(outs))
		kinds    = make([]string, 0, len(outs))
		reasons  = make([]string, 0, len(outs))
		nexts    = make([]*time.Time, 0, len(outs))
		seen     = make(map[int64]bool, len(outs))
	)
	for _, o := range outs {
		switch o.kind {
		case OutcomeDelivered, OutcomeRetrying, OutcomeDead, OutcomeDeferred:
		default:
			return 0, fmt.Errorf("%w (kind %q, delivery %d)", ErrBadOutcome, o.kind, o.a.ID)
		}
		if seen[o.a.ID] {
			continue // the first outcome of a delivery counts
		}
		seen[o.a.ID] = true
		ids, versions, kinds, reasons = append(ids, o.a.ID), append(versions, o.a.version), append(kinds, o.kind),
			append(reasons, o.reason)
		var next *time.Time
		if o.kind == OutcomeRetrying || o.kind == OutcomeDeferred {
			t := o.next.UTC()
			next = &t
		}
		nexts = append(nexts, next)
	}
	n := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, settleSQL, replanned, ids, versions, kinds, reasons, nexts, now)
		if err != nil {
			return err
		}
		was := map[int64]string{}
		for rows.Next() {
			var id int64
			var state string
			if err := rows.Scan(&id, &state); err != nil {
				return err
			}
			was[id] = state
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var (
			evs       []newEvent
			ats       []time.Time
			deadKeys  []string
			deadTasks []any
		)
		add := func(e newEvent, at time.Time) {
			evs, ats = append(evs, e), append(ats, at)
		}
		for _, o := range outs {
			state, ok := was[o.a.ID]
			if !ok {
				continue
			}
			delete(was, o.a.ID) // once, even if outs repeats it
			n++
			d := o.a.Delivery
			if o.kind == OutcomeDeferred {
				if state == StateRouted {
					add(newEvent{d.DocumentID, d.Recipient, "deferred", StateRetrying,
						map[string]any{"reason": o.reason, "next_attempt_at": o.next.UTC()}}, now)
				}
				continue
			}
			started := o.started.UTC()
			if o.started.IsZero() || started.After(now) {
				started = now
			}
			add(newEvent{d.DocumentID, d.Recipient, "delivering", StateDelivering, map[string]any{"attempt": d.Attempt}}, started)
			switch o.kind {
			case OutcomeDelivered:
				add(newEvent{d.DocumentID, d.Recipient, "delivered", StateDelivered,
					map[string]any{"attempt": d.Attempt, "channel": d.Channel, "sequence": d.Sequence}}, now)
			case OutcomeRetrying:
				add(newEvent{d.DocumentID, d.Recipient, "retrying", StateRetrying,
					map[string]any{"attempt": d.Attempt, "error": o.reason, "next_attempt_at": o.next.UTC()}}, now)
			case OutcomeDead:
				add(newEvent{d.DocumentID, d.Recipient, "dead", StateDead, map[string]any{"reason": o.reason}}, now)
				deadKeys = append(deadKeys, d.Recipient)
				deadTasks = append(deadTasks, map[string]any{"delivery_id": d.ID, "document_id": d.DocumentID,
					"recipient": d.Recipient, "reason": o.reason})
			}
		}
		if err := appendEventsAt(ctx, tx, evs, ats); err != nil {
			return err
		}
		return enqueueMany(ctx, tx, TopicDead, deadKeys, deadTasks)
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: settle: %w", err)
	}
	return n, nil
}
