package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"lienthong/adapters/webhook"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Demo-style organ codes used by the tests.
const (
	orgA = "000.00.00.C01" // push
	orgB = "000.00.00.C02" // pull
	orgC = "000.00.00.C03" // push
	orgD = "000.00.00.C04" // pull
)

// testHub is a whole hub in this process: real PostgreSQL, the embedded
// broker over TCP, the API on a loopback port, and a webhook sink.
type testHub struct {
	t       *testing.T
	api     string
	l       *ledger.Ledger
	broker  *embedbroker.Broker
	sink    *webhook.Sink
	tokens  map[string]string
	auditor string
	prefix  string
}

func startHub(t *testing.T, opts ...func(*Config)) *testHub {
	t.Helper()
	return startHubOn(t, "", nil, opts...)
}

// startHubOn is startHub on a given database and broker (for the outage
// tests, which stop and start them); "" and nil mean fresh ones.
func startHubOn(t *testing.T, dbURL string, broker *embedbroker.Broker, opts ...func(*Config)) *testHub {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and the broker")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if dbURL == "" {
		dbURL = pgtest.NewDatabase(t)
	}
	if broker == nil {
		broker = embedbroker.StartForTest(t)
	}
	sink := &webhook.Sink{}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	if err := Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	pool, err := ledger.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Config{})
	h := &testHub{t: t, l: l, broker: broker, sink: sink, tokens: map[string]string{}, prefix: "lt"}
	for _, o := range []ledger.Organ{
		{Code: orgA, Name: "Văn phòng Quốc hội (test)", Channel: "push", Endpoint: sinkSrv.URL + "/" + orgA},
		{Code: orgB, Name: "Ủy ban Pháp luật (test)", Channel: "pull"},
		{Code: orgC, Name: "Ủy ban Kinh tế (test)", Channel: "push", Endpoint: sinkSrv.URL + "/" + orgC},
		{Code: orgD, Name: "Đoàn ĐBQH Hà Nội (test)", Channel: "pull"},
	} {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
		tok := "tok-" + o.Code
		h.tokens[o.Code] = tok
		if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOrgan, Organ: o.Code}, tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.auditor = "tok-auditor"
	if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleAuditor, Name: "auditor"}, h.auditor, nil); err != nil {
		t.Fatal(err)
	}

	addrCh := make(chan net.Addr, 1)
	done := make(chan error, 1)
	cfg := Config{DatabaseURL: dbURL, Brokers: broker.Addrs(), Listen: "127.0.0.1:0", MaxBody: 1 << 20,
		OnListen: func(a net.Addr) { addrCh <- a }}
	for _, o := range opts {
		o(&cfg)
	}
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hub stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("hub did not stop within 30s")
		}
	})
	select {
	case a := <-addrCh:
		h.api = scheme + a.String()
	case err := <-done:
		t.Fatalf("hub failed to start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not listen within 30s")
	}
	return h
}

// call makes an API request and decodes a JSON answer into out (if non-nil).
func (h *testHub) call(method, path, token string, body []byte, out any) int {
	h.t.Helper()
	req, err := http.NewRequest(method, h.api+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/xml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: answer %d is not JSON: %v: %s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

type docJSON struct {
	ID         string `json:"id"`
	Sender     string `json:"sender"`
	DocumentID string `json:"document_id"`
	SHA256     string `json:"sha256"`
	Recipients []struct {
		Organ    string `json:"organ"`
		State    string `json:"state"`
		Sequence *int64 `json:"sequence"`
	} `json:"recipients"`
}

// waitStates polls a document until every recipient is in the wanted state.
func (h *testHub) waitStates(id, token string, want map[string]string) docJSON {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var d docJSON
	for time.Now().Before(deadline) {
		d = docJSON{}
		if st := h.call("GET", "/v1/documents/"+id, token, nil, &d); st != 200 {
			h.t.Fatalf("GET document: %d", st)
		}
		ok := len(d.Recipients) == len(want)
		for _, r := range d.Recipients {
			if want[r.Organ] != r.State {
				ok = false
			}
		}
		if ok {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("document %s: recipients %+v, want %v", id, d.Recipients, want)
	return d
}

// count returns the number of rows of a ledger table.
func (h *testHub) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.l.Pool().QueryRow(context.Background(), fmt.Sprintf("SELECT count(*) FROM %s", table)).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// documentEvents counts the events of documents (admin events, which the
// hub writes itself at start, are left out).
func (h *testHub) documentEvents() int {
	h.t.Helper()
	var n int
	if err := h.l.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE document_id IS NOT NULL`).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
