package evidence

import (
	"sync"
	"time"

	"lienthong/routing/evidence/logverify"
)

// Feed hands the leaves a Sequencer of this process commits to a Tail of
// this process (SequencerConfig.Feed, Tail.WithFeed), so that the lt.events
// publisher takes them from memory instead of reading them back from
// PostgreSQL. It holds only leaves whose transaction has committed, at the
// indexes they were committed at, and at most the last Keep of them; a
// reader further behind, or in a process whose sequencer does not lead,
// reads the log as before (the crash-safe path). It is safe for concurrent
// use.
type Feed struct {
	keep int

	mu      sync.Mutex
	first   uint64      // index of entries[0]
	entries []TailEntry // committed leaves [first, first+len)
	pushed  time.Time   // when the last batch was added
	wake    chan struct{}
}

// NewFeed returns a Feed that keeps the last keep leaves; default 8192.
func NewFeed(keep int) *Feed {
	if keep <= 0 {
		keep = 8192
	}
	return &Feed{keep: keep, wake: make(chan struct{})}
}

// push adds leaves committed at indexes [first, first+len(leaves)). A batch
// that does not continue the held ones (another process appended in
// between) replaces them.
func (f *Feed) push(first uint64, leaves []logverify.Leaf) {
	if f == nil || len(leaves) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if first != f.first+uint64(len(f.entries)) || len(f.entries) == 0 {
		f.first, f.entries = first, f.entries[:0]
	}
	if drop := len(f.entries) + len(leaves) - f.keep; drop > len(f.entries)/2 && drop > 0 {
		// Shift rather than re-slice, so the backing array stays bounded.
		drop = min(drop, len(f.entries))
		n := copy(f.entries, f.entries[drop:])
		clear(f.entries[n:])
		f.entries = f.entries[:n]
		f.first += uint64(drop)
	}
	for i, l := range leaves {
		f.entries = append(f.entries, TailEntry{Index: first + uint64(i), Leaf: l})
	}
	f.pushed = time.Now()
	close(f.wake)
	f.wake = make(chan struct{})
}

// read returns at most limit held leaves from index from on, and whether
// from was held at all.
func (f *Feed) read(from uint64, limit int) ([]TailEntry, bool) {
	if f == nil {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.first + uint64(len(f.entries))
	if from < f.first || from >= end {
		return nil, false
	}
	part := f.entries[from-f.first:]
	part = part[:min(len(part), limit)]
	return append([]TailEntry(nil), part...), true
}

// caughtUp reports whether from is the end of the held leaves and a batch
// was added within fresh: while this process's sequencer leads, there is
// nothing more in the log to read.
func (f *Feed) caughtUp(from uint64, now time.Time, fresh time.Duration) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries) > 0 && from == f.first+uint64(len(f.entries)) && now.Sub(f.pushed) < fresh
}

// Wait returns a channel closed when the next batch is added.
func (f *Feed) Wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}
