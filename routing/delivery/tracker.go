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
