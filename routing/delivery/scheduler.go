package delivery

import (
	"context"
	"log/slog"
	"time"

	"lienthong/routing/ledger"
)

// Scheduler re-queues due retries and recovers stuck work. It is a
// single-leader task: of all the schedulers sharing a database, the one that
// holds the PostgreSQL advisory lock ledger.LockScheduler works and the others
// stand by; when the leader dies its session ends, the lock is released and
// another takes over. (Two leaders at once would still be harmless: the ledger
// leases what it hands out.)
type Scheduler struct {
	L          *ledger.Ledger
	Every      time.Duration // retry poll; default 500ms
	StuckAfter time.Duration // default 2m
	Logger     *slog.Logger
	OnLead     func() // optional: called when this scheduler becomes leader
}

// Run leads whenever it holds the lock, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	return s.L.RunAsLeader(ctx, ledger.LockScheduler, time.Second, s.lead)
}

func (s *Scheduler) lead(ctx context.Context) error {
	every, stuck := s.Every, s.StuckAfter
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	if stuck <= 0 {
		stuck = 2 * time.Minute
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.InfoContext(ctx, "retry scheduler leads")
	if s.OnLead != nil {
		s.OnLead()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastSweep := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// The lease keeps a re-queued retry from being queued again while its
		// task is in flight; if the task is lost (a broker that lost its
		// tail), the retry is queued again when the lease ends.
		if _, err := s.L.RequeueDue(ctx, 500, stuck); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "scheduler: requeue due failed", slog.Any("error", err))
		}
		if time.Since(lastSweep) >= stuck/4 {
			lastSweep = time.Now()
			n, err := s.L.RequeueStuck(ctx, stuck, 500)
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "scheduler: sweep failed", slog.Any("error", err))
			} else if n > 0 {
				log.InfoContext(ctx, "scheduler: re-announced stuck work", slog.Int("deliveries", n))
			}
		}
	}
}
