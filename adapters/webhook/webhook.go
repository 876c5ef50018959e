// Package webhook is the push channel: it POSTs a document's original bytes
// to the recipient organ's HTTPS endpoint, with the headers that let the
// recipient drop repeats (Idempotency-Key) and keep order (sequence), and
// classifies the answer for the delivery stage: 2xx delivered, 408/429/5xx and
// network errors retried, any other 4xx permanent. It also provides Sink, the
// demo receiver that `hubd dev` mounts for the push organs.
package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"lienthong/routing"
)

// Header names sent with every push.
const (
	HeaderDocumentID = "X-Lienthong-Document-Id"
	HeaderSender     = "X-Lienthong-Sender"
	HeaderRecipient  = "X-Lienthong-Recipient"
	HeaderSequence   = "X-Lienthong-Sequence"
	HeaderAttempt    = "X-Lienthong-Attempt"
	HeaderFormat     = "X-Lienthong-Format"
	HeaderIdemKey    = "Idempotency-Key"
)

// Pusher delivers by HTTP POST.
type Pusher struct {
	Client *http.Client // nil: a client with a 30 s timeout

	mu      sync.Mutex           // guards idle and refused
	idle    map[string]*pipeline // a pipelined connection per endpoint kept between runs (pipeline.go)
	refused map[string]refusal   // endpoints that could not be pipelined lately (pipeline.go)
}

// Deliver implements routing.Channel.
func (p *Pusher) Deliver(ctx context.Context, d routing.Delivery, open routing.BodyOpener) error {
	req, body, err := newRequest(ctx, d, open)
	if err != nil {
		return err
	}
	defer body.Close()
	resp, err := p.client().Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post to %s: %w", d.Endpoint, err)
	}
	defer resp.Body.Close()
	return answer(d.Endpoint, resp)
}

func (p *Pusher) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return defaultClient
}

// newRequest is the POST of d's original bytes with the push headers; the
// caller closes body once the request is written.
func newRequest(ctx context.Context, d routing.Delivery, open routing.BodyOpener) (*http.Request, io.Closer, error) {
	if d.Endpoint == "" {
		return nil, nil, &routing.PermanentError{Reason: "no webhook endpoint in the directory for " + d.Recipient}
	}
	body, err := open(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: open body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, body)
	if err != nil {
		body.Close()
		return nil, nil, &routing.PermanentError{Reason: "bad webhook endpoint", Err: err}
	}
	req.ContentLength = d.Size
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set(HeaderDocumentID, d.DocumentID)
	req.Header.Set(HeaderSender, d.Sender)
	req.Header.Set(HeaderRecipient, d.Recipient)
	req.Header.Set(HeaderSequence, strconv.FormatInt(d.Sequence, 10))
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	req.Header.Set(HeaderFormat, d.Format)
	req.Header.Set(HeaderIdemKey, d.IdempotencyKey)
	req.Header.Set("Digest", "sha-256="+hexToB64(d.SHA256))
	return req, body, nil
}

// maxAnswer bounds the answer body read (and discarded) after a push.
const maxAnswer = 64 << 10

// answer classifies the recipient's answer: 2xx delivered, 408, 429 and 5xx
// retried, any other status permanent. It reads the body (usually none) so
// that the connection can be reused.
func answer(endpoint string, resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook: %s answered %d: %s", endpoint, resp.StatusCode, snippet)
	default:
		return &routing.PermanentError{Reason: fmt.Sprintf("%s answered %d: %s", endpoint, resp.StatusCode, snippet)}
	}
}

// defaultClient keeps connections alive between pushes: the delivery stage
// has up to Lanes attempts in flight, many of them often to one host (organs
// that share a gateway), and http.DefaultTransport keeps only 2 idle
// connections per host, so the others would pay a new TCP and TLS handshake
// for every document.
var defaultClient = &http.Client{Timeout: 30 * time.Second, Transport: NewTransport()}

// NewTransport returns the transport of the default client: the defaults of
// http.DefaultTransport with MaxIdleConnsPerHost raised to 64, and a write
// buffer of 64 KB per connection instead of 4 KB: a body that fits goes out
// with its headers in one write, straight from the buffer. With the default,
// net/http fills 4 KB, flushes, and hands the rest to the TCP connection's
// ReadFrom, which (the body being an io.LimitReader, not a file) allocates a
// copy buffer of up to 32 KB for every push.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.WriteBufferSize = 64 << 10
	return t
}
