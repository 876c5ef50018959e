package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lienthong/adapters/webhook"
	"lienthong/routing/delivery"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/pglocal"
)

// gate is a push endpoint in front of a Sink: it answers status (when not
// 200) and can hold requests until released.
type gate struct {
	sink   webhook.Sink
	status atomic.Int32
	hits   atomic.Int32
	mu     sync.Mutex
	hold   chan struct{} // non-nil: requests wait until it is closed
	srv    *httptest.Server
}

func newGate(t *testing.T, status int) *gate {
	g := &gate{}
	g.status.Store(int32(status))
	g.srv = httptest.NewServer(g)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.hits.Add(1)
	g.mu.Lock()
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if st := int(g.status.Load()); st != http.StatusOK {
		http.Error(w, "gate says "+http.StatusText(st), st)
		return
	}
	g.sink.ServeHTTP(w, r)
}

// point moves organ's push endpoint to the gate.
func (h *testHub) point(organ string, g *gate) {
	h.t.Helper()
	o, err := h.l.Organ(context.Background(), organ)
	if err != nil {
		h.t.Fatal(err)
	}
	o.Endpoint = g.srv.URL + "/" + organ
	if err := h.l.UpsertOrgan(context.Background(), o); err != nil {
		h.t.Fatal(err)
	}
}

func (h *testHub) submit(from string, to []string, number string) string {
	h.t.Helper()
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[from], newDoc(from, to, number), &sub); st != http.StatusAccepted {
		h.t.Fatalf("submit %s: status %d", number, st)
	}
	return sub.ID
}

func (h *testHub) deliveryID(doc, recp string) int64 {
	h.t.Helper()
	var id int64
	if err := h.l.Pool().QueryRow(context.Background(), `SELECT id FROM deliveries WHERE document_id = $1 AND recipient = $2`,
		doc, recp).Scan(&id); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// Dead letters end to end: a permanent refusal makes the delivery dead at
// once, with a message on lt.dead keyed by the recipient (read by kcat); the
// operator lists, inspects and replays it, alone or in bulk; organs and the
// auditor may not; bad requests are refused with a code.
func TestDeadLettersAndOperatorReplay(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()
	g := newGate(t, http.StatusGone)
	h.point(orgC, g)
	op := "tok-operator"
	if err := h.l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOperator, Name: "ops"}, op, nil); err != nil {
		t.Fatal(err)
	}
	id1 := h.submit(orgA, []string{orgC}, "701")
	h.waitStates(id1, h.tokens[orgA], map[string]string{orgC: "dead"})
	if n := g.hits.Load(); n != 1 {
		t.Fatalf("a permanent refusal was attempted %d times", n)
	}
	del1 := h.deliveryID(id1, orgC)

	if _, err := exec.LookPath("kcat"); err == nil {
		waitFor(t, "the lt.dead message", 60*time.Second, func() bool {
			out, err := exec.Command("kcat", "-C", "-b", h.broker.Addrs()[0], "-t", "lt.dead", "-o", "beginning", "-e", "-q",
				"-f", "%k\t%s\n").CombinedOutput()
			if err != nil {
				return false
			}
			for _, line := range strings.Split(string(out), "\n") {
				k, v, _ := strings.Cut(line, "\t")
				if k == orgC && strings.Contains(v, id1) && strings.Contains(v, "410") {
					return true
				}
			}
			return false
		})
	}

	for _, tc := range []struct {
		method, path, token string
		body                string
		status              int
		code                string
	}{
		{"GET", "/v1/admin/deliveries?state=dead", h.tokens[orgA], "", 403, "forbidden"},
		{"GET", "/v1/admin/deliveries?state=dead", h.auditor, "", 403, "forbidden"},
		{"POST", fmt.Sprintf("/v1/admin/deliveries/%d/replay", del1), h.tokens[orgC], "", 403, "forbidden"},
		{"GET", "/v1/admin/deliveries", "", "", 401, "unauthenticated"},
		{"GET", "/v1/admin/deliveries?state=lost", op, "", 400, "bad_request"},
		{"GET", "/v1/admin/deliveries?from=yesterday", op, "", 400, "bad_request"},
		{"GET", "/v1/admin/deliveries?limit=5000", op, "", 400, "bad_request"},
		{"GET", "/v1/admin/deliveries/abc", op, "", 400, "bad_request"},
		{"GET", "/v1/admin/deliveries/999999", op, "", 404, "not_found"},
		{"POST", "/v1/admin/deliveries/999999/replay", op, "", 404, "not_found"},
		{"POST", "/v1/admin/deliveries/replay", op, `{}`, 400, "bad_request"},
		{"POST", "/v1/admin/deliveries/replay", op, `{"organ":"x","surprise":1}`, 400, "bad_request"},
		{"POST", "/v1/admin/deliveries/replay", op, `{"from":"2026-12-02T00:00:00Z","to":"2026-12-01T00:00:00Z"}`, 400, "bad_request"},
		{"POST", "/v1/admin/deliveries/replay", op, `not json`, 400, "bad_request"},
	} {
		var p struct{ Code string }
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		if st := h.call(tc.method, tc.path, tc.token, body, &p); st != tc.status || p.Code != tc.code {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, st, p.Code, tc.status, tc.code)
		}
	}
	if st := h.call("GET", "/v1/documents/"+id1, h.tokens[orgA], nil, nil); st != 200 {
		t.Fatal(st)
	}
	if g.hits.Load() != 1 {
		t.Fatal("a refused request replayed something")
	}

	var list struct {
		Deliveries []ledger.DeliveryRow `json:"deliveries"`
	}
	if st := h.call("GET", "/v1/admin/deliveries?state=dead&organ="+orgC, op, nil, &list); st != 200 ||
		len(list.Deliveries) != 1 || list.Deliveries[0].ID != del1 || !strings.Contains(list.Deliveries[0].LastError, "410") {
		t.Fatalf("list dead: %d %+v", st, list)
	}
	var one struct {
		Delivery ledger.DeliveryRow `json:"delivery"`
		Events   []ledger.Event     `json:"events"`
	}
	if st := h.call("GET", fmt.Sprintf("/v1/admin/deliveries/%d", del1), op, nil, &one); st != 200 ||
		one.Delivery.State != "dead" || one.Events[len(one.Events)-1].Kind != "dead" {
		t.Fatalf("inspect: %d %+v", st, one)
	}

	// The recipient is fixed; the operator replays the one dead letter.
	g.status.Store(http.StatusOK)
	if st := h.call("POST", fmt.Sprintf("/v1/admin/deliveries/%d/replay", del1), op, nil, nil); st != http.StatusAccepted {
		t.Fatalf("replay: %d", st)
	}
	h.waitStates(id1, h.tokens[orgA], map[string]string{orgC: "delivered"})
	var p struct{ Code string }
	if st := h.call("POST", fmt.Sprintf("/v1/admin/deliveries/%d/replay", del1), op, nil, &p); st != 409 || p.Code != "not_dead" {
		t.Fatalf("replaying a delivered delivery: %d %q", st, p.Code)
	}
	h.call("GET", fmt.Sprintf("/v1/admin/deliveries/%d", del1), op, nil, &one)
	kinds := []string{}
	for _, e := range one.Events {
		kinds = append(kinds, e.Kind)
		if e.Kind == "replayed" && !strings.Contains(string(e.Detail), "ops#") {
			t.Errorf("replay event does not name the operator: %s", e.Detail)
		}
	}
	if got := strings.Join(kinds, " "); got != "routed delivering dead replayed delivering delivered" {
		t.Errorf("events: %s", got)
	}

	// Bulk: two more dead letters to C, one to A; replay C's by organ.
	g.status.Store(http.StatusBadRequest)
	gA := newGate(t, http.StatusBadRequest)
	h.point(orgA, gA)
	id2, id3 := h.submit(orgA, []string{orgC}, "702"), h.submit(orgA, []string{orgC}, "703")
	id4 := h.submit(orgC, []string{orgA}, "704")
	h.waitStates(id2, h.tokens[orgA], map[string]string{orgC: "dead"})
	h.waitStates(id3, h.tokens[orgA], map[string]string{orgC: "dead"})
	h.waitStates(id4, h.tokens[orgC], map[string]string{orgA: "dead"})
	g.status.Store(http.StatusOK)
	var res struct{ Replayed int }
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if st := h.call("POST", "/v1/admin/deliveries/replay", op,
		[]byte(fmt.Sprintf(`{"organ":%q,"from":%q,"to":%q}`, orgC, from, to)), &res); st != 202 || res.Replayed != 2 {
		t.Fatalf("bulk replay: %d %+v", st, res)
	}
	h.waitStates(id2, h.tokens[orgA], map[string]string{orgC: "delivered"})
	h.waitStates(id3, h.tokens[orgA], map[string]string{orgC: "delivered"})
	if st := h.call("GET", "/v1/documents/"+id4, h.tokens[orgC], nil, nil); st != 200 {
		t.Fatal(st)
	}
	h.waitStates(id4, h.tokens[orgC], map[string]string{orgA: "dead"}) // other organ untouched

	// Retry limits per organ.
	var lim struct {
		MaxAttempts   int   `json:"max_attempts"`
		MaxAgeSeconds int64 `json:"max_age_seconds"`
		PushPipeline  int   `json:"push_pipeline"`
	}
	if st := h.call("GET", "/v1/admin/organs/"+orgC+"/limits", op, nil, &lim); st != 200 || lim.MaxAttempts != 12 ||
		lim.MaxAgeSeconds != 259200 || lim.PushPipeline != 1 {
		t.Fatalf("default limits: %d %+v", st, lim)
	}
	if st := h.call("PUT", "/v1/admin/organs/"+orgC+"/limits", op, []byte(`{"max_attempts":3,"max_age_seconds":600,"push_pipeline":4}`), nil); st != 200 {
		t.Fatalf("set limits: %d", st)
	}
	if got, err := h.l.OrganLimits(ctx, orgC); err != nil || got.MaxAttempts != 3 || got.MaxAge != 10*time.Minute || got.PushPipeline != 4 {
		t.Fatalf("limits in the ledger: %+v %v", got, err)
	}
	if o, err := h.l.Organ(ctx, orgC); err != nil || o.PushPipeline != 4 {
		t.Fatalf("the directory after the change: %+v %v, want push_pipeline 4", o, err)
	}
	// push_pipeline left out of a PUT is kept.
	if st := h.call("PUT", "/v1/admin/organs/"+orgC+"/limits", op, []byte(`{"max_attempts":3,"max_age_seconds":600}`), &lim); st != 200 || lim.PushPipeline != 4 {
		t.Fatalf("set limits without push_pipeline: %d %+v, want push_pipeline 4 kept", st, lim)
	}
	if got, _ := h.l.OrganLimits(ctx, orgC); got.PushPipeline != 4 {
		t.Fatalf("push_pipeline after a PUT without it: %+v, want 4", got)
	}
	for _, tc := range []struct {
		path, token, body string
		status            int
	}{
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":0,"max_age_seconds":600}`, 400},
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":3,"max_age_seconds":-1}`, 400},
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":3}`, 400},
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":3,"max_age_seconds":60,"x":1}`, 400},
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":3,"max_age_seconds":60,"push_pipeline":0}`, 400},
		{"/v1/admin/organs/" + orgC + "/limits", op, `{"max_attempts":3,"max_age_seconds":60,"push_pipeline":65}`, 400},
		{"/v1/admin/organs/000.00.00.Z99/limits", op, `{"max_attempts":3,"max_age_seconds":60}`, 404},
		{"/v1/admin/organs/" + orgC + "/limits", h.tokens[orgC], `{"max_attempts":1000,"max_age_seconds":60}`, 403},
	} {
		if st := h.call("PUT", tc.path, tc.token, []byte(tc.body), nil); st != tc.status {
			t.Errorf("PUT %s %s: %d, want %d", tc.path, tc.body, st, tc.status)
		}
	}
	if got, _ := h.l.OrganLimits(ctx, orgC); got.MaxAttempts != 3 || got.PushPipeline != 4 {
		t.Errorf("a refused change changed the limits: %+v", got)
	}
}

// A recipient whose endpoint hangs holds one lane; the others are delivered
// meanwhile, and it gets its documents once it answers again.
func TestSlowRecipientDoesNotBlockOthers(t *testing.T) {
	h := startHub(t)
	g := newGate(t, http.StatusOK)
	g.hold = make(chan struct{})
	h.point(orgC, g)
	var slow []string
	for i := range 3 {
		slow = append(slow, h.submit(orgA, []string{orgC}, fmt.Sprint(800+i)))
	}
	waitFor(t, "the slow endpoint to be called", 60*time.Second, func() bool { return g.hits.Load() >= 1 })
	for i := range 30 {
		id := h.submit(orgC, []string{orgA, orgB}, fmt.Sprint(900+i))
		h.waitStates(id, h.tokens[orgC], map[string]string{orgA: "delivered", orgB: "delivered"})
	}
	if n := g.hits.Load(); n != 1 {
		t.Fatalf("the slow endpoint got %d requests at once, want 1 (one lane per recipient)", n)
	}
	close(g.hold)
	for _, id := range slow {
		h.waitStates(id, h.tokens[orgA], map[string]string{orgC: "delivered"})
	}
}

// PostgreSQL down: the API answers 503 with Retry-After and accepts nothing;
// when it is back the API accepts again and delivers.
func TestOutagePostgresDown(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	dir := t.TempDir()
	cluster, err := pglocal.Start(ctx, pglocal.Config{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	if err := cluster.CreateDatabase(ctx, "outage"); err != nil {
		t.Fatal(err)
	}
	h := startHubOn(t, cluster.URL("outage"), nil)
	id := h.submit(orgA, []string{orgB}, "1001")
	h.waitStates(id, h.tokens[orgA], map[string]string{orgB: "delivered"})

	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/documents", "/readyz"} {
		method, body := "POST", newDoc(orgA, []string{orgB}, "1002")
		if path == "/readyz" {
			method, body = "GET", nil
		}
		req, _ := http.NewRequest(method, h.api+path, bytesReader(body))
		req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 503 || p.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s with PostgreSQL down: %d %q Retry-After %q", method, path, resp.StatusCode, p.Code,
				resp.Header.Get("Retry-After"))
		}
	}

	if cluster, err = pglocal.Start(ctx, pglocal.Config{Dir: dir, Fast: true}); err != nil {
		t.Fatal(err)
	}
	var n int
	waitFor(t, "the API to accept again", 60*time.Second, func() bool {
		var sub struct{ ID string }
		st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, []string{orgB}, "1003"), &sub)
		return st == http.StatusAccepted
	})
	waitFor(t, "the test's pool to reconnect", 60*time.Second, func() bool {
		return h.l.Pool().QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&n) == nil
	})
	if n != 2 {
		t.Fatalf("%d documents, want 2: nothing may be accepted while the database is down", n)
	}
	waitFor(t, "delivery after the outage", 60*time.Second, func() bool {
		var list []string
		rows, _ := h.l.Pool().Query(ctx, `SELECT state FROM deliveries ORDER BY id`)
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			list = append(list, s)
		}
		rows.Close()
		return strings.Join(list, " ") == "delivered delivered"
	})
}

// Kafka down: the API goes on accepting (the outbox grows); when the broker
// returns the backlog drains and everything is delivered. Documents are
// routed at acceptance, so the inbox recipient has them at once (the inbox
// is ledger state, no Kafka hop) and the push recipient's deliveries wait
// routed, their lt.deliver tasks in the outbox.
func TestOutageKafkaDown(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and the broker")
	}
	dataDir := t.TempDir()
	var mu sync.Mutex
	broker, err := embedbroker.Start(embedbroker.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mu.Lock(); broker.Close(); mu.Unlock() })
	addr := broker.Addrs()[0]
	h := startHubOn(t, "", broker)
	id := h.submit(orgA, []string{orgB}, "1101")
	h.waitStates(id, h.tokens[orgA], map[string]string{orgB: "delivered"})
	waitFor(t, "an empty outbox", 60*time.Second, func() bool { return h.count("outbox") == 0 })

	mu.Lock()
	broker.Close()
	mu.Unlock()
	var ids []string
	for i := range 5 {
		ids = append(ids, h.submit(orgA, []string{orgB, orgC}, fmt.Sprint(1102+i)))
	}
	if n := h.count("outbox"); n < 5 {
		t.Fatalf("outbox has %d rows with Kafka down, want at least the 5 delivery tasks", n)
	}
	for _, id := range ids {
		var d docJSON
		h.call("GET", "/v1/documents/"+id, h.tokens[orgA], nil, &d)
		for _, r := range d.Recipients {
			if want := map[string]string{orgB: "delivered", orgC: "routed"}[r.Organ]; r.State != want {
				t.Fatalf("with Kafka down %s is %s for %s, want %s", id, r.State, r.Organ, want)
			}
		}
	}

	b2, err := embedbroker.Start(embedbroker.Config{DataDir: dataDir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	broker = b2
	mu.Unlock()
	for _, id := range ids {
		h.waitStates(id, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
	}
	waitFor(t, "the outbox to drain", 60*time.Second, func() bool { return h.count("outbox") == 0 })
}

// A recipient down for longer than its attempt budget would last without the
// circuit breaker: the breaker defers instead of burning attempts, and every
// document is delivered once it recovers, within the retry policy.
func TestOutageRecipientDownForLong(t *testing.T) {
	h := startHub(t, func(c *Config) {
		c.Policy = delivery.Policy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}
		c.Breaker = &delivery.Breaker{Threshold: 3, Cooldown: 50 * time.Millisecond, MaxCooldown: 200 * time.Millisecond}
	})
	ctx := context.Background()
	g := newGate(t, http.StatusServiceUnavailable)
	h.point(orgC, g)
	if err := h.l.SetLimits(ctx, orgC, ledger.Limits{MaxAttempts: 8, MaxAge: time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, h.submit(orgA, []string{orgC}, fmt.Sprint(1200+i)))
	}
	// Down for more than twice the attempt budget of one delivery (8).
	waitFor(t, "many failed requests", 60*time.Second, func() bool { return g.hits.Load() >= 20 })
	var dead int
	_ = h.l.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE state = 'dead'`).Scan(&dead)
	if dead != 0 {
		t.Fatalf("%d deliveries died during the outage", dead)
	}
	g.status.Store(http.StatusOK)
	for _, id := range ids {
		h.waitStates(id, h.tokens[orgA], map[string]string{orgC: "delivered"})
	}
	var maxAttempts, deferred int
	_ = h.l.Pool().QueryRow(ctx, `SELECT max(attempts) FROM deliveries`).Scan(&maxAttempts)
	_ = h.l.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE kind = 'deferred'`).Scan(&deferred)
	if deferred == 0 {
		t.Fatalf("no delivery was deferred by the open circuit")
	}
	if n := len(g.sink.Received(orgC)); n != 5 {
		t.Fatalf("recipient got %d documents, want 5", n)
	}
	t.Logf("outage: %d failed requests, at most %d attempts per delivery, %d deferrals", g.hits.Load()-5, maxAttempts, deferred)
}

// The same document submitted 20 times at once: exactly one 202 and nineteen
// 200 with the same id, one document, one delivery per recipient, one
// accepted event, and the push recipient gets it once.
func TestConcurrentDuplicateSubmissionsDeliverOnce(t *testing.T) {
	h := startHub(t)
	raw := newDoc(orgA, []string{orgB, orgC}, "1301")
	type answer struct {
		status int
		id     string
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytesReader(raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var r struct{ ID string }
			_ = json.NewDecoder(resp.Body).Decode(&r)
			answers[i] = answer{resp.StatusCode, r.ID}
		}()
	}
	close(start)
	wg.Wait()
	accepted, repeats := 0, 0
	for _, a := range answers {
		switch {
		case a.id != answers[0].id || a.id == "":
			t.Fatalf("ids differ: %+v", answers)
		case a.status == http.StatusAccepted:
			accepted++
		case a.status == http.StatusOK:
			repeats++
		default:
			t.Fatalf("status %d", a.status)
		}
	}
	if accepted != 1 || repeats != 19 {
		t.Fatalf("%d accepted and %d repeats, want 1 and 19", accepted, repeats)
	}
	h.waitStates(answers[0].id, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
	var acceptedEvents int
	_ = h.l.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE kind = 'accepted'`).Scan(&acceptedEvents)
	if d, r := h.count("documents"), h.count("deliveries"); d != 1 || r != 2 || acceptedEvents != 1 {
		t.Fatalf("%d documents, %d deliveries, %d accepted events; want 1, 2, 1", d, r, acceptedEvents)
	}
	if got := h.sink.Received(orgC); len(got) != 1 {
		t.Fatalf("push recipient got %d copies", len(got))
	}
}
