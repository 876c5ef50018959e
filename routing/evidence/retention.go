package evidence

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/ledger"
)

// LockRetention is held by the one running Retention.
const LockRetention = 0x4c54_4556_5254 // "LTEVRT"

// Purge empties the stored bytes of documents received before cutoff whose
// every delivery has ended (delivered, acknowledged or dead), at most limit
// of them, and records the purge as an admin event in the same transaction.
// The digest, size, metadata, events, leaves and receipts stay: the log never
// shrinks, and every receipt and proof still verifies (the bundle says the
// bytes were purged; the digest is still proven by the accepted leaf). A
// purged document is one with an empty body and a non-zero size, which is
// what Audit accepts. It returns the purged document ids.
func Purge(ctx context.Context, pool *pgxpool.Pool, led *ledger.Ledger, cutoff time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 1000
	}
	var ids []string
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("evidence: purge: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	// A large body (routing/blob) is detached from the row and its blob
	// dropped below, once no other document refers to the same bytes.
	rows, err := tx.Query(ctx, `UPDATE documents SET body = ''::bytea, body_blob = NULL WHERE id IN (
		SELECT d.id FROM documents d WHERE d.received_at < $1 AND d.size > 0
		  AND (octet_length(d.body) > 0 OR d.body_blob IS NOT NULL)
		  AND NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.document_id = d.id
		                  AND r.state NOT IN ('delivered', 'acknowledged', 'dead'))
		ORDER BY d.received_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id::text`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("evidence: purge: %w", err)
	}
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("evidence: purge: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `WITH gone AS (
		DELETE FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.body_blob = b.sha256)
		  AND b.sha256 IN (SELECT sha256 FROM documents WHERE id = ANY($1::uuid[]))
		RETURNING b.oid)
		SELECT lo_unlink(oid) FROM gone`, ids); err != nil {
		return nil, fmt.Errorf("evidence: purge: blobs: %w", err)
	}
	if _, err := led.AdminEventTx(ctx, tx, ledger.AdminRetentionPurge, "hub retention",
		map[string]any{"documents": ids, "received_before": cutoff.UTC()}); err != nil {
		return nil, fmt.Errorf("evidence: purge: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("evidence: purge: %w", err)
	}
	return ids, nil
}

// RetentionConfig tunes RunRetention.
type RetentionConfig struct {
	After     time.Duration // purge bytes of documents older than this; required (> 0)
	Every     time.Duration // default 1h
	LockRetry time.Duration // default 2s
	Now       func() time.Time
	Logger    *slog.Logger
}

// RunRetention purges old document bytes every cfg.Every while this process
// holds LockRetention, until ctx ends.
func RunRetention(ctx context.Context, pool *pgxpool.Pool, cfg RetentionConfig) error {
	if cfg.After <= 0 {
		return fmt.Errorf("evidence: retention: After must be positive")
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	led := ledger.New(pool, ledger.Config{Now: cfg.Now, Logger: cfg.Logger})
	return led.RunAsLeader(ctx, LockRetention, cfg.LockRetry, func(ctx context.Context) error {
		for {
			ids, err := Purge(ctx, pool, led, cfg.Now().Add(-cfg.After), 1000)
			if err != nil && ctx.Err() == nil {
				cfg.Logger.WarnContext(ctx, "retention purge failed", slog.Any("error", err))
			} else if len(ids) > 0 {
				cfg.Logger.InfoContext(ctx, "retention purged document bytes", slog.Int("documents", len(ids)))
				continue
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(cfg.Every):
			}
		}
	})
}
