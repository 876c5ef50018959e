package hub

import (
	"log/slog"

	"lienthong/adapters/axis/axishub"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// axisEdge builds the national-axis bridge when cfg.Axis is set. Its
// packages go through their own intake.Service with the hub's Verifier and
// channel "axis", the same accept path as the REST API's.
func axisEdge(l *ledger.Ledger, cfg Config, log *slog.Logger) (*axishub.Bridge, error) {
	if cfg.Axis == nil {
		return nil, nil
	}
	ac := *cfg.Axis
	if ac.Logger == nil {
		ac.Logger = log
	}
	if ac.Limits.MaxBytes <= 0 {
		ac.Limits.MaxBytes = cfg.MaxBody
	}
	svc := intake.New(l, intake.Config{Limits: ac.Limits, Verifier: cfg.Verifier, Logger: log})
	return axishub.New(l, svc, ac)
}
