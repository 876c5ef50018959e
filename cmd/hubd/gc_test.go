package main

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestGCSettingsYieldToTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env          map[string]string
		percent      int
		limit        int64
		appliedLimit bool
	}{
		{env: nil, percent: defaultGCPercent, limit: defaultMemoryLimit},
		{env: map[string]string{"GOGC": "100"}, percent: -1, limit: defaultMemoryLimit},
		{env: map[string]string{"GOMEMLIMIT": "1GiB"}, percent: defaultGCPercent, limit: -1},
		{env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, percent: -1, limit: -1},
	} {
		p, l := gcSettings(func(k string) string { return tc.env[k] })
		if p != tc.percent || l != tc.limit {
			t.Errorf("env %v: gcSettings = %d, %d; want %d, %d", tc.env, p, l, tc.percent, tc.limit)
		}
	}
	// Applied: the runtime reports the values.
	oldP, oldL := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(oldP); debug.SetMemoryLimit(oldL) }()
	tuneGC(func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GC percent after tuneGC: %d, want %d", got, defaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("memory limit after tuneGC: %d, want %d", got, defaultMemoryLimit)
	}
}
