package main

import (
	"log/slog"
	"runtime/debug"
)

// GC defaults of the daemon. The hub's live heap is small (tens of MB) and
// short-lived garbage per document is large (request bodies, trees), so
// Go's default GOGC=100 spends a fifth of the CPU in the collector under
// load. A higher target with a soft memory limit trades some heap for that
// CPU and still bounds the process: the collector works harder as the heap
// nears the limit. GOGC and GOMEMLIMIT, when set, win (the runtime reads
// them at start).
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 384 << 20 // bytes; below the 512 MB peak RSS target
)

// gcSettings returns the GC percent and soft memory limit to apply, or -1
// for one the environment already sets.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	percent, limit = defaultGCPercent, defaultMemoryLimit
	if getenv("GOGC") != "" {
		percent = -1
	}
	if getenv("GOMEMLIMIT") != "" {
		limit = -1
	}
	return percent, limit
}

// tuneGC applies gcSettings.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	percent, limit := gcSettings(getenv)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
	log.Debug("gc", "gogc", percent, "gomemlimit", limit)
}
