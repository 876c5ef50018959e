package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TopicDead carries deliveries that exhausted their retries.
const TopicDead = "dead"

// OutboxMessage is one row of the outbox.
type OutboxMessage struct {
	ID      int64
	Topic   string
	Key     string
	Payload []byte
}

// OutboxBatch returns up to limit outbox rows in id order.
func (l *Ledger) OutboxBatch(ctx context.Context, limit int) ([]OutboxMessage, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, topic, key, payload::text FROM outbox ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: outbox: %w", classify(err))
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		var p string
		err := r.Scan(&m.ID, &m.Topic, &m.Key, &p)
		m.Payload = []byte(p)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: outbox: %w", classify(err))
	}
	return msgs, nil
}

// DeleteOutbox removes rows that have been published.
func (l *Ledger) DeleteOutbox(ctx context.Context, ids []int64) error {
	if _, err := l.pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY ($1)`, ids); err != nil {
		return fmt.Errorf("ledger: delete outbox: %w", classify(err))
	}
	return nil
}

// OutboxBacklog counts rows waiting to be published.
func (l *Ledger) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger: outbox backlog: %w", classify(err))
	}
	return n, nil
}

// DeliverMessage is what lt.deliver carries (keyed by recipient organ).
type DeliverMessage struct {
	DeliveryID int64  `json:"delivery_id"`
	DocumentID string `json:"document_id"`
	Recipient  string `json:"recipient"`
	Sequence   int64  `json:"sequence"`
}

// Resolver finds where a recipient organ takes its documents.
type Resolver func(ctx context.Context, code string) (Organ, error)

// Route moves the accepted deliveries of the given documents to routed: it
// assigns each its per-recipient sequence number and channel, records the
// event and queues the delivery task, in one transaction. Deliveries that are
// not in state accepted any more are left alone, so a repeat is harmless.
func (l *Ledger) Route(ctx context.Context, docIDs []string, resolve Resolver) (int, error) {
	return l.routeBatch(ctx, docIDs, resolve) // routebatch.go
}

// markDead makes a delivery dead in tx, with its "dead" event and its
// lt.dead message.
func (l *Ledger) markDead(ctx context.Context, tx pgx.Tx, id int64, doc, recp, reason string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $2, last_error = $3, next_attempt_at = NULL,
		updated_at = $4 WHERE id = $1`, id, StateDead, reason, now); err != nil {
		return err
	}
	if err := l.appendEvent(ctx, tx, doc, recp, "dead", StateDead, map[string]any{"reason": reason}, now); err != nil {
		return err
	}
	return enqueue(ctx, tx, TopicDead, recp, map[string]any{"delivery_id": id, "document_id": doc,
		"recipient": recp, "reason": reason})
}

// RequeueDue queues the retrying deliveries whose time has come, and leases
// them for lease so that a second scheduler does not queue them again.
func (l *Ledger) RequeueDue(ctx context.Context, limit int, lease time.Duration) (int, error) {
	now := l.now().UTC()
	n := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		// The state is written out so that even a generic plan can use deliveries_due.
		rows, err := tx.Query(ctx, `UPDATE deliveries SET next_attempt_at = $2 WHERE id IN (
			SELECT id FROM deliveries WHERE state = '`+StateRetrying+`' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING id, document_id::text, recipient, coalesce(seq, 0)`, now, now.Add(lease), limit)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliverMessage, error) {
			var m DeliverMessage
			return m, r.Scan(&m.DeliveryID, &m.DocumentID, &m.Recipient, &m.Sequence)
		})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := enqueue(ctx, tx, TopicDeliver, m.Recipient, m); err != nil {
				return err
			}
		}
		n = len(msgs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: requeue due: %w", err)
	}
	return n, nil
}

// RequeueStuck re-announces work whose Kafka message may have been lost: a
// document still accepted, or a delivery still routed, after olderThan is
// queued again; a delivery left delivering by a crashed worker becomes
// retrying, due now (only a worker of an earlier version, which claimed
// deliveries before its attempts, left any: Attempts writes nothing).
// Repeats are harmless: every stage checks the state.
func (l *Ledger) RequeueStuck(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	now := l.now().UTC()
	cutoff := now.Add(-olderThan)
	n := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE deliveries SET updated_at = $2 WHERE id IN (
			SELECT id FROM deliveries WHERE state IN ($3, $4, $5) AND updated_at < $1
			AND delivered_at IS NULL -- true in these states; it lets the scan use deliveries_open
			ORDER BY updated_at LIMIT $6 FOR UPDATE SKIP LOCKED)
			RETURNING id, document_id::text, recipient, state, coalesce(seq, 0)`,
			cutoff, now, StateAccepted, StateRouted, StateDelivering, limit)
		if err != nil {
			return err
		}
		type stuck struct {
			m     DeliverMessage
			state string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stuck, error) {
			var s stuck
			return s, r.Scan(&s.m.DeliveryID, &s.m.DocumentID, &s.m.Recipient, &s.state, &s.m.Sequence)
		})
		if err != nil {
			return err
		}
		routeAgain := map[string]bool{}
		for _, s := range list {
			switch s.state {
			case StateAccepted:
				if !routeAgain[s.m.DocumentID] {
					routeAgain[s.m.DocumentID] = true
					if err := enqueue(ctx, tx, TopicRoute, s.m.DocumentID, RouteMessage{DocumentID: s.m.DocumentID}); err != nil {
						return err
					}
				}
			case StateRouted:
				if err := enqueue(ctx, tx, TopicDeliver, s.m.Recipient, s.m); err != nil {
					return err
				}
			case StateDelivering:
				if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $2, next_attempt_at = $3,
					last_error = 'attempt interrupted' WHERE id = $1`, s.m.DeliveryID, StateRetrying, now); err != nil {
					return err
				}
				if err := l.appendEvent(ctx, tx, s.m.DocumentID, s.m.Recipient, "retrying", StateRetrying,
					map[string]any{"error": "attempt interrupted"}, now); err != nil {
					return err
				}
			}
		}
		n = len(list)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: requeue stuck: %w", err)
	}
	return n, nil
}

// DecodeDeliver parses an lt.deliver payload.
func DecodeDeliver(b []byte) (DeliverMessage, error) {
	var m DeliverMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("ledger: deliver message: %w", err)
	}
	return m, nil
}

// DecodeRoute parses an lt.route payload.
func DecodeRoute(b []byte) (RouteMessage, error) {
	var m RouteMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("ledger: route message: %w", err)
	}
	return m, nil
}

// TopicSecurity carries rejected submissions and authentication failures.
const TopicSecurity = "security"

// SecurityEvent queues a security event for lt.security. It touches no
// document, delivery or event row: a rejection changes nothing else.
func (l *Ledger) SecurityEvent(ctx context.Context, key string, payload any) error {
	if err := enqueue(ctx, l.pool, TopicSecurity, key, payload); err != nil {
		return fmt.Errorf("ledger: security event: %w", classify(err))
	}
	return nil
}
