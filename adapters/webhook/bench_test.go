package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"lienthong/routing"
)

// BenchmarkPush measures one push of a 20 KB body over a kept-alive
// connection: the sender's side (allocations are the hub's, the server's
// are the test sink's and count too).
func BenchmarkPush(b *testing.B) {
	d, open := benchPush(b)
	p := &Pusher{}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := p.Deliver(context.Background(), d, open); err != nil {
			b.Fatal(err)
		}
	}
}

// A push of a 20 KB body does not allocate a copy buffer for it: with the
// default 4 KB write buffer net/http handed most of the body to the TCP
// connection's ReadFrom, which allocated up to 32 KB per push (about 28 KB
// per push in all, sink included; now about 10 KB).
func TestPushDoesNotAllocateACopyBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	body := make([]byte, 20<<10)
	d := routing.Delivery{DocumentID: "doc", Recipient: "R", Endpoint: srv.URL, IdempotencyKey: "doc/R",
		Size: int64(len(body)), SHA256: "00"}
	p := &Pusher{}
	open := opener(body)
	push := func() {
		if err := p.Deliver(context.Background(), d, open); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 { // the connection and the pools are warm
		push()
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		push()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 16<<10 {
		t.Fatalf("%d bytes allocated per push of a %d-byte body (sink included), want at most %d", per, len(body), 16<<10)
	}
}

// BenchmarkPipelinedPush is BenchmarkPush over one pipelined connection with
// up to 8 pushes unanswered (Pusher.Pipeline), to the same kind of sink.
func BenchmarkPipelinedPush(b *testing.B) {
	d, open := benchPush(b)
	ctx := context.Background()
	pl, err := (&Pusher{}).Pipeline(ctx, d.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	defer pl.Close()
	const window = 8
	b.ReportAllocs()
	b.ResetTimer()
	sent, answered := 0, 0
	for answered < b.N {
		for sent < b.N && sent-answered < window {
			if err := pl.Send(ctx, d, open); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		if err := pl.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		answered++
	}
}

// benchPush is the push of a 20 KB body that the push benchmarks make, to a
// sink that reads it and answers 204.
func benchPush(b *testing.B) (routing.Delivery, routing.BodyOpener) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	body := make([]byte, 20<<10)
	return routing.Delivery{DocumentID: "00000000-0000-0000-0000-000000000001", Sender: "000.00.00.S01",
			Recipient: "000.00.00.R01", Endpoint: srv.URL, IdempotencyKey: "k", Sequence: 7, Attempt: 1,
			Size: int64(len(body)), SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Format: "edxml"},
		opener(body)
}
