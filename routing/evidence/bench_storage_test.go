package evidence

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkSequencerStorage measures what the sequencer writes per leaf:
// b.N committed events are sequenced in batches of the given size, and the
// benchmark reports the CPU time (cpuMeter), the WAL bytes (pg_current_wal_lsn difference), the rows
// added to log_leaves and log_nodes and the bytes their heaps and indexes
// grew by, each per leaf. Run it with a fixed count, e.g.
// go test -run '^$' -bench SequencerStorage -benchtime 20000x ./routing/evidence
func BenchmarkSequencerStorage(b *testing.B) {
	for _, batch := range []int{1000, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e := newEnv(b)
			doc := e.accept(b, "A", "<a/>")
			e.drain(b)
			m, one := newCPUMeter(b, e)
			seq, err := NewSequencer(one.pool, SequencerConfig{BatchSize: batch})
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
			var lsn0 string
			if err := e.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn0); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			m.start()
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
			m.stop()
			b.StopTimer()
			after := measure()
			per := func(v int64) float64 { return float64(v) / float64(total) }
			b.ReportMetric(per(after.wal-before.wal), "WAL-B/leaf")
			b.ReportMetric(per(after.leaves-before.leaves), "leafrows/leaf")
			b.ReportMetric(per(after.nodes-before.nodes), "noderows/leaf")
			b.ReportMetric(per(after.leafBytes-before.leafBytes), "leaves-B/leaf")
			b.ReportMetric(per(after.nodeBytes-before.nodeBytes), "nodes-B/leaf")
			logRelations(b, e, total)
			logWAL(b, e, lsn0, total)
		})
	}
}

// logRelations logs the size of each relation of the log per leaf.
func logRelations(b *testing.B, e *env, leaves int) {
	rows, err := e.pool.Query(context.Background(), `SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c
		WHERE c.relname LIKE 'log\_leaves%' OR c.relname LIKE 'log\_nodes%' ORDER BY 1`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			b.Fatal(err)
		}
		b.Logf("%-24s %7.1f B/leaf", name, float64(size)/float64(leaves))
	}
}

// logWAL logs the WAL written since lsn0 per leaf, by record type, where
// pg_walinspect is available (PostgreSQL 15 and later, superuser).
func logWAL(b *testing.B, e *env, lsn0 string, leaves int) {
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_walinspect`); err != nil {
		b.Logf("no WAL breakdown: %v", err)
		return
	}
	var lsn1 string // the end, then flushed (the test cluster does not wait for WAL flushes)
	if err := e.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn1); err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
	rows, err := e.pool.Query(ctx, `SELECT "resource_manager/record_type", count, combined_size
		FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, true) WHERE count > 0 ORDER BY combined_size DESC`, lsn0, lsn1)
	if err != nil {
		b.Logf("no WAL breakdown: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var n, size int64
		if err := rows.Scan(&kind, &n, &size); err != nil {
			b.Fatal(err)
		}
		b.Logf("WAL %-24s %8d records %7.1f B/leaf", kind, n, float64(size)/float64(leaves))
	}
	if err := rows.Err(); err != nil {
		b.Logf("no WAL breakdown: %v", err)
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

// cpuMeter reports, per benchmark iteration, the CPU time of this process
// and of the one PostgreSQL backend of log (a pool of one connection), from
// getrusage and /proc: less sensitive to a loaded machine than wall time.
type cpuMeter struct {
	b        *testing.B
	pgStat   string
	go0, pg0 time.Duration
}

func newCPUMeter(b *testing.B, e *env) (*cpuMeter, *Log) {
	cfg := e.pool.Config()
	cfg.MaxConns, cfg.MinConns = 1, 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var pid int
	if err := pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	return &cpuMeter{b: b, pgStat: fmt.Sprintf("/proc/%d/stat", pid)}, NewLog(pool)
}

func (m *cpuMeter) read() (goCPU, pgCPU time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		m.b.Fatal(err)
	}
	goCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	st, err := os.ReadFile(m.pgStat)
	if err != nil {
		m.b.Skipf("backend CPU: %v", err)
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:])) // after "pid (comm) "
	ut, _ := strconv.ParseInt(f[11], 10, 64)                         // utime, field 14
	stt, _ := strconv.ParseInt(f[12], 10, 64)                        // stime, field 15
	return goCPU, time.Duration(ut+stt) * time.Second / 100          // USER_HZ
}

func (m *cpuMeter) start() { m.go0, m.pg0 = m.read() }

func (m *cpuMeter) stop() {
	g, p := m.read()
	n := float64(m.b.N)
	m.b.ReportMetric(float64((g-m.go0).Microseconds())/n, "go-cpu-µs/op")
	m.b.ReportMetric(float64((p-m.pg0).Microseconds())/n, "pg-cpu-µs/op")
}

// BenchmarkInclusionProof measures one inclusion proof against the current
// tree size (a leaf spread over the whole log each iteration), from
// PostgreSQL, including the tree size check.
func BenchmarkInclusionProof(b *testing.B) {
	e, size := proofEnv(b)
	m, log := newCPUMeter(b, e)
	ctx := context.Background()
	b.ResetTimer()
	m.start()
	for i := range b.N {
		index := uint64(i) * 7919 % size
		if _, err := log.InclusionProof(ctx, index, size); err != nil {
			b.Fatal(err)
		}
	}
	m.stop()
}

// BenchmarkConsistencyProof measures one consistency proof from an older
// size to the current one.
func BenchmarkConsistencyProof(b *testing.B) {
	e, size := proofEnv(b)
	m, log := newCPUMeter(b, e)
	ctx := context.Background()
	b.ResetTimer()
	m.start()
	for i := range b.N {
		from := 1 + uint64(i)*7919%(size-1)
		if _, err := log.ConsistencyProof(ctx, from, size); err != nil {
			b.Fatal(err)
		}
	}
	m.stop()
}

// BenchmarkReceipts measures the receipts of a document with 20 events
// spread over a log of proofBenchLeaves leaves (their inclusion proofs
// against the latest checkpoint).
func BenchmarkReceipts(b *testing.B) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	other := e.accept(b, "B", "<b/>")
	for range 20 {
		e.addEvents(b, other, (proofBenchLeaves-20)/20)
		e.addEvents(b, doc, 1)
	}
	e.drain(b)
	c, _ := e.checkpointer(b)
	e.sign(b, c)
	m, log := newCPUMeter(b, e)
	ctx := context.Background()
	b.ResetTimer()
	m.start()
	for range b.N {
		set, err := log.Receipts(ctx, doc)
		if err != nil || len(set.Proofs) != 21 {
			b.Fatalf("%d proofs, %v", len(set.Proofs), err)
		}
	}
	m.stop()
}
