package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"lienthong/routing"
)

// This file holds the group-commit side of the delivery stage: a run of
// deliveries to one recipient is claimed, settled or handed back in one
// transaction each, with multi-row statements, instead of one or two
// transactions per delivery. The per-delivery functions of pipeline.go keep
// the rare paths (failures, dead letters).

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
	if len(evs) == 0 {
		return nil
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
		SELECT d::uuid, r, k, s, x::jsonb, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
		WITH ORDINALITY AS u(d, r, k, s, x, o) ORDER BY o`, docs, recps, kinds, states, details, at); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
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

// StartDeliveries claims a run of deliveries for an attempt each, in one
// transaction: those that are due (routed or retrying) become delivering,
// with a "delivering" event each, exactly as StartDelivery does one by one.
// It returns the claimed ones in the order of ids; the others (delivered,
// dead, being delivered elsewhere) are left alone and the caller drops their
// tasks. Rows are locked in id order, so two claims never deadlock.
func (l *Ledger) StartDeliveries(ctx context.Context, ids []int64) ([]routing.Delivery, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := l.now().UTC()
	var out []routing.Delivery
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (SELECT id FROM deliveries WHERE id = ANY ($1) AND state IN ($4, $5)
				ORDER BY id FOR UPDATE)
			UPDATE deliveries r SET state = $2, attempts = attempts + 1, updated_at = $3
			FROM documents d WHERE r.id IN (SELECT id FROM c) AND d.id = r.document_id
			RETURNING `+deliveryCols, ids, StateDelivering, now, StateRouted, StateRetrying)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scanDelivery); err != nil {
			return err
		}
		out = inOrder(ids, out)
		evs := make([]newEvent, len(out))
		for i, d := range out {
			evs[i] = newEvent{d.DocumentID, d.Recipient, "delivering", StateDelivering, map[string]any{"attempt": d.Attempt}}
		}
		return appendEvents(ctx, tx, evs, now)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: start deliveries: %w", err)
	}
	return out, nil
}

// DeliveredRun records the successful attempts of a run in one transaction
// (group commit of outcomes): each delivery still delivering becomes
// delivered, with its "delivered" event, exactly as Delivered does one by
// one. It returns how many it settled; the others had been settled already.
// The caller acknowledges the run's Kafka messages only after it returns nil.
func (l *Ledger) DeliveredRun(ctx context.Context, ds []routing.Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	now := l.now().UTC()
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	n := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (SELECT id FROM deliveries WHERE id = ANY ($1) AND state = $4
				ORDER BY id FOR UPDATE)
			UPDATE deliveries SET state = $2, delivered_at = $3, updated_at = $3, next_attempt_at = NULL, last_error = ''
			WHERE id IN (SELECT id FROM c) RETURNING id`, ids, StateDelivered, now, StateDelivering)
		if err != nil {
			return err
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		settled := make(map[int64]bool, len(done))
		for _, id := range done {
			settled[id] = true
		}
		var evs []newEvent
		for _, d := range ds {
			if settled[d.ID] {
				settled[d.ID] = false // once, even if ds repeats it
				evs = append(evs, newEvent{d.DocumentID, d.Recipient, "delivered", StateDelivered,
					map[string]any{"attempt": d.Attempt, "channel": d.Channel, "sequence": d.Sequence}})
			}
		}
		n = len(evs)
		return appendEvents(ctx, tx, evs, now)
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: delivered: %w", err)
	}
	return n, nil
}

// DeliverInstant delivers a run of deliveries whose channel is the ledger
// itself (the pull inbox, channel): claiming and settling are one
// transaction, since there is no attempt outside PostgreSQL that a crash
// could interrupt — the transaction either commits (delivered) or leaves the
// deliveries as they were. Each delivered one gets its "delivering" and
// "delivered" events, as the two-step path records them. It returns the
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

// ReleaseDeliveries hands back deliveries that a run claimed (delivering) but
// made no attempt at — the endpoint's circuit opened in the middle of the run,
// or the worker is shutting down: each becomes retrying, due at until, its
// claim not counted as an attempt, with a "deferred" event.
func (l *Ledger) ReleaseDeliveries(ctx context.Context, ds []routing.Delivery, until time.Time, reason string) error {
	if len(ds) == 0 {
		return nil
	}
	now := l.now().UTC()
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (SELECT id FROM deliveries WHERE id = ANY ($1) AND state = $5
				ORDER BY id FOR UPDATE)
			UPDATE deliveries SET state = $2, attempts = greatest(attempts - 1, 0), next_attempt_at = $3,
				updated_at = $4, last_error = $6
			WHERE id IN (SELECT id FROM c) RETURNING id`, ids, StateRetrying, until.UTC(), now, StateDelivering, reason)
		if err != nil {
			return err
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		back := make(map[int64]bool, len(done))
		for _, id := range done {
			back[id] = true
		}
		var evs []newEvent
		for _, d := range ds {
			if back[d.ID] {
				back[d.ID] = false
				evs = append(evs, newEvent{d.DocumentID, d.Recipient, "deferred", StateRetrying,
					map[string]any{"reason": reason, "next_attempt_at": until.UTC()}})
			}
		}
		return appendEvents(ctx, tx, evs, now)
	})
	if err != nil {
		return fmt.Errorf("ledger: release deliveries: %w", err)
	}
	return nil
}
