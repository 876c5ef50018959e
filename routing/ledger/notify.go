package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// commitSignal tells the outbox relay of this process that a transaction has
// committed and may have written outbox rows, so that it publishes them at
// once instead of at its next poll. Signals coalesce: one pending signal (the
// channel holds one) stands for any number of commits. Relays in other
// processes still poll.
type commitSignal chan struct{}

// committed records a commit; it never blocks.
func (s commitSignal) committed() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// Commits returns a channel that receives a value after one or more
// transactions of this Ledger committed (each may have written outbox rows).
// It is meant for one reader, the outbox relay: a value taken by one reader is
// not seen by another.
func (l *Ledger) Commits() <-chan struct{} { return l.commits }

// OutboxNext returns up to limit outbox rows in id order, leaving out the
// rows whose id skip holds (rows the relay is publishing or deleting). It reads
// limit+len(skip) rows and drops the skipped ones: rows committed late with a
// lower id than rows in skip are still found, as with OutboxBatch.
func (l *Ledger) OutboxNext(ctx context.Context, limit int, skip map[int64]struct{}) ([]OutboxMessage, error) {
	if len(skip) == 0 {
		return l.OutboxBatch(ctx, limit)
	}
	rows, err := l.OutboxBatch(ctx, limit+len(skip))
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, m := range rows {
		if _, ok := skip[m.ID]; !ok && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

// DeleteOutboxPublished removes rows that the broker has acknowledged. It
// commits without waiting for the WAL flush (synchronous_commit off, for this
// transaction only): a delete lost in a crash only makes the relay publish
// the rows once more, which every consumer takes as a repeat. It does not
// signal Commits.
func (l *Ledger) DeleteOutboxPublished(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		b.Queue(`DELETE FROM outbox WHERE id = ANY ($1)`, ids)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("ledger: delete outbox: %w", classify(err))
	}
	return nil
}
