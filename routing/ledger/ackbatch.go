package ledger

import (
	"context"
	"fmt"

	"github.com/google/uuid"
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
	state := make(map[string]string, len(uids))
	// One statement, so one round trip and an implicit transaction: lock the
	// recipient's rows of these documents in document order (two
	// acknowledgements of overlapping pages never deadlock), acknowledge the
	// delivered ones and append their events in the order of ids. The locked
	// rows' states (as of the lock) tell the outcome of each.
	rows, err := l.pool.Query(ctx, `WITH l AS (
			SELECT document_id, state FROM deliveries WHERE recipient = $1 AND document_id = ANY ($2)
			ORDER BY document_id FOR UPDATE),
		a AS (UPDATE deliveries r SET state = $4, acknowledged_at = $3, updated_at = $3
			FROM l WHERE r.recipient = $1 AND r.document_id = l.document_id AND l.state = $5
			RETURNING r.document_id),
		e AS (INSERT INTO events (document_id, recipient, kind, state, detail, at)
			SELECT u.d, $1, 'acknowledged', $4, '{}', $3
			FROM unnest($2::uuid[]) WITH ORDINALITY AS u(d, o) JOIN a ON a.document_id = u.d ORDER BY u.o)
		SELECT document_id::text, state FROM l`, replanned, recipient, uids, now, StateAcknowledged, StateDelivered)
	if err == nil {
		for rows.Next() {
			var id, st string
			if err = rows.Scan(&id, &st); err != nil {
				break
			}
			state[id] = st
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: ack: %w", classify(err))
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
