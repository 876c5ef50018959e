package evidence

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSequencerStorage measures what the sequencer writes per leaf:
// b.N committed events are sequenced in batches of the given size, and the
// benchmark reports the WAL bytes (pg_current_wal_lsn difference), the rows
// added to log_leaves and log_nodes and the bytes their heaps and indexes
// grew by, each per leaf. Run it with a fixed count, e.g.
// go test -run '^$' -bench SequencerStorage -benchtime 20000x ./routing/evidence
func BenchmarkSequencerStorage(b *testing.B) {
	for _, batch := range []int{1000, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e := newEnv(b)
			doc := e.accept(b, "A", "<a/>")
			e.drain(b)
			seq, err := NewSequencer(e.pool, SequencerConfig{BatchSize: batch})
			if err != nil {
				b.Fatal(err)
			}
			e.addEvents(b, doc, b.N)
			ctx := context.Background()
			if _, err := e.pool.Exec(ctx, `CHECKPOINT`); err != nil {
				b.Fatal(err)
			}
			type sizes struct{ wal, leaves, nodes, leafBytes, nodeBytes int64 }
			measure := func() sizes {
				var s sizes
				if err := e.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
					(SELECT count(*) FROM log_leaves), (SELECT count(*) FROM log_nodes),
					pg_total_relation_size('log_leaves'), pg_total_relation_size('log_nodes')`).
					Scan(&s.wal, &s.leaves, &s.nodes, &s.leafBytes, &s.nodeBytes); err != nil {
					b.Fatal(err)
				}
				return s
			}
			before := measure()
			b.ResetTimer()
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
			after := measure()
			per := func(v int64) float64 { return float64(v) / float64(total) }
			b.ReportMetric(per(after.wal-before.wal), "WAL-B/leaf")
			b.ReportMetric(per(after.leaves-before.leaves), "leafrows/leaf")
			b.ReportMetric(per(after.nodes-before.nodes), "noderows/leaf")
			b.ReportMetric(per(after.leafBytes-before.leafBytes), "leaves-B/leaf")
			b.ReportMetric(per(after.nodeBytes-before.nodeBytes), "nodes-B/leaf")
		})
	}
}

// proofBenchLeaves is the size of the log the proof benchmarks read: a
// little above 2^15, so that proofs have 16 hashes and end in a partial
// subtree.
const proofBenchLeaves = 1<<15 + 1000

// proofEnv is a log of proofBenchLeaves leaves made by the sequencer.
func proofEnv(b *testing.B) (*env, uint64) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	e.addEvents(b, doc, proofBenchLeaves-1)
	e.drain(b)
	size, err := e.log.Size(context.Background())
	if err != nil || size != proofBenchLeaves {
		b.Fatalf("size %d (%v)", size, err)
	}
	return e, size
}

// BenchmarkInclusionProof measures one inclusion proof against the current
// tree size (a leaf spread over the whole log each iteration), from
// PostgreSQL, including the tree size check.
func BenchmarkInclusionProof(b *testing.B) {
	e, size := proofEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		index := uint64(i) * 7919 % size
		if _, err := e.log.InclusionProof(ctx, index, size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistencyProof measures one consistency proof from an older
// size to the current one.
func BenchmarkConsistencyProof(b *testing.B) {
	e, size := proofEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		from := 1 + uint64(i)*7919%(size-1)
		if _, err := e.log.ConsistencyProof(ctx, from, size); err != nil {
			b.Fatal(err)
		}
	}
}
