package ledger

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// assignSequences gives each delivery of a new document the next sequence
// number of its recipient, in the accept transaction. The recipient's counter
// row stays locked until the transaction commits, so per recipient the
// sequence follows the order of acceptance (commit order). Recipients are
// locked in code order so that two accepts never deadlock.
func assignSequences(ctx context.Context, tx pgx.Tx, docID string, recipients []string) error {
	rs := slices.Clone(recipients)
	slices.Sort(rs)
	for _, r := range slices.Compact(rs) {
		var seq int64
		if err := tx.QueryRow(ctx, `INSERT INTO recipient_sequences (recipient, last_seq) VALUES ($1, 1)
			ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_sequences.last_seq + 1
			RETURNING last_seq`, r).Scan(&seq); err != nil {
			return fmt.Errorf("sequence of %s: %w", r, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET seq = $3 WHERE document_id = $1::uuid AND recipient = $2`,
			docID, r, seq); err != nil {
			return fmt.Errorf("sequence of %s: %w", r, err)
		}
	}
	return nil
}

// Predecessor is a delivery of a recipient with a lower sequence number that
// has not had its first attempt yet.
type Predecessor struct {
	DeliverMessage
	State string // accepted or routed
}

// Predecessors lists, in sequence order, the deliveries to recipient with a
// sequence below seq that still wait for their first attempt (accepted or
// routed). The delivery stage brings them forward so that first attempts go
// in acceptance order even when Kafka hands the tasks over out of order.
func (l *Ledger) Predecessors(ctx context.Context, recipient string, seq int64, limit int) ([]Predecessor, error) {
	// The states are written out, not parameters, so that even a generic
	// plan of the prepared statement can use deliveries_waiting_seq.
	rows, err := l.pool.Query(ctx, `SELECT id, document_id::text, recipient, seq, state FROM deliveries
		WHERE recipient = $1 AND seq < $2 AND state IN ('`+StateAccepted+`', '`+StateRouted+`') ORDER BY seq LIMIT $3`,
		recipient, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: predecessors: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Predecessor, error) {
		var p Predecessor
		return p, r.Scan(&p.DeliveryID, &p.DocumentID, &p.Recipient, &p.Sequence, &p.State)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: predecessors: %w", classify(err))
	}
	return out, nil
}
