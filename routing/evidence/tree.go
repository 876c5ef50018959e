package evidence

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"lienthong/routing/evidence/logverify"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such leaf, event in the log, or checkpoint (yet).
	ErrNotFound = errors.New("evidence: not found")
	// ErrBadRange: the indices or sizes of a request contradict each other.
	ErrBadRange = errors.New("evidence: bad range")
)

var (
	hasher       = rfc6962.DefaultHasher
	rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// querier is what a pool, a connection and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// eventColumns selects what a leaf commits to; scanEvent reads it.
const eventColumns = `e.id, coalesce(e.document_id::text, ''), e.recipient, e.kind, e.state, e.detail::text, e.at,
	CASE WHEN e.kind = 'accepted' THEN d.sha256 END`

// eventFrom joins the document digest of accepted events.
const eventFrom = ` FROM events e LEFT JOIN documents d ON d.id = e.document_id AND e.kind = 'accepted'`

func scanEvent(row pgx.Row, extra ...any) (logverify.Leaf, error) {
	var l logverify.Leaf
	var at time.Time
	dest := append([]any{&l.EventID, &l.DocumentID, &l.Recipient, &l.Kind, &l.State, &l.Detail, &at, &l.DocumentSHA256}, extra...)
	if err := row.Scan(dest...); err != nil {
		return l, err
	}
	l.At = at.UTC()
	if len(l.DocumentSHA256) == 0 {
		l.DocumentSHA256 = nil
	}
	return l, nil
}

// nodeFloor is the lowest level kept in log_nodes. The hash of every perfect
// subtree at a level of nodeFloor or more is stored, one row each, when the
// sequencer completes it: one row per 2^(nodeFloor-1) leaves, where every
// level above the leaves took one row per leaf. A subtree below that level
// (at most 2^(nodeFloor-1) leaves) is recomputed from the leaf hashes in
// log_leaves whenever a proof needs it: a proof reads the leaf hashes of at
// most two aligned runs of 2^nodeFloor leaves (around the leaf, or the old
// size, and the right edge of the tree) and one row per higher level, in one
// query, and hashes fewer than 2^(nodeFloor+1) times. 6 keeps 97% of the
// saving of 8 on writes while reading a quarter of its leaf hashes per proof
// (BenchmarkInclusionProof). Lowering it would need the missing levels
// back-filled; raising it leaves harmless rows below the new floor.
const nodeFloor = 6

// hashSize is the size of a SHA-256 hash, the RFC 6962 hash of this log.
const hashSize = sha256.Size

// fetchCost counts what fetchHashes read and computed (tests and benchmarks).
type fetchCost struct {
	NodeRows   int // rows read from log_nodes
	LeafHashes int // leaf hashes read from log_leaves
	HashOps    int // interior hashes recomputed
}

// leafSpan is a range [lo, hi) of leaf indices and, once read, their hashes.
type leafSpan struct {
	lo, hi uint64
	hashes []byte // (hi - lo) * hashSize bytes
	got    int
}

// fetchHashes returns the hashes of the given perfect-subtree nodes, in the
// order of ids: levels of nodeFloor and above from log_nodes, lower levels
// recomputed from the leaf hashes of log_leaves below them, all in one
// query. cost, if not nil, is incremented.
func fetchHashes(ctx context.Context, q querier, ids []compact.NodeID, cost *fetchCost) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var levels []int32
	var idxs []int64
	var spans []leafSpan
	for _, id := range ids {
		if id.Level >= nodeFloor {
			levels, idxs = append(levels, int32(id.Level)), append(idxs, int64(id.Index))
			continue
		}
		lo, hi := id.Coverage()
		spans = append(spans, leafSpan{lo: lo, hi: hi})
	}
	spans = mergeSpans(spans)
	los, his := make([]int64, len(spans)), make([]int64, len(spans))
	for i := range spans {
		los[i], his[i] = int64(spans[i].lo), int64(spans[i].hi)
		spans[i].hashes = make([]byte, (spans[i].hi-spans[i].lo)*hashSize)
	}
	// Each wanted node and each run of leaves is an index lookup of its own
	// (LATERAL ... OFFSET 0 keeps the planner from joining the whole small
	// table by hash, and plans faster).
	rows, err := q.Query(ctx, `SELECT q.level, q.idx, n.hash FROM unnest($1::int[], $2::bigint[]) AS q(level, idx)
		CROSS JOIN LATERAL (SELECT n.hash FROM log_nodes n WHERE n.level = q.level AND n.idx = q.idx OFFSET 0) n
		UNION ALL
		SELECT 0, l.leaf_index, l.leaf_hash FROM unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)
		CROSS JOIN LATERAL (SELECT l.leaf_index, l.leaf_hash FROM log_leaves l
			WHERE l.leaf_index >= r.lo AND l.leaf_index < r.hi OFFSET 0) l`,
		levels, idxs, los, his)
	if err != nil {
		return nil, err
	}
	nodes := make(map[compact.NodeID][]byte, len(levels))
	var c fetchCost
	var level int32 // scanned into, declared once: they escape
	var idx int64
	var h hashSink
	dest := []any{&level, &idx, &h}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		if len(h.b) != hashSize {
			rows.Close()
			return nil, fmt.Errorf("evidence: stored hash of node (level %d, index %d) has %d bytes", level, idx, len(h.b))
		}
		if level > 0 {
			nodes[compact.NewNodeID(uint(level), uint64(idx))] = slices.Clone(h.b)
			c.NodeRows++
			continue
		}
		for i := range spans {
			if s := &spans[i]; uint64(idx) >= s.lo && uint64(idx) < s.hi {
				copy(s.hashes[(uint64(idx)-s.lo)*hashSize:], h.b)
				s.got++
				c.LeafHashes++
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	scratch := make([]byte, hashSize<<(nodeFloor-1))
	for i, id := range ids {
		if id.Level >= nodeFloor {
			if out[i] = nodes[id]; out[i] == nil {
				return nil, fmt.Errorf("evidence: node (level %d, index %d) missing from storage", id.Level, id.Index)
			}
			continue
		}
		lo, hi := id.Coverage()
		var s *leafSpan
		for j := range spans {
			if lo >= spans[j].lo && hi <= spans[j].hi {
				s = &spans[j]
				break
			}
		}
		if s == nil || s.got != int(s.hi-s.lo) {
			return nil, fmt.Errorf("evidence: leaves [%d, %d) of node (level %d, index %d) missing from storage", lo, hi, id.Level, id.Index)
		}
		leaves := s.hashes[(lo-s.lo)*hashSize : (hi-s.lo)*hashSize]
		out[i] = subtreeHash(leaves, scratch)
		c.HashOps += int(hi-lo) - 1
	}
	if cost != nil {
		cost.NodeRows += c.NodeRows
		cost.LeafHashes += c.LeafHashes
		cost.HashOps += c.HashOps
	}
	return out, nil
}

// hashSink scans a bytea without allocating a slice per row: b is valid
// until the next Scan.
type hashSink struct{ b []byte }

func (h *hashSink) ScanBytes(v []byte) error { h.b = v; return nil }

// mergeSpans sorts spans and merges those that overlap or touch.
func mergeSpans(spans []leafSpan) []leafSpan {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b leafSpan) int { return cmp.Compare(a.lo, b.lo) })
	out := spans[:1]
	for _, s := range spans[1:] {
		if last := &out[len(out)-1]; s.lo <= last.hi {
			last.hi = max(last.hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// subtreeHash returns the RFC 6962 hash of the perfect subtree whose leaf
// hashes are concatenated in leaves (a power of two of them), using scratch
// (at least len(leaves) bytes) as work space.
func subtreeHash(leaves, scratch []byte) []byte {
	n := len(leaves) / hashSize
	if n == 1 {
		return slices.Clone(leaves)
	}
	work := scratch[:len(leaves)]
	copy(work, leaves)
	var buf [1 + 2*hashSize]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	for ; n > 1; n /= 2 {
		for j := range n / 2 {
			copy(buf[1:], work[2*j*hashSize:(2*j+2)*hashSize])
			sum := sha256.Sum256(buf[:])
			copy(work[j*hashSize:], sum[:])
		}
	}
	return slices.Clone(work[:hashSize])
}

// loadRange returns the compact range [0, size) from stored nodes.
func loadRange(ctx context.Context, q querier, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := fetchHashes(ctx, q, ids, nil)
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// treeHead reads the current tree size and root.
func treeHead(ctx context.Context, q querier) (size uint64, root []byte, err error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT size, root FROM log_state`).Scan(&n, &root); err != nil {
		return 0, nil, fmt.Errorf("evidence: tree head: %w", err)
	}
	return uint64(n), root, nil
}

// rootOf returns the root hash of a compact range starting at 0.
func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}
