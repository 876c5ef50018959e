package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"lienthong/routing"
)

// Pushes to one host from several lanes at once reuse their connections,
// also when the endpoint answers with more than the 512 bytes kept for the
// error message.
func TestPusherKeepsConnectionsAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("ok ", 1000)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	const lanes, each = 8, 20
	p := &Pusher{Client: &http.Client{Transport: NewTransport()}}
	var wg sync.WaitGroup
	for range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				d := routing.Delivery{DocumentID: "d", Recipient: "R", Endpoint: srv.URL, IdempotencyKey: "d/R", Size: 4}
				if err := p.Deliver(context.Background(), d, opener([]byte("<a/>"))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n > 2*lanes { // dials that race at the start may add a few
		t.Fatalf("%d connections for %d pushes from %d lanes, want at most %d", n, lanes*each, lanes, 2*lanes)
	}
}
