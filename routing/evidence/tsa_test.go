package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/evidence/tsasim"
)

// The timestamper stores an RFC 3161 token over the newest checkpoint that
// verifies offline; a TSA that fails, or answers a token for something else,
// stores nothing.
func TestTimestamper(t *testing.T) {
	e := newEnv(t)
	doc := e.accept(t, "A", "<a/>")
	e.addEvents(t, doc, 3)
	e.drain(t)
	c, _ := e.checkpointer(t)
	sc := e.sign(t, c)

	sim, err := tsasim.New()
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(sim)
	t.Cleanup(good.Close)
	// other answers with a genuine token from the simulator, but over other data.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		sum := sha256.Sum256([]byte("something else"))
		req := timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Certificates: true}
		der, _ := req.Marshal()
		fwd, _ := http.NewRequest(http.MethodPost, good.URL, bytes.NewReader(der))
		fwd.Header.Set("Content-Type", "application/timestamp-query")
		resp, err := http.DefaultClient.Do(fwd)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/timestamp-reply")
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(other.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not DER"))
	}))
	t.Cleanup(garbage.Close)

	for _, tc := range []struct {
		name, url, wantErr string
	}{
		{"TSA down", failing.URL, "HTTP 503"},
		{"not a reply", garbage.URL, "TSA"},
		{"token over other data", other.URL, "does not cover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := NewTimestamper(e.pool, TimestamperConfig{URL: tc.url, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ok, err := ts.StampLatest(context.Background())
			if ok || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("StampLatest: %v %v, want error %q", ok, err, tc.wantErr)
			}
			if n := count(t, e.pool, `SELECT count(*) FROM log_timestamps`); n != 0 {
				t.Fatalf("%d timestamps stored", n)
			}
		})
	}

	ts, err := NewTimestamper(e.pool, TimestamperConfig{URL: good.URL})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ts.StampLatest(context.Background()); !ok || err != nil {
		t.Fatalf("StampLatest: %v %v", ok, err)
	}
	if ok, err := ts.StampLatest(context.Background()); ok || err != nil {
		t.Fatalf("stamped the same checkpoint twice: %v %v", ok, err)
	}
	var token []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT token FROM log_timestamps WHERE size = $1`, int64(sc.Size)).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if _, err := logverify.VerifyTimestampToken(token, []byte(sc.Note)); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if _, err := logverify.VerifyTimestampToken(token, []byte(sc.Note+" ")); err == nil {
		t.Fatal("token verifies over other bytes")
	}
	bad := append([]byte(nil), token...)
	bad[len(bad)-10] ^= 1
	if _, err := logverify.VerifyTimestampToken(bad, []byte(sc.Note)); err == nil {
		t.Fatal("a changed token verifies")
	}
}
