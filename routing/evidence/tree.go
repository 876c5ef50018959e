package evidence

import (
	"context"
	"errors"
	"fmt"
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

// fetchHashes returns the stored hashes of the given perfect-subtree nodes,
// in the order of ids. Level 0 comes from log_leaves, higher levels from
// log_nodes.
func fetchHashes(ctx context.Context, q querier, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	levels := make([]int32, len(ids))
	idxs := make([]int64, len(ids))
	for i, id := range ids {
		levels[i], idxs[i] = int32(id.Level), int64(id.Index)
	}
	rows, err := q.Query(ctx, `SELECT q.level, q.idx, coalesce(n.hash, l.leaf_hash)
		FROM unnest($1::int[], $2::bigint[]) AS q(level, idx)
		LEFT JOIN log_nodes n ON q.level > 0 AND n.level = q.level AND n.idx = q.idx
		LEFT JOIN log_leaves l ON q.level = 0 AND l.leaf_index = q.idx`, levels, idxs)
	if err != nil {
		return nil, err
	}
	found := make(map[compact.NodeID][]byte, len(ids))
	for rows.Next() {
		var level int32
		var idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			rows.Close()
			return nil, err
		}
		found[compact.NewNodeID(uint(level), uint64(idx))] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h := found[id]
		if len(h) == 0 {
			return nil, fmt.Errorf("evidence: node (level %d, index %d) missing from storage", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// loadRange returns the compact range [0, size) from stored nodes.
func loadRange(ctx context.Context, q querier, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := fetchHashes(ctx, q, ids)
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
