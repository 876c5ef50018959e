package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// CheckpointerConfig tunes a Checkpointer.
type CheckpointerConfig struct {
	// SignerKey is the hub's note signer key ("PRIVATE+KEY+<name>+..."), from
	// GenerateKey or the operator's key store. Its name is the log's origin.
	// Required.
	SignerKey string
	Interval  time.Duration // at most one checkpoint per Interval; default 1s
	LockRetry time.Duration // how often a follower tries for the leader lock; default 2s
	Now       func() time.Time
	Logger    *slog.Logger
}

// Checkpointer signs a checkpoint whenever the tree has grown, at most once
// per Interval. Signing costs one Ed25519 signature per checkpoint, whatever
// the number of events it covers.
type Checkpointer struct {
	pool   *pgxpool.Pool
	cfg    CheckpointerConfig
	signer note.Signer

	mu         sync.Mutex // guards lastSigned and serialises SignIfDue
	lastSigned time.Time  // Config.Now of this Checkpointer's last signature
}

// NewCheckpointer returns a Checkpointer over pool. Nothing runs before Run.
func NewCheckpointer(pool *pgxpool.Pool, cfg CheckpointerConfig) (*Checkpointer, error) {
	if cfg.SignerKey == "" {
		return nil, errors.New("evidence: checkpointer: no signer key")
	}
	signer, err := note.NewSigner(cfg.SignerKey)
	if err != nil {
		return nil, fmt.Errorf("evidence: checkpointer: signer key: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
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
	return &Checkpointer{pool: pool, cfg: cfg, signer: signer}, nil
}

// Origin is the log's name, the first line of every checkpoint.
func (c *Checkpointer) Origin() string { return c.signer.Name() }

// Run signs checkpoints until ctx ends, while this process holds the
// checkpointer's advisory lock (LockCheckpointer). It returns nil when ctx
// ends.
func (c *Checkpointer) Run(ctx context.Context) error {
	lead := ledger.New(c.pool, ledger.Config{Logger: c.cfg.Logger})
	return lead.RunAsLeader(ctx, LockCheckpointer, c.cfg.LockRetry, func(ctx context.Context) error {
		for {
			// After a signature, the next one is due one Interval after
			// this one started, so that under load checkpoints are Interval
			// apart; otherwise look again every Interval/10.
			wait := c.cfg.Interval / 10
			start := time.Now()
			signed, err := c.SignIfDue(ctx)
			if err != nil && ctx.Err() == nil {
				c.cfg.Logger.WarnContext(ctx, "evidence checkpoint failed", slog.Any("error", err))
			}
			if signed { // the next one is due Interval after this one started
				wait = max(c.cfg.Interval-time.Since(start), 0)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
}

// SignIfDue signs and stores a checkpoint of the current tree if it is larger
// than the latest checkpoint and that one is at least Interval old (by
// Config.Now). It reports whether it signed.
func (c *Checkpointer) SignIfDue(ctx context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now() // before the queries, so that Run's schedule finds it due
	size, root, err := treeHead(ctx, c.pool)
	if err != nil {
		return false, err
	}
	var lastSize int64
	var lastAt time.Time
	err = c.pool.QueryRow(ctx, `SELECT size, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&lastSize, &lastAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("evidence: latest checkpoint: %w", err)
	}
	if size == 0 || size <= uint64(lastSize) {
		return false, nil // nothing new
	}
	// Too soon after the latest stored checkpoint, by the clock (a stored
	// time in the future, from another process's clock, does not count), or
	// after this Checkpointer's own last one (monotonic with the real clock).
	if since := now.Sub(lastAt); !lastAt.IsZero() && since >= 0 && since < c.cfg.Interval {
		return false, nil
	}
	if !c.lastSigned.IsZero() && now.Sub(c.lastSigned) < c.cfg.Interval {
		return false, nil
	}
	cp := logverify.Checkpoint{Origin: c.signer.Name(), Size: size, Root: root, Time: now.UTC()}
	signed, err := note.Sign(&note.Note{Text: cp.Body()}, c.signer)
	if err != nil {
		return false, fmt.Errorf("evidence: note.Sign: %w", err)
	}
	tag, err := c.pool.Exec(ctx, `INSERT INTO log_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size) DO NOTHING`, int64(size), root, string(signed), now.UTC())
	if err != nil {
		return false, fmt.Errorf("evidence: store checkpoint: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // another process signed this size
	}
	c.lastSigned = now
	return true, nil
}
