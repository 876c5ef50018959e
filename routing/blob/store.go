package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ChunkSize is the size of one write to or read from a large object.
const ChunkSize = 256 << 10

// ErrNotFound: no blob has that digest.
var ErrNotFound = errors.New("blob: not found")

// ErrDigestMismatch: the bytes written do not hash to the key they were
// written under; nothing is stored.
var ErrDigestMismatch = errors.New("blob: digest mismatch")

// Store keeps blobs in PostgreSQL large objects.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool. The blobs table must exist
// (routing/ledger migration 0010).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Put copies r into a large object inside tx and records it under sum, the
// SHA-256 of the bytes. The bytes are hashed while they are copied; when
// they do not match sum, Put returns ErrDigestMismatch (the caller rolls tx
// back). When a blob with that digest exists already, r is not read and the
// existing blob is kept (content addressing). Put returns the size stored.
func Put(ctx context.Context, tx pgx.Tx, sum []byte, r io.Reader) (int64, error) {
	if len(sum) != sha256.Size {
		return 0, fmt.Errorf("blob: put: key of %d bytes, want %d", len(sum), sha256.Size)
	}
	var size int64
	err := tx.QueryRow(ctx, `SELECT size FROM blobs WHERE sha256 = $1`, sum).Scan(&size)
	if err == nil {
		return size, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("blob: put: lookup: %w", err)
	}
	los := tx.LargeObjects()
	oid, err := los.Create(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("blob: put: create large object: %w", err)
	}
	lo, err := los.Open(ctx, oid, pgx.LargeObjectModeWrite)
	if err != nil {
		return 0, fmt.Errorf("blob: put: open large object: %w", err)
	}
	h := sha256.New()
	size, err = io.CopyBuffer(lo, io.TeeReader(r, h), make([]byte, ChunkSize))
	if err != nil {
		return 0, fmt.Errorf("blob: put: write large object: %w", err)
	}
	if err := lo.Close(); err != nil {
		return 0, fmt.Errorf("blob: put: close large object: %w", err)
	}
	if got := h.Sum(nil); string(got) != string(sum) {
		return 0, fmt.Errorf("%w: wrote %s under %s", ErrDigestMismatch, hex.EncodeToString(got), hex.EncodeToString(sum))
	}
	tag, err := tx.Exec(ctx, `INSERT INTO blobs (sha256, oid, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		sum, oid, size)
	if err != nil {
		return 0, fmt.Errorf("blob: put: record: %w", err)
	}
	if tag.RowsAffected() == 0 { // a concurrent transaction stored the same bytes first
		if err := los.Unlink(ctx, oid); err != nil {
			return 0, fmt.Errorf("blob: put: drop duplicate large object: %w", err)
		}
	}
	return size, nil
}

// Open returns a stream of the blob's bytes and its size. The stream holds a
// read-only transaction (and its connection) until Close; close it promptly.
func (s *Store) Open(ctx context.Context, sum []byte) (io.ReadCloser, int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open: begin: %w", err)
	}
	var oid uint32
	var size int64
	err = tx.QueryRow(ctx, `SELECT oid, size FROM blobs WHERE sha256 = $1`, sum).Scan(&oid, &size)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("blob: open: lookup: %w", err)
	}
	los := tx.LargeObjects()
	lo, err := los.Open(ctx, oid, pgx.LargeObjectModeRead)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, 0, fmt.Errorf("blob: open: large object %d: %w", oid, err)
	}
	return &reader{ctx: ctx, tx: tx, lo: lo}, size, nil
}

// reader streams a large object; Close ends its transaction.
type reader struct {
	ctx    context.Context
	tx     pgx.Tx
	lo     *pgx.LargeObject
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > ChunkSize {
		p = p[:ChunkSize]
	}
	n, err := r.lo.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("blob: read: %w", err)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	_ = r.lo.Close()
	return r.tx.Rollback(context.WithoutCancel(r.ctx))
}
