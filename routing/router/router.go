// Package router is the stage that reads accepted documents from lt.route,
// looks each recipient up in the directory, and turns each (document,
// recipient) pair into a delivery task on lt.deliver (through the ledger's
// outbox), keyed by recipient organ so one recipient sees its documents in
// order. A repeated message changes nothing: only deliveries still in state
// accepted are routed.
//
// With ledger.Config.RouteOnAccept (the hub's default) the accept
// transaction routes most documents itself and queues no lt.route message
// for them; the router then routes only what the accept could not: a
// recipient the directory did not resolve at that moment, documents of the
// other business flows, documents accepted by an older hubd or with the flag
// off, and what the scheduler re-announces.
package router

import (
	"context"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing/bus"
	"lienthong/routing/ledger"
)

// Config tunes the router.
type Config struct {
	Bus    bus.Config
	Group  string // consumer group; default "lt-router"
	Batch  int    // default 200
	Logger *slog.Logger
}

// Router consumes lt.route.
type Router struct {
	l   *ledger.Ledger
	cfg Config
}

// New returns a router; nothing starts before Run.
func New(l *ledger.Ledger, cfg Config) *Router {
	if cfg.Group == "" {
		cfg.Group = "lt-router"
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{l: l, cfg: cfg}
}

// Run consumes until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	rd := bus.NewGroupReader(r.cfg.Bus, "route", r.cfg.Group)
	defer rd.Close()
	return bus.ConsumeBatches(ctx, rd, r.cfg.Batch, 5*time.Millisecond, r.cfg.Logger, r.handle)
}

func (r *Router) handle(ctx context.Context, msgs []kafka.Message) error {
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		rm, err := ledger.DecodeRoute(m.Value)
		if err != nil {
			r.cfg.Logger.ErrorContext(ctx, "router: dropping undecodable message", slog.Any("error", err))
			continue
		}
		ids = append(ids, rm.DocumentID)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := r.l.Route(ctx, ids, r.l.Organ)
	return err
}
