package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lienthong/routing/blob"
)

// A NewDocument whose Body is set is a large body (ARCHITECTURE.md
// principle 11): Raw is nil, Size and SHA256 describe Body, and the accept
// transaction copies Body into the content-addressed blob store
// (routing/blob) before it commits. The documents row then has body NULL
// and body_blob = SHA256.

// size is the number of bytes of the document's body.
func (d *NewDocument) size() int64 {
	if d.Body != nil {
		return d.Size
	}
	return int64(len(d.Raw))
}

// inlineBody is the value of documents.body in the INSERT: the bytes, or an
// empty placeholder that storeBody replaces by NULL once the blob is stored.
func (d *NewDocument) inlineBody() []byte {
	if d.Body != nil {
		return []byte{}
	}
	return d.Raw
}

// storeBody writes a large body to the blob store inside the accept
// transaction, after the document row was inserted.
func storeBody(ctx context.Context, tx pgx.Tx, id uuid.UUID, d *NewDocument) error {
	if d.Body == nil {
		return nil
	}
	n, err := blob.Put(ctx, tx, d.SHA256, d.Body)
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("store body: %d bytes stored, %d declared", n, d.Size)
	}
	if _, err := tx.Exec(ctx, `UPDATE documents SET body = NULL, body_blob = $2 WHERE id = $1`, id, d.SHA256); err != nil {
		return fmt.Errorf("store body: %w", err)
	}
	return nil
}

// Body is a stream of a document's original bytes, exactly as received.
type Body struct {
	io.ReadCloser
	Size   int64
	SHA256 []byte
	Format string
	// Purged: retention removed the bytes; ReadCloser is empty.
	Purged bool
}

// ContentStream opens the original bytes of a document for streaming, from
// the row (small bodies) or from the blob store (large ones). The caller
// closes the Body; a blob stream holds a database connection until then.
func (l *Ledger) ContentStream(ctx context.Context, id string) (Body, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Body{}, ErrNotFound
	}
	var inline, key []byte
	var b Body
	err = l.pool.QueryRow(ctx, `SELECT body, body_blob, size, sha256, format FROM documents WHERE id = $1`, uid).
		Scan(&inline, &key, &b.Size, &b.SHA256, &b.Format)
	if errors.Is(err, pgx.ErrNoRows) {
		return Body{}, ErrNotFound
	}
	if err != nil {
		return Body{}, fmt.Errorf("ledger: content: %w", classify(err))
	}
	if key == nil {
		b.ReadCloser = io.NopCloser(bytes.NewReader(inline))
		b.Purged = len(inline) == 0 && b.Size > 0
		return b, nil
	}
	rc, n, err := blob.NewStore(l.pool).Open(ctx, key)
	if err != nil {
		return Body{}, fmt.Errorf("ledger: content: %w", classify(err))
	}
	if n != b.Size {
		rc.Close()
		return Body{}, fmt.Errorf("ledger: content: blob of %d bytes for a document of %d", n, b.Size)
	}
	b.ReadCloser = rc
	return b, nil
}

// MaxPrefetchBody bounds the bodies Attempts returns with their deliveries
// (each), so that a run of deliveries holds at most its length times this in
// memory.
const MaxPrefetchBody = 256 << 10
