// Package webhooktest is a push endpoint for tests of pipelined pushes: a
// plain HTTP/1.1 server, written on a raw listener so that it can tell
// whether a client pipelines. It reads requests as they come and answers them
// in order, one at a time; it answers the oldest request in hand at once when
// the next one has already arrived, and after Quiet when none has (a client
// pushing one at a time waits Quiet per push). Early counts the requests that
// arrived while an earlier one on their connection was still unanswered:
// zero unless the client pipelines.
package webhooktest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Sink is the endpoint. Set its fields before the first request.
type Sink struct {
	URL string
	// Quiet is how long a lone request waits for a next one before it is
	// answered; default 100 ms.
	Quiet time.Duration
	// Status is the answer to the push with this X-Lienthong-Sequence;
	// nil: 204 to every push.
	Status func(seq int64) int
	// CloseAfter makes the sink hang up after answering this many requests
	// on a connection (the last answer says Connection: close); 0: never.
	CloseAfter int
	// Silent makes that hang-up unannounced: no Connection: close.
	Silent bool

	ln    net.Listener
	mu    sync.Mutex
	seqs  []int64 // X-Lienthong-Sequence of every request read, in order
	early int
	conns int
}

// New starts a sink closed at the end of the test.
func New(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{URL: "http://" + ln.Addr().String() + "/push", Quiet: 100 * time.Millisecond, ln: ln}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

// Seqs returns the sequence numbers of the requests read, in order (a
// request read but not answered counts too).
func (s *Sink) Seqs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.seqs...)
}

// Early returns how many requests arrived while an earlier one on their
// connection was unanswered.
func (s *Sink) Early() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.early
}

// Conns returns how many connections were accepted.
func (s *Sink) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Sink) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		go s.conn(c)
	}
}

func (s *Sink) conn(c net.Conn) {
	defer c.Close()
	// The sequence numbers of the requests, read as they arrive.
	reqs := make(chan int64, 256)
	go func() {
		defer close(reqs)
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			seq, _ := strconv.ParseInt(r.Header.Get("X-Lienthong-Sequence"), 10, 64)
			reqs <- seq
		}
	}()
	var pending []int64
	answered := 0
	take := func(seq int64) {
		s.mu.Lock()
		s.seqs = append(s.seqs, seq)
		if len(pending) > 0 {
			s.early++
		}
		s.mu.Unlock()
		pending = append(pending, seq)
	}
	for {
		if len(pending) == 0 {
			r, ok := <-reqs
			if !ok {
				return
			}
			take(r)
		}
		if len(pending) == 1 { // wait a little for the next one
			select {
			case r, ok := <-reqs:
				if ok {
					take(r)
				}
			case <-time.After(s.Quiet):
			}
		}
		seq := pending[0]
		pending = pending[1:]
		status := http.StatusNoContent
		if s.Status != nil {
			status = s.Status(seq)
		}
		answered++
		closing := s.CloseAfter > 0 && answered >= s.CloseAfter
		hdr := ""
		if status != http.StatusNoContent {
			hdr = "Content-Length: 0\r\n"
		}
		if closing && !s.Silent {
			hdr += "Connection: close\r\n"
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%s\r\n", status, http.StatusText(status), hdr); err != nil || closing {
			return
		}
	}
}

// Statuses is a Sink.Status answering the given statuses by sequence number
// and 204 to the others.
func Statuses(by map[int64]int) func(seq int64) int {
	return func(seq int64) int {
		if s, ok := by[seq]; ok {
			return s
		}
		return http.StatusNoContent
	}
}

// Range is the sequence numbers from…to, for comparing with Seqs.
func Range(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
