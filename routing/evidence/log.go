package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"lienthong/routing/evidence/logverify"
)

// Log reads the evidence log: checkpoints, leaves and proofs. It is safe for
// concurrent use and never writes.
type Log struct {
	pool *pgxpool.Pool
}

// NewLog returns a reader over pool. Run Migrate first.
func NewLog(pool *pgxpool.Pool) *Log { return &Log{pool: pool} }

// SignedCheckpoint is a stored checkpoint: its parsed body and the signed
// note exactly as the hub signed it.
type SignedCheckpoint struct {
	Checkpoint
	Note      string
	CreatedAt time.Time
}

// Entry is a stored leaf.
type Entry struct {
	Index   uint64
	EventID int64
	Data    []byte // canonical leaf bytes (logverify.DecodeLeaf)
	Hash    []byte // RFC 6962 leaf hash
}

// Checkpoint returns the latest signed checkpoint, or ErrNotFound before the
// first one.
func (l *Log) Checkpoint(ctx context.Context) (SignedCheckpoint, error) {
	return l.checkpoint(ctx, `SELECT note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1`)
}

// CheckpointAt returns the checkpoint of exactly the given tree size.
func (l *Log) CheckpointAt(ctx context.Context, size uint64) (SignedCheckpoint, error) {
	return l.checkpoint(ctx, `SELECT note, created_at FROM log_checkpoints WHERE size = $1`, int64(size))
}

func (l *Log) checkpoint(ctx context.Context, sql string, args ...any) (SignedCheckpoint, error) {
	var sc SignedCheckpoint
	err := l.pool.QueryRow(ctx, sql, args...).Scan(&sc.Note, &sc.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SignedCheckpoint{}, fmt.Errorf("%w: no checkpoint", ErrNotFound)
	}
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("evidence: checkpoint: %w", err)
	}
	body, err := noteBody(sc.Note)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if sc.Checkpoint, err = logverify.ParseCheckpoint(body); err != nil {
		return SignedCheckpoint{}, fmt.Errorf("evidence: stored checkpoint: %w", err)
	}
	return sc, nil
}

// Size returns the current tree size (which may be ahead of the latest
// checkpoint).
func (l *Log) Size(ctx context.Context) (uint64, error) {
	size, _, err := treeHead(ctx, l.pool)
	return size, err
}

// Leaf returns the leaf at index, as stored: a *TamperError if its bytes
// no longer hash to its stored leaf hash.
func (l *Log) Leaf(ctx context.Context, index uint64) (Entry, error) {
	if index > maxIndex {
		return Entry{}, fmt.Errorf("%w: leaf %d", ErrNotFound, index)
	}
	e := Entry{Index: index}
	err := l.pool.QueryRow(ctx, `SELECT event_id, leaf, leaf_hash FROM log_leaves WHERE leaf_index = $1`,
		int64(index)).Scan(&e.EventID, &e.Data, &e.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, fmt.Errorf("%w: leaf %d", ErrNotFound, index)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("evidence: leaf: %w", err)
	}
	if err := checkStored(index, e.EventID, e.Data, e.Hash); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// checkStored returns a *TamperError if the stored bytes of leaf index
// (of event id) do not hash to its stored leaf hash, which the tree and
// every signed checkpoint commit to.
func checkStored(index uint64, id int64, data, hash []byte) error {
	if !bytes.Equal(logverify.LeafHash(data), hash) {
		return &TamperError{LeafIndex: index, EventID: id, Reason: "stored leaf hash does not match the stored leaf bytes"}
	}
	return nil
}

// LeafIndexOfEvent returns the index of the leaf of a ledger event, or
// ErrNotFound while it is not sequenced yet.
func (l *Log) LeafIndexOfEvent(ctx context.Context, eventID int64) (uint64, error) {
	var idx *int64
	err := l.pool.QueryRow(ctx, `SELECT log_leaf_index($1)`, eventID).Scan(&idx)
	if err == nil && idx == nil {
		err = pgx.ErrNoRows
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: event %d is not in the log (yet)", ErrNotFound, eventID)
	}
	if err != nil {
		return 0, fmt.Errorf("evidence: leaf of event: %w", err)
	}
	return uint64(*idx), nil
}

// InclusionProof returns the RFC 6962 audit path of leaf index in the tree of
// the given size, from one query: one stored hash per level of nodeFloor and
// above, the levels below recomputed from the leaf hashes of at most two runs
// of 2^nodeFloor leaves (the leaf's own and the right edge of the tree).
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	ps, err := l.inclusionProofs(ctx, []uint64{index}, size, nil)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// inclusionProofs returns the audit paths of several leaves in the tree of
// the given size, in the order of indices, reading every stored hash they
// need in one query. cost, if not nil, counts what was read.
func (l *Log) inclusionProofs(ctx context.Context, indices []uint64, size uint64, cost *fetchCost) ([][][]byte, error) {
	all := make([]proof.Nodes, len(indices))
	for i, index := range indices {
		if index >= size {
			return nil, fmt.Errorf("%w: index %d is not below size %d", ErrBadRange, index, size)
		}
		nodes, err := proof.Inclusion(index, size)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRange, err)
		}
		all[i] = nodes
	}
	if err := l.checkSize(ctx, size); err != nil {
		return nil, err
	}
	return l.rehash(ctx, all, cost)
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size to
// extends the tree of size from.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	return l.consistencyProof(ctx, from, to, nil)
}

func (l *Log) consistencyProof(ctx context.Context, from, to uint64, cost *fetchCost) ([][]byte, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d is above to %d", ErrBadRange, from, to)
	}
	if err := l.checkSize(ctx, to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRange, err)
	}
	ps, err := l.rehash(ctx, []proof.Nodes{nodes}, cost)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// maxIndex keeps indices and sizes within PostgreSQL's bigint.
const maxIndex = 1<<63 - 1

func (l *Log) checkSize(ctx context.Context, size uint64) error {
	if size > maxIndex {
		return fmt.Errorf("%w: tree size %d", ErrNotFound, size)
	}
	cur, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if size > cur {
		return fmt.Errorf("%w: tree size %d is beyond the log's %d", ErrNotFound, size, cur)
	}
	return nil
}

// rehash fetches the hashes every proof needs, once each and in one query,
// and builds the proofs.
func (l *Log) rehash(ctx context.Context, all []proof.Nodes, cost *fetchCost) ([][][]byte, error) {
	var ids []compact.NodeID
	seen := make(map[compact.NodeID]int)
	for _, nodes := range all {
		for _, id := range nodes.IDs {
			if _, ok := seen[id]; !ok {
				seen[id] = len(ids)
				ids = append(ids, id)
			}
		}
	}
	hashes, err := fetchHashes(ctx, l.pool, ids, cost)
	if err != nil {
		return nil, fmt.Errorf("evidence: proof: %w", err)
	}
	out := make([][][]byte, len(all))
	for i, nodes := range all {
		hs := make([][]byte, len(nodes.IDs))
		for j, id := range nodes.IDs {
			hs[j] = hashes[seen[id]]
		}
		p, err := nodes.Rehash(hs, hasher.HashChildren)
		if err != nil {
			return nil, fmt.Errorf("evidence: proof: %w", err)
		}
		if p == nil {
			p = [][]byte{}
		}
		out[i] = p
	}
	return out, nil
}
