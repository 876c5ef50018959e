package delivery

import (
	"sync"

	"github.com/segmentio/kafka-go"
)

// tracker follows in-flight messages per partition so that offsets are
// committed only up to the first message that is not finished.
type tracker struct {
	mu    sync.Mutex // guards parts
	parts map[partKey]*partState
}

type partKey struct {
	topic     string
	partition int
}

type partState struct {
	queue []*entry // in fetch (offset) order
}

type entry struct {
	msg  kafka.Message
	done bool
}

func newTracker() *tracker { return &tracker{parts: map[partKey]*partState{}} }

// add registers a fetched message and returns the func that marks it finished.
func (t *tracker) add(m kafka.Message) func() {
	e := &entry{msg: m}
	k := partKey{m.Topic, m.Partition}
	t.mu.Lock()
	ps := t.parts[k]
	if ps == nil {
		ps = &partState{}
		t.parts[k] = ps
	}
	ps.queue = append(ps.queue, e)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		e.done = true
		t.mu.Unlock()
	}
}

// committable pops the finished prefix of each partition and returns the last
// message of each prefix (committing it commits everything before it).
func (t *tracker) committable() []kafka.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []kafka.Message
	for _, ps := range t.parts {
		n := 0
		for n < len(ps.queue) && ps.queue[n].done {
			n++
		}
		if n == 0 {
			continue
		}
		out = append(out, ps.queue[n-1].msg)
		ps.queue = append(ps.queue[:0], ps.queue[n:]...)
	}
	return out
}

// firstAttempts remembers, per recipient, a sequence number up to which
// every delivery to that recipient has had its first attempt (or needs none:
// delivered, dead, in retry), as far as this worker saw it happen: it made
// those attempts itself, in order, after bringing forward every earlier
// delivery still waiting. A run whose sequences above that number continue
// from it without a gap, in order, has no predecessor left to wait for, so
// the ledger need not be asked (withPredecessors); its sequences at or below
// the number are retries or late repeats of tasks already done. Anything
// else (a gap, a sequence out of order, a run that did not finish cleanly)
// asks the ledger, as before. The number only ever describes what is
// certainly done, so a stale entry (the recipient's partition moved to
// another worker and back) costs a query, never the order. One entry per
// recipient organ.
type firstAttempts struct {
	mu   sync.Mutex // guards upTo
	upTo map[string]int64
}

// follows reports whether the run's sequences above what is known done for
// recp are upTo+1, upTo+2, … in this order.
func (f *firstAttempts) follows(recp string, seqs []int64) bool {
	if len(seqs) == 0 {
		return false
	}
	f.mu.Lock()
	upTo, ok := f.upTo[recp]
	f.mu.Unlock()
	if !ok {
		return false
	}
	last := upTo
	for _, s := range seqs {
		if s <= upTo {
			continue // had its first attempt: a retry, or a late repeat of its task
		}
		if s != last+1 {
			return false
		}
		last = s
	}
	return true
}

// done records that every delivery to recp up to seq has had its first
// attempt; forget forgets what was known of recp.
func (f *firstAttempts) done(recp string, seq int64) {
	f.mu.Lock()
	f.upTo[recp] = max(f.upTo[recp], seq) // first attempts never un-happen
	f.mu.Unlock()
}

func (f *firstAttempts) forget(recp string) {
	f.mu.Lock()
	delete(f.upTo, recp)
	f.mu.Unlock()
}
