package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LockScheduler is the advisory-lock key of the retry scheduler: one
// scheduler leads at a time, the others stand by.
const LockScheduler = 0x4c54_5343_4844 // "LTSCHD"

// Limits bound the retries of deliveries to one organ (columns of organs,
// migration 0003): after MaxAttempts attempts, or MaxAge after the retry
// window opened (acceptance, or the last replay), a delivery is dead.
type Limits struct {
	MaxAttempts int           `json:"max_attempts"`
	MaxAge      time.Duration `json:"max_age"`
	// PushPipeline is Organ.PushPipeline: how many pushes may be on the
	// wire to the organ's endpoint at once (OrganLimits: 0 means one at a
	// time). SetLimits sets it when it is 1…MaxPushPipeline and keeps it
	// when it is 0. RetryWindow leaves it 0.
	PushPipeline int `json:"push_pipeline"`
}

// DefaultLimits are the column defaults of migration 0003.
var DefaultLimits = Limits{MaxAttempts: 12, MaxAge: 72 * time.Hour}

// ErrBadLimits: limits out of range.
var ErrBadLimits = errors.New("ledger: max_attempts must be 1..1000, max_age at least 1s and push_pipeline 0..64")

// SetLimits changes an organ's retry limits, and its push pipeline unless
// lim.PushPipeline is 0 (ErrNotFound for an unknown organ).
func (l *Ledger) SetLimits(ctx context.Context, organ string, lim Limits, actor string) error {
	if lim.MaxAttempts < 1 || lim.MaxAttempts > 1000 || lim.MaxAge < time.Second ||
		lim.PushPipeline < 0 || lim.PushPipeline > MaxPushPipeline {
		return ErrBadLimits
	}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var window int16
		err := tx.QueryRow(ctx, `UPDATE organs SET max_attempts = $2, max_age_seconds = $3,
			push_pipeline = coalesce(nullif($4::smallint, 0), push_pipeline), updated_at = now()
			WHERE code = $1 RETURNING push_pipeline`, organ, lim.MaxAttempts, int64(lim.MaxAge/time.Second),
			lim.PushPipeline).Scan(&window)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		// A directory change: a leaf of the evidence log, in the same transaction.
		_, err = l.AdminEventTx(ctx, tx, AdminLimitsChanged, actor, map[string]any{"organ": organ,
			"max_attempts": lim.MaxAttempts, "max_age_seconds": int64(lim.MaxAge / time.Second), "push_pipeline": window})
		return err
	})
	l.dir.invalidate()
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("ledger: set limits of %s: %w", organ, classify(err))
	}
	return nil
}

// RetryWindow returns the limits that apply to a delivery and the start of
// its retry window.
func (l *Ledger) RetryWindow(ctx context.Context, deliveryID int64) (Limits, time.Time, error) {
	var lim Limits
	var secs int64
	var start time.Time
	err := l.pool.QueryRow(ctx, `SELECT o.max_attempts, o.max_age_seconds, coalesce(r.window_start, d.received_at)
		FROM deliveries r JOIN documents d ON d.id = r.document_id JOIN organs o ON o.code = r.recipient
		WHERE r.id = $1`, deliveryID).Scan(&lim.MaxAttempts, &secs, &start)
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultLimits, time.Time{}, ErrNotFound
	}
	if err != nil {
		return Limits{}, time.Time{}, fmt.Errorf("ledger: retry window: %w", classify(err))
	}
	lim.MaxAge = time.Duration(secs) * time.Second
	return lim, start, nil
}

// Defer postpones a delivery that is due (routed or retrying) to until
// without making an attempt: the circuit of its endpoint is open, or its
// recipient's lane is full. A routed delivery becomes retrying, with an
// event; a retrying one only gets its new time. ok is false when the delivery
// was not due any more.
func (l *Ledger) Defer(ctx context.Context, deliveryID int64, until time.Time, reason string) (ok bool, err error) {
	now := l.now().UTC()
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		var state, doc, recp string
		err := tx.QueryRow(ctx, `SELECT state, document_id::text, recipient FROM deliveries WHERE id = $1 FOR UPDATE`,
			deliveryID).Scan(&state, &doc, &recp)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if state != StateRouted && state != StateRetrying {
			return nil
		}
		ok = true
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $2, next_attempt_at = $3, updated_at = $4,
			last_error = CASE WHEN $5 <> '' THEN $5 ELSE last_error END WHERE id = $1`,
			deliveryID, StateRetrying, until.UTC(), now, reason); err != nil {
			return err
		}
		if state == StateRetrying {
			return nil
		}
		return l.appendEvent(ctx, tx, doc, recp, "deferred", StateRetrying,
			map[string]any{"reason": reason, "next_attempt_at": until.UTC()}, now)
	})
	if err != nil {
		return false, fmt.Errorf("ledger: defer: %w", err)
	}
	return ok, nil
}

// DeadNow records that a due delivery is dead without a new attempt (its
// retry window has closed while it waited).
func (l *Ledger) DeadNow(ctx context.Context, deliveryID int64, reason string) error {
	now := l.now().UTC()
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var state, doc, recp string
		err := tx.QueryRow(ctx, `SELECT state, document_id::text, recipient FROM deliveries WHERE id = $1 FOR UPDATE`,
			deliveryID).Scan(&state, &doc, &recp)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if state != StateRouted && state != StateRetrying && state != StateDelivering {
			return nil
		}
		return l.markDead(ctx, tx, deliveryID, doc, recp, reason, now)
	})
	if err != nil {
		return fmt.Errorf("ledger: dead: %w", err)
	}
	return nil
}

// OrganLimits returns an organ's retry limits.
func (l *Ledger) OrganLimits(ctx context.Context, organ string) (Limits, error) {
	var lim Limits
	var secs int64
	var window int16
	err := l.pool.QueryRow(ctx, `SELECT max_attempts, max_age_seconds, push_pipeline FROM organs WHERE code = $1`, organ).
		Scan(&lim.MaxAttempts, &secs, &window)
	if errors.Is(err, pgx.ErrNoRows) {
		return Limits{}, ErrNotFound
	}
	if err != nil {
		return Limits{}, fmt.Errorf("ledger: limits of %s: %w", organ, classify(err))
	}
	lim.MaxAge = time.Duration(secs) * time.Second
	if window > 1 {
		lim.PushPipeline = int(window)
	}
	return lim, nil
}

// Orphans lists deliveries that should have moved but have not for
// olderThan: routed (or replayed) without an attempt since, or retrying past
// their due time. Their tasks were lost on the way (for instance a broker
// that lost the tail of a partition, so the consumer waits beyond its end);
// the delivery stage adopts them straight from the ledger. A retrying
// delivery that a worker deferred recently (open circuit: updated_at moves,
// no event) is not an orphan.
func (l *Ledger) Orphans(ctx context.Context, olderThan time.Duration, limit int) ([]DeliverMessage, error) {
	cutoff := l.now().UTC().Add(-olderThan)
	rows, err := l.pool.Query(ctx, `SELECT r.id, r.document_id::text, r.recipient, coalesce(r.seq, 0)
		FROM deliveries r
		JOIN LATERAL (SELECT at, detail FROM events e WHERE e.document_id = r.document_id AND e.recipient = r.recipient
			ORDER BY id DESC LIMIT 1) last ON true
		WHERE r.state IN ($1, $2) AND r.delivered_at IS NULL -- true in these states: lets the scan use deliveries_open
		  AND coalesce((last.detail->>'next_attempt_at')::timestamptz, last.at) < $3
		  AND (r.state = $1 OR r.updated_at < $3)
		ORDER BY r.recipient, r.seq LIMIT $4`, StateRouted, StateRetrying, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: orphans: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliverMessage, error) {
		var m DeliverMessage
		return m, r.Scan(&m.DeliveryID, &m.DocumentID, &m.Recipient, &m.Sequence)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: orphans: %w", classify(err))
	}
	return out, nil
}
