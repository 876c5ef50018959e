package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LockDeadlines is the advisory-lock key of the deadline checker's leader.
const LockDeadlines = 0x4c54_4445_4144 // "LTDEAD"

// Overdue kinds (negative evidence: what did not happen in time).
const (
	OverdueDelivery = "delivery"        // not delivered within the recipient's delivery deadline
	OverdueAck      = "acknowledgement" // delivered, no status 01 within the acknowledgement deadline
	OverdueDueDate  = "due_date"        // past DueDate without status 06
)

// OverdueHorizon is how far back the checker looks: a document accepted,
// delivered or due longer ago than this is not checked any more (the checker
// runs continuously, so it reported it long before).
const OverdueHorizon = 30 * 24 * time.Hour

// DefaultDeadlineOrgan is the flow_deadlines row that holds the defaults.
const DefaultDeadlineOrgan = "*"

// Deadlines are an organ's deadlines as a recipient.
type Deadlines struct {
	DeliveryWithin time.Duration `json:"delivery_within"`
	AckWithin      time.Duration `json:"ack_within"`
}

// SetDeadlines sets an organ's deadlines (organ DefaultDeadlineOrgan: the
// defaults for every organ without its own row).
func (l *Ledger) SetDeadlines(ctx context.Context, organ string, d Deadlines, actor string) error {
	if d.DeliveryWithin <= 0 || d.AckWithin <= 0 {
		return fmt.Errorf("ledger: deadlines of %s must be positive", organ)
	}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO flow_deadlines (organ, delivery_within, ack_within) VALUES ($1, $2, $3)
			ON CONFLICT (organ) DO UPDATE SET delivery_within = EXCLUDED.delivery_within, ack_within = EXCLUDED.ack_within`,
			organ, d.DeliveryWithin, d.AckWithin); err != nil {
			return err
		}
		// A directory change: a leaf of the evidence log, in the same transaction.
		_, err := l.AdminEventTx(ctx, tx, AdminDeadlinesChanged, actor, map[string]any{"organ": organ,
			"delivery_within": d.DeliveryWithin.String(), "ack_within": d.AckWithin.String()})
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: set deadlines %s: %w", organ, classify(err))
	}
	return nil
}

// overdueQueries find, per kind, the (document, recipient, deadline) triples
// whose deadline is at or before $1 and that were not reported yet; $2 caps
// the batch; $3 (OverdueHorizon) bounds how far back a scan looks, so that
// its cost follows recent traffic, not the whole history. Each joins the
// recipient's deadlines, or the defaults.
var overdueQueries = []struct{ kind, sql string }{
	{OverdueDelivery, `SELECT r.document_id::text, r.recipient, d.sender, d.received_at + coalesce(o.delivery_within, def.delivery_within)
		FROM deliveries r JOIN documents d ON d.id = r.document_id
		CROSS JOIN (SELECT delivery_within FROM flow_deadlines WHERE organ = '*') def
		LEFT JOIN flow_deadlines o ON o.organ = r.recipient
		LEFT JOIN business_states b ON b.document_id = r.document_id AND b.recipient = r.recipient
		WHERE r.delivered_at IS NULL AND d.received_at > $1::timestamptz - $3::interval
		AND d.received_at + coalesce(o.delivery_within, def.delivery_within) <= $1
		AND coalesce(b.state, 'pending') NOT IN ('recalled', 'updated', 'replaced')
		AND NOT EXISTS (SELECT 1 FROM overdue_marks m WHERE m.document_id = r.document_id AND m.recipient = r.recipient AND m.kind = 'delivery')
		ORDER BY r.id LIMIT $2`},
	{OverdueAck, `SELECT r.document_id::text, r.recipient, d.sender, r.delivered_at + coalesce(o.ack_within, def.ack_within)
		FROM deliveries r JOIN documents d ON d.id = r.document_id
		CROSS JOIN (SELECT ack_within FROM flow_deadlines WHERE organ = '*') def
		LEFT JOIN flow_deadlines o ON o.organ = r.recipient
		LEFT JOIN business_states b ON b.document_id = r.document_id AND b.recipient = r.recipient
		WHERE d.format = 'edxml' AND d.business_type <> 1 AND r.delivered_at > $1::timestamptz - $3::interval
		AND r.delivered_at + coalesce(o.ack_within, def.ack_within) <= $1
		AND NOT ('01' = ANY (coalesce(b.statuses, '{}')))
		AND coalesce(b.state, 'pending') NOT IN ('recalled', 'updated', 'replaced')
		AND NOT EXISTS (SELECT 1 FROM overdue_marks m WHERE m.document_id = r.document_id AND m.recipient = r.recipient AND m.kind = 'acknowledgement')
		ORDER BY r.id LIMIT $2`},
	{OverdueDueDate, `SELECT r.document_id::text, r.recipient, d.sender, d.due_at
		FROM documents d JOIN deliveries r ON r.document_id = d.id
		LEFT JOIN business_states b ON b.document_id = r.document_id AND b.recipient = r.recipient
		WHERE d.due_at <= $1 AND d.due_at > $1::timestamptz - $3::interval
		AND coalesce(b.state, 'pending') NOT IN ('completed', 'refused', 'recalled', 'updated', 'replaced')
		AND NOT EXISTS (SELECT 1 FROM overdue_marks m WHERE m.document_id = r.document_id AND m.recipient = r.recipient AND m.kind = 'due_date')
		ORDER BY d.due_at, r.id LIMIT $2`},
}

// CheckDeadlines records every deadline missed at now that was not reported
// yet: a row in overdue_marks and an `overdue` event on the document (the
// event goes to lt.events with the sender to notify), in one transaction
// per kind. A condition is reported once. It returns how many it reported.
func (l *Ledger) CheckDeadlines(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 500
	}
	now = now.UTC()
	total := 0
	for _, q := range overdueQueries {
		err := l.inTx(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, q.sql, now, limit, OverdueHorizon)
			if err != nil {
				return err
			}
			type hit struct {
				doc, recipient, sender string
				deadline               time.Time
			}
			hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (hit, error) {
				var h hit
				return h, r.Scan(&h.doc, &h.recipient, &h.sender, &h.deadline)
			})
			if err != nil {
				return err
			}
			for _, h := range hits {
				tag, err := tx.Exec(ctx, `INSERT INTO overdue_marks (document_id, recipient, kind, deadline, marked_at)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, h.doc, h.recipient, q.kind, h.deadline, now)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					continue // another checker got there first
				}
				if err := l.appendEvent(ctx, tx, h.doc, h.recipient, "overdue", "", map[string]any{
					"kind": q.kind, "deadline": h.deadline, "notify": h.sender}, now); err != nil {
					return err
				}
				total++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("ledger: check %s deadlines: %w", q.kind, err)
		}
	}
	return total, nil
}

// DeadlineSetting is one row of flow_deadlines.
type DeadlineSetting struct {
	Organ string `json:"organ"` // DefaultDeadlineOrgan for the defaults
	Deadlines
}

// DeadlineSettings lists the deadlines: the defaults first, then per organ.
func (l *Ledger) DeadlineSettings(ctx context.Context) ([]DeadlineSetting, error) {
	rows, err := l.pool.Query(ctx, `SELECT organ, delivery_within, ack_within FROM flow_deadlines
		ORDER BY organ <> '*', organ`)
	if err != nil {
		return nil, fmt.Errorf("ledger: deadlines: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadlineSetting, error) {
		var s DeadlineSetting
		return s, r.Scan(&s.Organ, &s.DeliveryWithin, &s.AckWithin)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: deadlines: %w", classify(err))
	}
	return out, nil
}
