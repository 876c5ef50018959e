package relay

import (
	"context"
	"testing"
	"time"

	"lienthong/routing/evidence"
)

// withFeed gives the rig a sequencer (of batches of batch events, 0: the
// default) and a tail that share a feed keeping keep leaves, as hubd wires
// them when both run in one process.
func (r *eventsRig) withFeed(keep, batch int) {
	r.t.Helper()
	feed := evidence.NewFeed(keep)
	seq, err := evidence.NewSequencer(r.l.Pool(), evidence.SequencerConfig{Feed: feed, BatchSize: batch})
	if err != nil {
		r.t.Fatal(err)
	}
	r.seq, r.tail = seq, evidence.NewTail(r.l.Pool()).WithFeed(feed)
}

// With the sequencer in the same process, lt.events is published from the
// leaves it has just committed, not read back from log_leaves: every event
// once, in order per document, with its leaf index, while documents flow.
func TestEventsPublishesFromTheFeed(t *testing.T) {
	r := newEventsRig(t, nil)
	r.withFeed(0, 0)
	pub := &countingPublisher{p: r.producer()}
	r.run(r.seq.Run)
	r.run(NewEvents(r.l, r.tail, pub, EventsConfig{}).Run)
	for range 4 {
		r.flow(40)
	}
	r.waitPublished(30 * time.Second)
	r.check(r.readAll(), true)
	const total = 4 * (5*40 + 1)
	feed, log := r.tail.Served()
	t.Logf("%d leaves from the feed, %d from log_leaves, %d publish calls", feed, log, pub.calls.Load())
	if feed+log != total || feed < total/2 {
		t.Fatalf("%d leaves from the feed and %d from log_leaves; want %d, most from the feed", feed, log, total)
	}
}

// A publisher behind what the feed holds reads log_leaves until it reaches
// the feed, then continues from memory, missing and repeating nothing; after
// a crash between the broker's acknowledgement and the cursor's update, a
// restarted process (no feed yet) publishes from the cursor on, from
// log_leaves: the crashed batch twice, nothing lost.
func TestEventsCatchesUpFromTheLogThenTheFeed(t *testing.T) {
	r := newEventsRig(t, nil)
	r.withFeed(40, 25) // the feed holds the last 40 to 64 of the leaves
	r.flow(30)
	total := r.sequenceAll()
	pub := &countingPublisher{p: r.producer()}
	ev := NewEvents(r.l, r.tail, pub, EventsConfig{Batch: 30})
	for done := 0; done < total; {
		n, err := ev.Once(context.Background())
		if err != nil || n == 0 {
			t.Fatalf("publish at %d of %d: %d, %v", done, total, n, err)
		}
		done += n
	}
	r.waitPublished(10 * time.Second)
	r.check(r.readAll(), true)
	feed, log := r.tail.Served()
	if feed+log != int64(total) || feed == 0 || log == 0 || feed > 64 {
		t.Fatalf("%d leaves from the feed, %d from log_leaves, of %d: want the last at most 64 from the feed", feed, log, total)
	}

	// More leaves (fewer than the feed keeps), published from the feed in
	// one batch, and a crash before the cursor moves.
	r.flow(5)
	more := r.sequenceAll() // 26
	ctx, crash := context.WithCancel(context.Background())
	crashed := NewEvents(r.l, r.tail, &crashAfterPublish{p: r.producer(), crash: crash}, EventsConfig{Batch: 30})
	if n, err := crashed.Once(ctx); err == nil || n != 0 {
		t.Fatalf("crashed publish: %d, %v; want an error", n, err)
	}
	if f, _ := r.tail.Served(); f != feed+int64(more) {
		t.Fatalf("the crashed batch came from the feed for %d of %d leaves", f-feed, more)
	}
	restarted := evidence.NewTail(r.l.Pool())
	r.tail = restarted
	r.run(NewEvents(r.l, restarted, r.producer(), EventsConfig{}).Run)
	r.waitPublished(30 * time.Second)
	seen := r.check(r.readAll(), false)
	twice := 0
	for _, n := range seen {
		if n == 2 {
			twice++
		} else if n != 1 {
			t.Fatalf("an event read %d times", n)
		}
	}
	if _, log := restarted.Served(); twice != more || log != int64(more) {
		t.Fatalf("%d events twice (want the crashed %d), %d leaves read from log_leaves after the restart (want them all)", twice, more, log)
	}
}
