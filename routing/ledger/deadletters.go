package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotDead: only a dead delivery can be replayed.
var ErrNotDead = errors.New("ledger: delivery is not dead")

// DeliveryRow is one delivery as operators see it.
type DeliveryRow struct {
	ID          int64      `json:"id"`
	DocumentID  string     `json:"document_id"`
	Sender      string     `json:"sender"`
	DocRef      string     `json:"doc_ref"`
	Recipient   string     `json:"recipient"`
	State       string     `json:"state"`
	Channel     string     `json:"channel"`
	Sequence    *int64     `json:"sequence,omitempty"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// DeliveryFilter selects deliveries for the operator API. Zero fields do not
// filter; From and To bound updated_at (for dead letters: the time of death).
type DeliveryFilter struct {
	State    string
	Organ    string // recipient
	From, To time.Time
	AfterID  int64
	Limit    int // default 100, at most 1000
}

const deliveryRowCols = `r.id, r.document_id::text, d.sender, d.doc_ref, r.recipient, r.state, r.channel, r.seq,
	r.attempts, r.last_error, r.next_attempt_at, r.updated_at, r.delivered_at`

func scanDeliveryRow(row pgx.Row) (DeliveryRow, error) {
	var x DeliveryRow
	err := row.Scan(&x.ID, &x.DocumentID, &x.Sender, &x.DocRef, &x.Recipient, &x.State, &x.Channel, &x.Sequence,
		&x.Attempts, &x.LastError, &x.NextAttempt, &x.UpdatedAt, &x.DeliveredAt)
	return x, err
}

// ListDeliveries returns deliveries in id order.
func (l *Ledger) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]DeliveryRow, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := l.pool.Query(ctx, `SELECT `+deliveryRowCols+`
		FROM deliveries r JOIN documents d ON d.id = r.document_id
		WHERE ($1 = '' OR r.state = $1) AND ($2 = '' OR r.recipient = $2)
		  AND ($3::timestamptz IS NULL OR r.updated_at >= $3) AND ($4::timestamptz IS NULL OR r.updated_at < $4)
		  AND r.id > $5
		ORDER BY r.id LIMIT $6`, f.State, f.Organ, nullTime(f.From), nullTime(f.To), f.AfterID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: list deliveries: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryRow, error) { return scanDeliveryRow(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: list deliveries: %w", classify(err))
	}
	return out, nil
}

// DeliveryByID returns one delivery and the events of its (document,
// recipient) pair.
func (l *Ledger) DeliveryByID(ctx context.Context, id int64) (DeliveryRow, []Event, error) {
	x, err := scanDeliveryRow(l.pool.QueryRow(ctx, `SELECT `+deliveryRowCols+`
		FROM deliveries r JOIN documents d ON d.id = r.document_id WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryRow{}, nil, ErrNotFound
	}
	if err != nil {
		return DeliveryRow{}, nil, fmt.Errorf("ledger: delivery: %w", classify(err))
	}
	rows, err := l.pool.Query(ctx, `SELECT id, document_id::text, recipient, kind, state, detail::text, at
		FROM events WHERE document_id = $1 AND recipient = $2 ORDER BY id`, x.DocumentID, x.Recipient)
	if err != nil {
		return DeliveryRow{}, nil, fmt.Errorf("ledger: delivery events: %w", classify(err))
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var d string
		err := r.Scan(&e.ID, &e.DocumentID, &e.Recipient, &e.Kind, &e.State, &d, &e.At)
		e.Detail = []byte(d)
		return e, err
	})
	if err != nil {
		return DeliveryRow{}, nil, fmt.Errorf("ledger: delivery events: %w", classify(err))
	}
	return x, evs, nil
}

// Replay gives a dead delivery a new life: state routed, attempts reset, a
// new retry window, a "replayed" event naming the operator and the reason it
// died, and a new task on lt.deliver. A delivery that is not dead gives
// ErrNotDead and changes nothing.
func (l *Ledger) Replay(ctx context.Context, id int64, operator string) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		n, err := l.replay(ctx, tx, []int64{id}, operator)
		if err != nil {
			return err
		}
		if n == 0 {
			var state string
			err := tx.QueryRow(ctx, `SELECT state FROM deliveries WHERE id = $1`, id).Scan(&state)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w (state %s)", ErrNotDead, state)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotDead) {
		return fmt.Errorf("ledger: replay: %w", err)
	}
	return err
}

// ReplayDead replays, in one transaction, the dead deliveries to organ that
// died in [from, to) (zero times: unbounded), at most limit (default and
// cap 10,000). It returns how many were replayed.
func (l *Ledger) ReplayDead(ctx context.Context, organ string, from, to time.Time, operator string, limit int) (int, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	n := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE state = '`+StateDead+`' AND ($1 = '' OR recipient = $1)
			AND ($2::timestamptz IS NULL OR updated_at >= $2) AND ($3::timestamptz IS NULL OR updated_at < $3)
			ORDER BY id LIMIT $4 FOR UPDATE`, organ, nullTime(from), nullTime(to), limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		n, err = l.replay(ctx, tx, ids, operator)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: replay dead: %w", err)
	}
	return n, nil
}

func (l *Ledger) replay(ctx context.Context, tx pgx.Tx, ids []int64, operator string) (int, error) {
	now := l.now().UTC()
	rows, err := tx.Query(ctx, `WITH old AS (
			SELECT id, last_error, attempts FROM deliveries WHERE id = ANY ($1) AND state = $2 FOR UPDATE)
		UPDATE deliveries r SET state = $3, attempts = 0, window_start = $4, next_attempt_at = NULL,
			last_error = '', updated_at = $4
		FROM old WHERE r.id = old.id
		RETURNING r.id, r.document_id::text, r.recipient, coalesce(r.seq, 0), old.last_error, old.attempts`,
		ids, StateDead, StateRouted, now)
	if err != nil {
		return 0, err
	}
	type rep struct {
		m        DeliverMessage
		reason   string
		attempts int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rep, error) {
		var x rep
		return x, r.Scan(&x.m.DeliveryID, &x.m.DocumentID, &x.m.Recipient, &x.m.Sequence, &x.reason, &x.attempts)
	})
	if err != nil {
		return 0, err
	}
	for _, x := range list {
		if err := l.appendEvent(ctx, tx, x.m.DocumentID, x.m.Recipient, "replayed", StateRouted,
			map[string]any{"operator": operator, "dead_reason": x.reason, "attempts_before": x.attempts}, now); err != nil {
			return 0, err
		}
		if err := enqueue(ctx, tx, TopicDeliver, x.m.Recipient, x.m); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}
