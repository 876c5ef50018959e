package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"lienthong/routing"
)

func opener(b []byte) routing.BodyOpener {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func TestPusherSendsHeadersAndClassifiesAnswers(t *testing.T) {
	for _, tc := range []struct {
		status    int
		wantErr   bool
		permanent bool
	}{
		{200, false, false}, {202, false, false}, {204, false, false},
		{408, true, false}, {429, true, false}, {500, true, false}, {503, true, false},
		{400, true, true}, {404, true, true}, {410, true, true},
	} {
		var got *http.Request
		var body []byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			body, _ = io.ReadAll(r.Body)
			w.WriteHeader(tc.status)
		}))
		d := routing.Delivery{DocumentID: "doc-1", Sender: "S", Recipient: "R", Endpoint: srv.URL, IdempotencyKey: "doc-1/R",
			Sequence: 7, Attempt: 2, Size: 5}
		err := (&Pusher{}).Deliver(context.Background(), d, opener([]byte("<a/>\n")))
		srv.Close()
		if (err != nil) != tc.wantErr || routing.IsPermanent(err) != tc.permanent {
			t.Errorf("status %d: err %v (permanent %v), want err %v permanent %v", tc.status, err, routing.IsPermanent(err), tc.wantErr, tc.permanent)
		}
		if got.Header.Get(HeaderIdemKey) != "doc-1/R" || got.Header.Get(HeaderSequence) != "7" ||
			got.Header.Get(HeaderDocumentID) != "doc-1" || string(body) != "<a/>\n" {
			t.Errorf("status %d: request headers %v body %q", tc.status, got.Header, body)
		}
	}
}

func TestPusherWithoutEndpointIsPermanent(t *testing.T) {
	err := (&Pusher{}).Deliver(context.Background(), routing.Delivery{Recipient: "R"}, opener(nil))
	if !routing.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
}

func TestSinkHonoursIdempotencyKey(t *testing.T) {
	s := &Sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/X", bytes.NewReader([]byte("<a/>")))
		req.Header.Set(HeaderIdemKey, "k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	if n := len(s.Received("X")); n != 1 {
		t.Fatalf("sink recorded %d, want 1", n)
	}
}
