package evidence

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAppend measures the sequencer: b.N committed events become
// leaves, in batches of 1000 (one transaction each).
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	e.drain(b)
	seq, err := NewSequencer(e.pool, SequencerConfig{BatchSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	e.addEvents(b, doc, b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	total := 0
	for total < b.N {
		n, err := seq.Step(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("stalled at %d of %d", total, b.N)
		}
		total += n
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "leaves/s")
}

// BenchmarkCheckpoint measures one checkpoint: read the tree head, sign the
// note (Ed25519) and store it. The tree grows by one leaf between
// iterations, outside the timer.
func BenchmarkCheckpoint(b *testing.B) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	e.drain(b)
	c, _ := e.checkpointer(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e.addEvents(b, doc, 1)
		e.drain(b)
		e.clk.add(time.Second)
		b.StartTimer()
		if ok, err := c.SignIfDue(ctx); err != nil || !ok {
			b.Fatalf("SignIfDue: %v %v", ok, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
}
