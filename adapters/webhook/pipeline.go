package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"lienthong/routing"
)

// Pipelined pushes (routing.Pipeliner): the requests to one endpoint go out
// one after another on one HTTP/1.1 connection, each written before the
// answers to the earlier ones are read; the endpoint reads and answers them in
// the order they were written (RFC 9112 §9.3.2), so it takes them in the same
// order as one push at a time. A reader goroutine reads the answers in order.
//
// When the connection breaks or the endpoint closes it (Connection: close,
// or an endpoint that does not take pipelined requests and hangs up), every
// request without an answer gets routing.ErrUnanswered: the delivery stage
// pushes those again one at a time, under the same idempotency keys.
//
// The connection is dialled as the Pusher's transport would dial it (its
// DialContext and TLS configuration, HTTP/1.1 only). An endpoint reached
// through a proxy is not pipelined. A connection closed in good order (every
// request answered, none refused) is kept for the next run to the same
// endpoint, one per endpoint, so that a run does not pay a TCP and TLS
// handshake; it is dropped when the endpoint closes it, when anything comes
// from it unasked, or pipeTimeout after its last request.

// pipeTimeout bounds writing one request and waiting for one answer, as the
// default client's timeout bounds one push.
const pipeTimeout = 30 * time.Second

// refuseFor is how long an endpoint that could not be dialled for
// pipelining (down, or a TLS server that will not speak HTTP/1.1) is not
// tried again: its runs go one push at a time meanwhile, without a dial and
// a log line each.
const refuseFor = time.Minute

// refusal is why and until when an endpoint is not pipelined.
type refusal struct {
	err   error
	until time.Time
}

// Pipeline implements routing.Pipeliner.
func (p *Pusher) Pipeline(ctx context.Context, endpoint string) (routing.Pipeline, error) {
	if pl := p.takeIdle(endpoint); pl != nil {
		return pl, nil
	}
	if err := p.refusedNow(endpoint); err != nil {
		return nil, err
	}
	pl, err := p.dialPipeline(ctx, endpoint)
	if err != nil {
		if ctx.Err() == nil && !routing.IsPermanent(err) {
			p.refuse(endpoint, err)
		}
		return nil, err
	}
	return pl, nil
}

// refusedNow is the error of a recent failure to pipeline to endpoint, or nil.
func (p *Pusher) refusedNow(endpoint string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.refused[endpoint]
	if !ok {
		return nil
	}
	if time.Now().After(r.until) {
		delete(p.refused, endpoint)
		return nil
	}
	return fmt.Errorf("%w (not pipelined until %s)", r.err, r.until.Format(time.TimeOnly))
}

func (p *Pusher) refuse(endpoint string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused == nil {
		p.refused = map[string]refusal{}
	}
	p.refused[endpoint] = refusal{err: err, until: time.Now().Add(refuseFor)}
}

// dialPipeline opens a pipelined connection to endpoint.
func (p *Pusher) dialPipeline(ctx context.Context, endpoint string) (*pipeline, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &routing.PermanentError{Reason: "bad webhook endpoint " + endpoint, Err: err}
	}
	t, _ := p.client().Transport.(*http.Transport)
	if t == nil {
		return nil, errors.New("webhook: pipelining needs an *http.Transport")
	}
	if t.Proxy != nil {
		probe := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}
		if pu, err := t.Proxy(probe); err != nil || pu != nil {
			return nil, fmt.Errorf("webhook: %s is reached through a proxy: not pipelined", endpoint)
		}
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook: dial %s: %w", endpoint, err)
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		timeout := t.TLSHandshakeTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("webhook: TLS handshake with %s: %w", endpoint, err)
		}
		conn = tc
	}
	pl := &pipeline{owner: p, endpoint: endpoint, conn: conn, bw: bufio.NewWriterSize(conn, 64<<10),
		sent: make(chan *http.Request, 1024), answers: make(chan error, 1024), done: make(chan struct{})}
	headers := t.MaxResponseHeaderBytes
	if headers <= 0 {
		headers = defaultAnswerHeaders
	}
	// What one answer may pull from the connection: its headers, the part
	// of its body that answer reads and one byte more, and a read-ahead.
	rd := &budgetReader{r: conn, per: headers + maxAnswer + 1 + readAhead}
	go pl.read(rd, bufio.NewReaderSize(rd, readAhead))
	return pl, nil
}

// defaultAnswerHeaders bounds the headers of one answer on a pipelined
// connection when the transport sets no MaxResponseHeaderBytes; a push's
// answer is normally a status line and a few headers.
const defaultAnswerHeaders = 1 << 20

// readAhead is the read buffer of a pipelined connection.
const readAhead = 16 << 10

// errAnswerTooLarge is what a pipelined connection reads once an answer has
// pulled more than its budget: the endpoint is sending far more than an
// answer to a push, and the connection is given up.
var errAnswerTooLarge = errors.New("answer too large")

// budgetReader reads from r at most per bytes between two resets.
type budgetReader struct {
	r    io.Reader
	per  int64
	left int64
}

func (b *budgetReader) reset() { b.left = b.per }

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errAnswerTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// takeIdle returns the connection kept for endpoint, if it is still good.
func (p *Pusher) takeIdle(endpoint string) *pipeline {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.idle[endpoint]
	if pl == nil {
		return nil
	}
	delete(p.idle, endpoint)
	pl.idle = false
	if pl.dead.Load() {
		pl.shut()
		return nil
	}
	return pl
}

// keep puts pl aside for the next run to its endpoint; false when one is
// kept already.
func (p *Pusher) keep(pl *pipeline) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle[pl.endpoint] != nil {
		return false
	}
	if p.idle == nil {
		p.idle = map[string]*pipeline{}
	}
	p.idle[pl.endpoint], pl.idle = pl, true
	return true
}

// forget removes pl from the kept connections and reports whether it was
// kept (idle), i.e. no run holds it.
func (p *Pusher) forget(pl *pipeline) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !pl.idle || p.idle[pl.endpoint] != pl {
		return false
	}
	delete(p.idle, pl.endpoint)
	pl.idle = false
	return true
}

// pipeline is one pipelined connection.
type pipeline struct {
	owner    *Pusher
	endpoint string
	conn     net.Conn
	bw       *bufio.Writer
	pending  int                // sent and not received yet (the caller's count)
	inflight atomic.Int64       // written and not answered yet (the reader's count)
	sent     chan *http.Request // to the reader, in the order written
	answers  chan error         // from the reader, in the same order
	done     chan struct{}      // closed by shut: the reader stops
	once     sync.Once
	broken   error       // set when a write failed: nothing more goes out
	dead     atomic.Bool // the connection cannot take another request
	idle     bool        // kept by owner between runs; guarded by owner.mu
}

// Send implements routing.Pipeline.
func (pl *pipeline) Send(ctx context.Context, d routing.Delivery, open routing.BodyOpener) error {
	if pl.broken != nil {
		return pl.broken
	}
	if pl.pending == cap(pl.sent) {
		return errors.New("webhook: too many pipelined requests without an answer")
	}
	d.Endpoint = pl.endpoint
	req, body, err := newRequest(ctx, d, open)
	if err != nil {
		return err
	}
	defer body.Close()
	pl.sent <- req // the reader needs it before the answer can arrive
	pl.pending++
	pl.inflight.Add(1)
	_ = pl.conn.SetWriteDeadline(time.Now().Add(pipeTimeout))
	if err := req.Write(pl.bw); err != nil {
		pl.broken = fmt.Errorf("webhook: post to %s: %w", pl.endpoint, err)
		_ = pl.conn.Close() // the reader answers ErrUnanswered from now on
		return pl.broken
	}
	if err := pl.bw.Flush(); err != nil {
		pl.broken = fmt.Errorf("webhook: post to %s: %w", pl.endpoint, err)
		_ = pl.conn.Close()
		return pl.broken
	}
	// The answer is due within pipeTimeout (the reader waits for it
	// without a deadline of its own); a connection kept idle ends then.
	_ = pl.conn.SetReadDeadline(time.Now().Add(pipeTimeout))
	return nil
}

// Receive implements routing.Pipeline.
func (pl *pipeline) Receive(ctx context.Context) error {
	if pl.pending == 0 {
		return errors.New("webhook: nothing sent to receive")
	}
	select {
	case err := <-pl.answers:
		pl.pending--
		return err
	case <-ctx.Done():
		_ = pl.conn.Close() // what was sent stays unanswered
		return fmt.Errorf("webhook: %w", ctx.Err())
	}
}

// Close implements routing.Pipeline. A connection in good order is kept
// for the next run to the endpoint.
func (pl *pipeline) Close() error {
	if pl.pending == 0 && pl.broken == nil && !pl.dead.Load() && pl.owner != nil && pl.owner.keep(pl) {
		return nil
	}
	return pl.shut()
}

// shut closes the connection and stops the reader.
func (pl *pipeline) shut() error {
	var err error
	pl.once.Do(func() {
		close(pl.done)
		err = pl.conn.Close()
	})
	return err
}

// read reads the answers in the order of the requests sent, each within the
// budget of what one answer may pull from the connection. After the
// connection broke, an answer overran its budget, or the endpoint announced
// it closes, every later request is answered ErrUnanswered. Between answers it waits for the next bytes, so
// that it notices at once an endpoint closing a connection kept idle.
func (pl *pipeline) read(budget *budgetReader, br *bufio.Reader) {
	var gone error
	end := func(err error) {
		gone = err
		pl.dead.Store(true)
	}
	for {
		if gone == nil {
			budget.reset() // for the next answer
			_, err := br.Peek(1)
			switch {
			case err != nil:
				end(fmt.Errorf("webhook: %s: %w (%v)", pl.endpoint, routing.ErrUnanswered, err))
			case pl.inflight.Load() == 0:
				end(fmt.Errorf("webhook: %s sent an answer to no request: %w", pl.endpoint, routing.ErrUnanswered))
			}
			if gone != nil && pl.owner != nil && pl.owner.forget(pl) {
				pl.shut() // idle: no run holds it
				return
			}
		}
		var req *http.Request
		select {
		case req = <-pl.sent:
		case <-pl.done:
			return
		}
		if gone != nil {
			pl.answers <- gone
			continue
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			end(fmt.Errorf("webhook: %s: %w (%v)", pl.endpoint, routing.ErrUnanswered, err))
			pl.answers <- gone
			continue
		}
		res := answer(pl.endpoint, resp)
		// The next answer starts after the whole body; one longer than
		// answer reads leaves the stream at an unknown place.
		if n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1)); n > 0 || err != nil || resp.Close {
			end(fmt.Errorf("webhook: %s closed the connection: %w", pl.endpoint, routing.ErrUnanswered))
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusContinue || resp.StatusCode == http.StatusSwitchingProtocols {
			res = fmt.Errorf("webhook: %s answered %d to a pipelined push: %w", pl.endpoint, resp.StatusCode, routing.ErrUnanswered)
			end(res)
		}
		pl.inflight.Add(-1)
		pl.answers <- res
	}
}
