package webhook

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/adapters/webhook/webhooktest"
	"lienthong/routing"
)

// pipeDelivery is push n of a test, with a body of its own.
func pipeDelivery(sink *webhooktest.Sink, n int64) (routing.Delivery, routing.BodyOpener) {
	body := []byte("<doc n=\"" + string(rune('a'+n%26)) + "\"/>")
	return routing.Delivery{DocumentID: "doc", Recipient: "000.00.00.R01", Endpoint: sink.URL,
		IdempotencyKey: "doc/R", Sequence: n, Attempt: 1, Size: int64(len(body)), SHA256: "00"}, opener(body)
}

// pushAll sends n pushes over one pipeline with up to window unanswered and
// returns each one's answer, in order.
func pushAll(t *testing.T, sink *webhooktest.Sink, n, window int) []error {
	t.Helper()
	return pushWith(t, &Pusher{}, sink, n, window)
}

// pushWith is pushAll through pusher.
func pushWith(t *testing.T, pusher *Pusher, sink *webhooktest.Sink, n, window int) []error {
	t.Helper()
	ctx := context.Background()
	p, err := pusher.Pipeline(ctx, sink.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []error
	sent := 0
	for len(out) < n {
		for sent < n && sent-len(out) < window {
			d, open := pipeDelivery(sink, int64(sent+1))
			if err := p.Send(ctx, d, open); err != nil {
				t.Fatalf("send %d: %v", sent+1, err)
			}
			sent++
		}
		out = append(out, p.Receive(ctx))
	}
	return out
}

// Pipelined pushes go out before the earlier ones are answered, on one
// connection, and reach the endpoint in order.
func TestPipelineWritesBeforeTheAnswers(t *testing.T) {
	sink := webhooktest.New(t)
	for i, err := range pushAll(t, sink, 20, 4) {
		if err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
	}
	if got := sink.Seqs(); !slices.Equal(got, webhooktest.Range(1, 20)) {
		t.Fatalf("endpoint read %v, want 1…20 in order", got)
	}
	if early := sink.Early(); early < 19 {
		t.Fatalf("%d of 20 pushes arrived before the answer to the one before, want at least 19 (pipelined)", early)
	}
	if c := sink.Conns(); c != 1 {
		t.Fatalf("%d connections, want 1", c)
	}
}

// Each answer is classified as Deliver classifies it, and a refusal in the
// middle does not disturb the answers after it.
func TestPipelineClassifiesEachAnswer(t *testing.T) {
	sink := webhooktest.New(t)
	sink.Status = webhooktest.Statuses(map[int64]int{3: http.StatusServiceUnavailable, 5: http.StatusNotFound})
	errs := pushAll(t, sink, 8, 8)
	for i, err := range errs {
		switch seq := i + 1; {
		case seq == 3:
			if err == nil || routing.IsPermanent(err) || errors.Is(err, routing.ErrUnanswered) {
				t.Errorf("push 3 (503): %v, want a retryable failure", err)
			}
		case seq == 5:
			if !routing.IsPermanent(err) {
				t.Errorf("push 5 (404): %v, want a permanent failure", err)
			}
		case err != nil:
			t.Errorf("push %d (204): %v", seq, err)
		}
	}
}

// When the endpoint hangs up, the pushes it read or not but did not answer
// are ErrUnanswered, not failures of the recipient.
func TestPipelineUnansweredAfterTheEndpointCloses(t *testing.T) {
	sink := webhooktest.New(t)
	sink.CloseAfter = 3
	errs := pushAll(t, sink, 6, 6)
	for i, err := range errs {
		if i < 3 && err != nil {
			t.Errorf("push %d: %v, want delivered", i+1, err)
		}
		if i >= 3 && !errors.Is(err, routing.ErrUnanswered) {
			t.Errorf("push %d: %v, want ErrUnanswered", i+1, err)
		}
	}
}

// An endpoint that cannot be parsed, or is reached through a proxy, is not
// pipelined.
func TestPipelineRefusesWhatItCannotPipeline(t *testing.T) {
	ctx := context.Background()
	if _, err := (&Pusher{}).Pipeline(ctx, "ftp://example.org/x"); !routing.IsPermanent(err) {
		t.Errorf("ftp endpoint: %v, want a permanent error", err)
	}
	sink := webhooktest.New(t)
	tr := NewTransport()
	tr.Proxy = func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy.example:3128") }
	if _, err := (&Pusher{Client: &http.Client{Transport: tr}}).Pipeline(ctx, sink.URL); err == nil {
		t.Error("an endpoint behind a proxy was pipelined")
	}
	if c := sink.Conns(); c != 0 {
		t.Errorf("%d connections to the endpoint behind a proxy, want 0", c)
	}
}

// Over TLS, with the transport's own configuration (here: trusting the test
// server's certificate), to a net/http server, which takes pipelined
// requests one after another: every push arrives, in order.
func TestPipelineOverTLSToNetHTTP(t *testing.T) {
	var mu sync.Mutex
	var seqs []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		seqs = append(seqs, r.Header.Get(HeaderSequence))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	ctx := context.Background()
	p, err := (&Pusher{Client: &http.Client{Transport: tr}}).Pipeline(ctx, srv.URL+"/push")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 12
	for i := range n {
		body := []byte("<doc/>")
		d := routing.Delivery{DocumentID: "doc", Recipient: "R", IdempotencyKey: "doc/R", Sequence: int64(i + 1),
			Size: int64(len(body)), SHA256: "00"}
		if err := p.Send(ctx, d, opener(body)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := p.Receive(ctx); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i + 1)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("server saw %v, want %v", seqs, want)
	}
}

// allDelivered fails the test unless every push of a round was delivered.
func allDelivered(t *testing.T, round int, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("round %d, push %d: %v", round, i+1, err)
		}
	}
}

// A connection whose requests were all answered is kept for the next run to
// the endpoint; one the endpoint closes, with Connection: close or silently
// while it is kept, is not used again.
func TestPipelineKeptBetweenRuns(t *testing.T) {
	t.Run("kept", func(t *testing.T) {
		sink, p := webhooktest.New(t), &Pusher{}
		allDelivered(t, 1, pushWith(t, p, sink, 5, 4))
		allDelivered(t, 2, pushWith(t, p, sink, 5, 4))
		if c := sink.Conns(); c != 1 {
			t.Fatalf("%d connections for two runs, want 1", c)
		}
		if got := sink.Seqs(); len(got) != 10 {
			t.Fatalf("endpoint read %v, want 10 pushes", got)
		}
	})
	t.Run("announced close", func(t *testing.T) {
		sink, p := webhooktest.New(t), &Pusher{}
		sink.CloseAfter = 3
		allDelivered(t, 1, pushWith(t, p, sink, 3, 4))
		allDelivered(t, 2, pushWith(t, p, sink, 3, 4))
		if c := sink.Conns(); c != 2 {
			t.Fatalf("%d connections, want 2 (the first one was closed by the endpoint)", c)
		}
	})
	t.Run("silent close while kept", func(t *testing.T) {
		sink, p := webhooktest.New(t), &Pusher{}
		sink.CloseAfter, sink.Silent = 3, true
		allDelivered(t, 1, pushWith(t, p, sink, 3, 4))
		deadline := time.Now().Add(5 * time.Second)
		for { // the reader notices the hang-up and drops the kept connection
			p.mu.Lock()
			n := len(p.idle)
			p.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a connection the endpoint closed is still kept")
			}
			time.Sleep(5 * time.Millisecond)
		}
		allDelivered(t, 2, pushWith(t, p, sink, 3, 4))
		if c := sink.Conns(); c != 2 {
			t.Fatalf("%d connections, want 2", c)
		}
	})
}

// An endpoint that cannot be dialled is not tried again for a while: its
// runs go one push at a time without a dial each.
func TestPipelineRefusalIsRemembered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/push"
	ln.Close() // nothing listens there now
	var dials atomic.Int32
	tr := NewTransport()
	tr.Proxy = nil
	inner := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return inner(ctx, network, addr)
	}
	p := &Pusher{Client: &http.Client{Transport: tr}}
	for i := range 3 {
		if _, err := p.Pipeline(context.Background(), endpoint); err == nil {
			t.Fatalf("call %d: a pipeline to an endpoint nobody listens on", i+1)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for 3 calls within %s, want 1", n, refuseFor)
	}
	p.mu.Lock()
	p.refused[endpoint] = refusal{err: errors.New("old"), until: time.Now().Add(-time.Second)}
	p.mu.Unlock()
	if _, err := p.Pipeline(context.Background(), endpoint); err == nil || dials.Load() != 2 {
		t.Fatalf("after the refusal expired: %v, %d dials, want a new dial", err, dials.Load())
	}
}

// A TLS endpoint that never answers the handshake does not hold the run
// longer than the transport's TLS handshake timeout.
func TestPipelineTLSHandshakeTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 8)
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	tr := NewTransport()
	tr.Proxy, tr.TLSHandshakeTimeout = nil, 200*time.Millisecond
	start := time.Now()
	_, err = (&Pusher{Client: &http.Client{Transport: tr}}).Pipeline(context.Background(), "https://"+ln.Addr().String()+"/push")
	if err == nil {
		t.Fatal("a pipeline over a handshake that never happened")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %s, want about the 200 ms handshake timeout", took)
	}
}

// An endpoint answering with endless headers does not make the hub read
// them into memory: past the budget of one answer the connection is given
// up, and the push is unanswered (it goes again one at a time, where
// net/http's own header limit applies).
func TestPipelineBoundsWhatOneAnswerReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		huge := "X-Padding: " + strings.Repeat("a", 2<<20) + "\r\n"
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n"+huge+"\r\n")
	}()
	tr := NewTransport()
	tr.Proxy = nil
	ctx := context.Background()
	p, err := (&Pusher{Client: &http.Client{Transport: tr}}).Pipeline(ctx, "http://"+ln.Addr().String()+"/push")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	body := []byte("<doc/>")
	if err := p.Send(ctx, routing.Delivery{DocumentID: "doc", Recipient: "R", IdempotencyKey: "doc/R", Sequence: 1,
		Size: int64(len(body)), SHA256: "00"}, opener(body)); err != nil {
		t.Fatal(err)
	}
	if err := p.Receive(ctx); !errors.Is(err, routing.ErrUnanswered) || !strings.Contains(err.Error(), errAnswerTooLarge.Error()) {
		t.Fatalf("an answer with 2 MiB of headers: %v, want ErrUnanswered (answer too large)", err)
	}
}
