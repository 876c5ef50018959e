package ledger

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MaxAckBatch bounds the documents of one AckMany call.
const MaxAckBatch = 1000

// Outcomes of one acknowledgement in AckMany.
const (
	AckDone     = "acknowledged"         // acknowledged now
	AckAlready  = "already_acknowledged" // acknowledged before; nothing changed
	AckNotFound = "not_found"            // no delivered document with this id for the recipient
)

// AckResult is the outcome of acknowledging one document.
type AckResult struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
}

// AckMany acknowledges, for recipient, the delivered documents ids in one
// transaction (a pull client confirms a whole inbox page at once): each
// delivered one becomes acknowledged with its event, exactly as Ack does;
// one acknowledged before is reported AckAlready; an unknown id, a malformed
// one or one not yet delivered to recipient is AckNotFound and changes
// nothing. Results are in the order of ids; a repeated id is answered once
// per occurrence but acknowledged once.
func (l *Ledger) AckMany(ctx context.Context, recipient string, ids []string) ([]AckResult, error) {
	if len(ids) > MaxAckBatch {
		return nil, fmt.Errorf("ledger: ack: %d ids, at most %d", len(ids), MaxAckBatch)
	}
	out := make([]AckResult, len(ids))
	var uids []uuid.UUID
	asked := map[uuid.UUID]bool{}
	for i, id := range ids {
		out[i] = AckResult{ID: id, Outcome: AckNotFound}
		if u, err := uuid.Parse(id); err == nil && !asked[u] {
			asked[u] = true
			uids = append(uids, u)
		}
	}
	if len(uids) == 0 {
		return out, nil
	}
	now := l.now().UTC()
	state := map[string]string{}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		clear(state)
		rows, err := tx.Query(ctx, `SELECT document_id::text, state FROM deliveries
			WHERE recipient = $1 AND document_id = ANY($2) ORDER BY document_id FOR UPDATE`, recipient, uids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				return err
			}
			state[id] = st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var ack []uuid.UUID
		var evs []newEvent
		for _, u := range uids {
			if state[u.String()] == StateDelivered {
				ack = append(ack, u)
				evs = append(evs, newEvent{doc: u.String(), recp: recipient, kind: "acknowledged", state: StateAcknowledged})
			}
		}
		if len(ack) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $3, acknowledged_at = $4, updated_at = $4
			WHERE recipient = $1 AND document_id = ANY($2)`, recipient, ack, StateAcknowledged, now); err != nil {
			return err
		}
		return appendEvents(ctx, tx, evs, now)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: ack: %w", err)
	}
	for i := range out {
		u, err := uuid.Parse(out[i].ID)
		if err != nil {
			continue
		}
		switch state[u.String()] {
		case StateDelivered:
			out[i].Outcome = AckDone
		case StateAcknowledged:
			out[i].Outcome = AckAlready
		}
	}
	// A repeated id was acknowledged once: its later occurrences say so.
	seen := map[string]bool{}
	for i := range out {
		if out[i].Outcome == AckDone {
			if seen[out[i].ID] {
				out[i].Outcome = AckAlready
			}
			seen[out[i].ID] = true
		}
	}
	return out, nil
}
