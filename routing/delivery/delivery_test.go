package delivery

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := Policy{Base: 2 * time.Second, Max: time.Minute}
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{10, 30 * time.Second, time.Minute},
	} {
		for _, r := range []float64{0, 0.5, 0.999} {
			got := p.Backoff(tc.attempt, func() float64 { return r })
			if got < tc.lo || got > tc.hi {
				t.Errorf("attempt %d, jitter %v: %v not in [%v, %v]", tc.attempt, r, got, tc.lo, tc.hi)
			}
		}
	}
}

func TestTrackerCommitsOnlyTheFinishedPrefix(t *testing.T) {
	tr := newTracker()
	msg := func(p int, off int64) kafka.Message { return kafka.Message{Topic: "t", Partition: p, Offset: off} }
	d0 := tr.add(msg(0, 10))
	d1 := tr.add(msg(0, 11))
	d2 := tr.add(msg(0, 12))
	e0 := tr.add(msg(1, 5))
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("nothing finished, got %+v", got)
	}
	d1()
	d2()
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("offset 10 unfinished, got %+v", got)
	}
	d0()
	e0()
	got := tr.committable()
	offs := map[int]int64{}
	for _, m := range got {
		offs[m.Partition] = m.Offset
	}
	if len(got) != 2 || offs[0] != 12 || offs[1] != 5 {
		t.Fatalf("committable %+v, want p0@12 p1@5", got)
	}
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committed twice: %+v", got)
	}
}
