package routing

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Delivery is one task: bring one document to one recipient organ.
type Delivery struct {
	ID             int64  // ledger delivery row id
	DocumentID     string // the hub's document id (UUID)
	Sender         string // sender organ code
	Recipient      string // recipient organ code
	Format         string // envelope format (edxml, edxml-status, hub)
	Channel        string // directory channel: push, pull, axis, partner
	Endpoint       string // channel endpoint from the directory (URL for push, empty for pull)
	IdempotencyKey string // stable across attempts: recipients use it to drop repeats
	Sequence       int64  // per-recipient sequence number, in acceptance order
	Attempt        int    // 1 for the first attempt
	Size           int64  // size of the original bytes
	SHA256         string // lowercase hex digest of the original bytes
}

// BodyOpener opens the original bytes of a document for streaming.
type BodyOpener func(ctx context.Context) (io.ReadCloser, error)

// Channel brings a document to a recipient: a webhook, an inbox, the national
// axis, a partner parliament. Deliver must either deliver durably and return
// nil, or return an error; a *PermanentError means retrying cannot help.
// Implementations must send d.IdempotencyKey so that a repeat is harmless.
type Channel interface {
	Deliver(ctx context.Context, d Delivery, body BodyOpener) error
}

// PermanentError marks a delivery failure that retrying cannot fix (for
// example a 4xx answer other than 408/429 from a webhook).
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("permanent delivery failure: %s: %v", e.Reason, e.Err)
	}
	return "permanent delivery failure: " + e.Reason
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err (or an error it wraps) is a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
