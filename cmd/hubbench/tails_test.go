package main

import (
	"testing"
	"time"
)

// A queue on one channel shows in its own distribution and in the seconds
// it grew, not smeared over both channels.
func TestTailsSplitByChannelAndSecond(t *testing.T) {
	start := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	var samples []delivery
	for sec := range 3 {
		for i := range 100 {
			at := start.Add(time.Duration(sec)*time.Second + time.Duration(i)*10*time.Millisecond)
			samples = append(samples,
				delivery{start: at, lat: 10 * time.Millisecond, channel: "pull"},
				delivery{start: at, lat: time.Duration(sec+1) * time.Second, channel: "push"})
		}
	}
	ch, timeline := tails(samples, start)
	if got := ch["pull"]; got.N != 300 || got.P99Ms != 10 || got.MaxMs != 10 {
		t.Errorf("pull: %+v, want 300 samples at 10 ms", got)
	}
	if got := ch["push"]; got.N != 300 || got.P50Ms != 2000 || got.MaxMs != 3000 {
		t.Errorf("push: %+v, want p50 2000 ms, max 3000 ms", got)
	}
	if len(timeline) != 6 {
		t.Fatalf("%d timeline entries, want 6 (3 seconds × 2 channels): %+v", len(timeline), timeline)
	}
	for i, e := range timeline {
		sec, channel := i/2, []string{"pull", "push"}[i%2]
		want := 10.0
		if channel == "push" {
			want = float64(sec+1) * 1000
		}
		if e.Second != sec || e.Channel != channel || e.N != 100 || e.P99Ms != want {
			t.Errorf("timeline[%d] = %+v, want second %d %s, 100 samples, p99 %v ms", i, e, sec, channel, want)
		}
	}
	if got, want := channelP99s(ch), " push 3000.0 ms, pull 10.0 ms"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if got, want := channelP99s(map[string]Tail{"push": {P99Ms: 2}}), " push 2.0 ms"; got != want {
		t.Errorf("summary of push alone %q, want %q", got, want)
	}
	if ch, tl := tails(nil, start); ch != nil || tl != nil {
		t.Errorf("no samples: %v %v, want nothing", ch, tl)
	}
}
