package axis_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axissim"
)

// Synthetic systems and organs (never real keys).
const (
	organNA  = "000.00.00.C01"
	organH41 = "000.00.00.H41"
	organG22 = "000.00.00.G22"
)

var testSystems = []axissim.System{
	{ID: "lt.quochoi", Secret: "test-secret-na", Organ: organNA},
	{ID: "sys.h41", Secret: "test-secret-h41", Organ: organH41},
	{ID: "sys.g22", Secret: "test-secret-g22", Organ: organG22},
}

var testAgencies = []axis.Agency{
	{ID: "1", Code: organNA, Name: "Văn phòng Quốc hội", Mail: "vpqh@example.test"},
	{ID: "2", PID: "1", Code: organH41, OldCode: "H41", Name: "UBND tỉnh Nghệ An"},
	{ID: "3", Code: organG22, OldCode: "G22", Name: "Văn phòng Chính phủ"},
}

// env is a simulator on a real loopback listener (httptest) plus a log of
// every request it received, per operation.
type env struct {
	sim *axissim.Server
	url string

	mu      sync.Mutex // guards headers and calls
	headers []http.Header
	calls   map[string]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{calls: map[string]int{}}
	e.sim = axissim.New(axissim.Config{Systems: testSystems, Agencies: testAgencies})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.headers = append(e.headers, r.Header.Clone())
		e.calls[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]]++
		e.mu.Unlock()
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.sim.Close()
		srv.Close()
	})
	e.url = srv.URL
	return e
}

func (e *env) callCount(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

// client returns a Client for the i-th test system, with fast retries.
func (e *env) client(t *testing.T, i int, tweak ...func(*axis.Config)) *axis.Client {
	t.Helper()
	cfg := axis.Config{
		Endpoint:    e.url,
		SystemID:    testSystems[i].ID,
		Secret:      testSystems[i].Secret,
		Timeout:     5 * time.Second,
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := axis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertNoRefusals checks that the simulator refused nothing and that every
// request it received passes a fresh Verifier too (all signatures valid, no
// two requests with the same systemid+timestamp+hash).
func (e *env) assertNoRefusals(t *testing.T) {
	t.Helper()
	if r := e.sim.Refusals(); len(r) != 0 {
		t.Fatalf("simulator refused %d requests, first: %v", len(r), r[0].Err)
	}
	secrets := map[string]string{}
	for _, s := range testSystems {
		secrets[s.ID] = s.Secret
	}
	var v axis.Verifier
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, h := range e.headers {
		if _, err := v.VerifyHeaders(h, func(id string) (string, bool) { s, ok := secrets[id]; return s, ok },
			time.Now(), time.Minute); err != nil {
			t.Fatalf("request %d does not verify: %v", i, err)
		}
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
