package ledger

import (
	"context"
	"fmt"
	"time"
)

// Lock keys for single-leader tasks.
const (
	LockRelay = 0x4c54_5245_4c41 // "LTRELA"
)

// RunAsLeader runs fn while this process holds the PostgreSQL advisory lock
// key, on a dedicated connection. Other processes wait and take over when the
// holder dies (its session ends and PostgreSQL releases the lock). fn's context
// is cancelled when the connection is lost. RunAsLeader returns when ctx ends.
func (l *Ledger) RunAsLeader(ctx context.Context, key int64, retry time.Duration, fn func(ctx context.Context) error) error {
	for ctx.Err() == nil {
		if err := l.leadOnce(ctx, key, retry, fn); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "leader task ended", "lock", key, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
	return nil
}

func (l *Ledger) leadOnce(ctx context.Context, key int64, retry time.Duration, fn func(ctx context.Context) error) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", classify(err))
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // discard a broken connection
		return fmt.Errorf("try lock: %w", classify(err))
	}
	if !got {
		return nil
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watching := make(chan struct{})
	go func() { // watch the session that holds the lock
		defer close(watching)
		t := time.NewTicker(retry)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(lctx, retry)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil && lctx.Err() == nil {
					cancel()
					return
				}
			}
		}
	}()
	err = fn(lctx)
	cancel()
	// A pgx connection is not safe for concurrent use: the watcher may be in
	// a Ping right now, so wait for it before closing.
	<-watching
	// Close rather than unlock: a broken or busy session must not keep the lock.
	conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // lock is released with the session
	return err
}
