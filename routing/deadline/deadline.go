// Package deadline is the stage that produces negative evidence: a leader-
// elected checker (PostgreSQL advisory lock) that, on every tick of an
// injected clock, asks the ledger for the deliveries that missed their
// recipient's delivery deadline, the documents not acknowledged (status 01)
// within the acknowledgement deadline, and those past their DueDate without
// status 06. Each is recorded once as an `overdue` event on the document,
// which is published on lt.events (from the evidence log, like every event)
// for the sender to act on.
package deadline

import (
	"context"
	"log/slog"
	"time"

	"lienthong/routing/ledger"
)

// Ledger is what the checker needs.
type Ledger interface {
	CheckDeadlines(ctx context.Context, now time.Time, limit int) (int, error)
	RunAsLeader(ctx context.Context, key int64, retry time.Duration, fn func(ctx context.Context) error) error
}

// Config tunes a Checker.
type Config struct {
	Now    func() time.Time // the clock deadlines are measured against; nil: time.Now
	Every  time.Duration    // how often to check; default 30s
	Batch  int              // most reports per kind and check; default 500
	Logger *slog.Logger
}

// Checker reports missed deadlines.
type Checker struct {
	l   Ledger
	cfg Config
}

// New returns a checker; nothing starts before Run.
func New(l Ledger, cfg Config) *Checker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Every <= 0 {
		cfg.Every = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{l: l, cfg: cfg}
}

// CheckOnce checks every deadline against the clock once.
func (c *Checker) CheckOnce(ctx context.Context) (int, error) {
	n, err := c.l.CheckDeadlines(ctx, c.cfg.Now(), c.cfg.Batch)
	if n > 0 {
		c.cfg.Logger.InfoContext(ctx, "deadline: overdue reported", slog.Int("count", n))
	}
	return n, err
}

// Run checks on every tick while this process is the leader, until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	return c.l.RunAsLeader(ctx, ledger.LockDeadlines, time.Second, func(ctx context.Context) error {
		t := time.NewTicker(c.cfg.Every)
		defer t.Stop()
		for {
			if _, err := c.CheckOnce(ctx); err != nil && ctx.Err() == nil {
				c.cfg.Logger.WarnContext(ctx, "deadline: check failed", slog.Any("error", err))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}
