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

// Pipeliner is a Channel that can have several deliveries to one endpoint on
// the wire at once and still hand them over in order: on one connection, each
// request is written before the answers to the earlier ones are read, and the
// recipient takes and answers them one after another (HTTP/1.1 pipelining,
// RFC 9112 §9.3.2). To the recipient this is the same sequence as one push at
// a time; what it saves is a round trip per document, which on a loaded hub
// is most of a push's time. The delivery stage uses it only for organs that
// allow it (ledger.Organ.PushPipeline).
type Pipeliner interface {
	Pipeline(ctx context.Context, endpoint string) (Pipeline, error)
}

// Pipeline is one pipelined connection. Send writes a delivery's request
// without waiting for an answer; Receive returns the outcome of the oldest
// request sent and not answered yet, classified as Channel.Deliver's error
// (nil: delivered). Sends and Receives are made by one goroutine; the caller
// bounds how many requests are unanswered at once.
type Pipeline interface {
	Send(ctx context.Context, d Delivery, body BodyOpener) error
	Receive(ctx context.Context) error
	Close() error
}

// ErrUnanswered is Pipeline.Receive's answer for a request written on a
// connection that closed or broke before its answer came: the recipient may
// or may not have it, so it is attempted again under the same idempotency
// key, not counted as a failure of the recipient.
var ErrUnanswered = errors.New("the connection closed before the answer")
