package hub

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lienthong/adapters/webhook"
	"lienthong/cmd/internal/sample"
	"lienthong/routing/ledger"
	"lienthong/routing/pglocal"
)

// The chaos test runs only with LT_CHAOS=1 (make test-chaos): it takes a few
// minutes. Its size can be scaled down with -chaos.docs for a quick look.
var chaosDocs = flag.Int("chaos.docs", 2000, "documents the chaos test submits")

const chaosRecipients = 20

// chaosPush is the test's push endpoints: it honours Idempotency-Key (a
// repeat is answered 200 and not taken twice) and records every key it saw
// for every document, so that the test can check that no recipient saw a
// document under two keys. Some organs are flaky, one is down for a while.
type chaosPush struct {
	mu       sync.Mutex
	keys     map[string]map[string]map[string]bool // organ → document → keys
	posts    atomic.Int64
	repeats  atomic.Int64
	refused  atomic.Int64
	flaky    map[string]bool
	down     string
	downFrom time.Time
	downTill time.Time
}

func (p *chaosPush) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	organ := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	_, _ = io.Copy(io.Discard, r.Body)
	p.posts.Add(1)
	now := time.Now()
	if (organ == p.down && now.After(p.downFrom) && now.Before(p.downTill)) || (p.flaky[organ] && rand.IntN(4) == 0) {
		p.refused.Add(1)
		http.Error(w, "chaos: unavailable", http.StatusServiceUnavailable)
		return
	}
	doc, key := r.Header.Get(webhook.HeaderDocumentID), r.Header.Get(webhook.HeaderIdemKey)
	p.mu.Lock()
	if p.keys[organ] == nil {
		p.keys[organ] = map[string]map[string]bool{}
	}
	if p.keys[organ][doc] == nil {
		p.keys[organ][doc] = map[string]bool{}
	}
	if p.keys[organ][doc][key] {
		p.repeats.Add(1)
	}
	p.keys[organ][doc][key] = true
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// proc is one child process that the test kills and restarts.
type proc struct {
	name string
	args []string
	env  []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

func (p *proc) kill(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Separate processes: a broker (`hubd dev --broker-only`), PostgreSQL (a
// private cluster) and three `hubd serve`; 2,000 documents to 20 recipients
// (push endpoints, some flaky, one down for a while, and pull recipients
// that read their inbox and acknowledge). Meanwhile a random hubd is killed
// with SIGKILL and restarted every few seconds, the broker is killed and
// restarted once, PostgreSQL is restarted once. At the end every (document,
// recipient) pair is delivered, no recipient saw a document under two keys,
// states and events agree, and the outbox is empty.
func TestChaos(t *testing.T) {
	if os.Getenv("LT_CHAOS") == "" {
		t.Skip("set LT_CHAOS=1 (make test-chaos) to run the chaos test")
	}
	start := time.Now()
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "hubd")
	if out, err := exec.Command("go", "build", "-o", bin, "lienthong/cmd/hubd").CombinedOutput(); err != nil {
		t.Fatalf("go build hubd: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "processes.log")
	if p := os.Getenv("LT_CHAOS_LOG"); p != "" {
		logPath = p // kept after the test
	}
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("tail of the processes' log:\n%s", b)
		}
	})

	// PostgreSQL.
	pgDir := filepath.Join(dir, "pg")
	cluster, err := pglocal.Start(ctx, pglocal.Config{Dir: pgDir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	var clusterMu sync.Mutex
	t.Cleanup(func() { clusterMu.Lock(); _ = cluster.Stop(context.Background()); clusterMu.Unlock() })
	if err := cluster.CreateDatabase(ctx, "chaos"); err != nil {
		t.Fatal(err)
	}
	dbURL := cluster.URL("chaos")
	if err := Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	pool, err := ledger.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Config{})

	// Recipients: 14 push (three flaky, one down for a while), 6 pull; 4 senders.
	push := &chaosPush{keys: map[string]map[string]map[string]bool{}, flaky: map[string]bool{}}
	pushSrv := httptest.NewServer(push)
	t.Cleanup(pushSrv.Close)
	var recipients, pullers, senders []string
	tokens := map[string]string{}
	for i := 1; i <= chaosRecipients; i++ {
		code := fmt.Sprintf("000.00.00.G%02d", i)
		o := ledger.Organ{Code: code, Name: "chaos " + code, Channel: "push", Endpoint: pushSrv.URL + "/" + code, Active: true}
		if i > 14 {
			o.Channel, o.Endpoint = "pull", ""
			pullers = append(pullers, code)
		}
		if i%5 == 3 && i <= 14 {
			push.flaky[code] = true
		}
		recipients = append(recipients, code)
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	push.down = recipients[0]
	for i := 1; i <= 4; i++ {
		code := fmt.Sprintf("000.00.00.H%02d", i)
		if err := l.UpsertOrgan(ctx, ledger.Organ{Code: code, Name: "chaos sender", Channel: "pull", Active: true}); err != nil {
			t.Fatal(err)
		}
		senders = append(senders, code)
	}
	for _, code := range append(append([]string{}, recipients...), senders...) {
		tokens[code] = "chaos-" + code
		if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOrgan, Organ: code}, tokens[code], nil); err != nil {
			t.Fatal(err)
		}
	}

	// The broker and three hubs, each its own process.
	brokerAddr := freeAddr(t)
	broker := &proc{name: "broker", log: logf, env: []string{"LT_LOG_LEVEL=warn"},
		args: []string{"dev", "--broker-only", "--data-dir", filepath.Join(dir, "broker"), "--broker-listen", brokerAddr}}
	broker.start(t, bin)
	t.Cleanup(func() { broker.kill(syscall.SIGTERM) })
	var hubs []*proc
	var apis []string
	for i := range 3 {
		addr := freeAddr(t)
		apis = append(apis, "http://"+addr)
		p := &proc{name: fmt.Sprintf("hubd-%d", i), log: logf, env: []string{"LT_LOG_LEVEL=warn"},
			args: []string{"serve", "--database-url", dbURL, "--kafka-brokers", brokerAddr, "--listen", addr,
				"--retry-base", "200ms", "--retry-max", "2s", "--stuck-after", "15s"}}
		p.start(t, bin)
		t.Cleanup(func() { p.kill(syscall.SIGTERM) })
		hubs = append(hubs, p)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token string, body []byte, out any) (int, error) {
		api := apis[rand.IntN(len(apis))]
		req, _ := http.NewRequest(method, api+path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/xml")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(b, out); err != nil {
				return 0, err
			}
		}
		return resp.StatusCode, nil
	}
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitUntil("an API to answer", 60*time.Second, func() bool {
		st, err := call("GET", "/v1/organs", tokens[senders[0]], nil, nil)
		return err == nil && st == 200
	})
	push.downFrom, push.downTill = time.Now().Add(3*time.Second), time.Now().Add(25*time.Second)
	t.Logf("%v: processes up", time.Since(start).Round(time.Second))

	// Pull recipients read their inbox and acknowledge.
	stopPull := make(chan struct{})
	var pullWG sync.WaitGroup
	var acked atomic.Int64
	for _, code := range pullers {
		pullWG.Add(1)
		go func() {
			defer pullWG.Done()
			for {
				select {
				case <-stopPull:
					return
				default:
				}
				var inbox struct {
					Documents []struct {
						ID string `json:"id"`
					} `json:"documents"`
				}
				if st, err := call("GET", "/v1/inbox?limit=200", tokens[code], nil, &inbox); err != nil || st != 200 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				for _, d := range inbox.Documents {
					var ack struct{ Already bool }
					if st, err := call("POST", "/v1/inbox/"+d.ID+"/ack", tokens[code], nil, &ack); err == nil && st == 200 && !ack.Already {
						acked.Add(1)
					}
				}
				if len(inbox.Documents) == 0 {
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}

	// Chaos: SIGKILL a random hubd every few seconds and restart it; the
	// broker once, PostgreSQL once.
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
	var kills, brokerRestarts, pgRestarts atomic.Int64
	go func() {
		defer close(chaosDone)
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-stopChaos:
				return
			case <-tick.C:
			}
			switch n {
			case 2:
				t.Logf("%v: chaos: SIGKILL the broker and restart it", time.Since(start).Round(time.Second))
				broker.kill(syscall.SIGKILL)
				time.Sleep(time.Second)
				broker.start(t, bin)
				brokerRestarts.Add(1)
				continue
			case 4:
				t.Logf("%v: chaos: restart PostgreSQL", time.Since(start).Round(time.Second))
				clusterMu.Lock()
				_ = cluster.Stop(context.Background())
				time.Sleep(time.Second)
				c, err := pglocal.Start(context.Background(), pglocal.Config{Dir: pgDir, Fast: true})
				if err != nil {
					clusterMu.Unlock()
					t.Errorf("restart PostgreSQL: %v", err)
					return
				}
				cluster = c
				clusterMu.Unlock()
				pgRestarts.Add(1)
				t.Logf("%v: chaos: PostgreSQL is back", time.Since(start).Round(time.Second))
				continue
			}
			h := hubs[rand.IntN(len(hubs))]
			t.Logf("%v: chaos: SIGKILL %s and restart it", time.Since(start).Round(time.Second), h.name)
			h.kill(syscall.SIGKILL)
			kills.Add(1)
			time.Sleep(500 * time.Millisecond)
			h.start(t, bin)
		}
	}()

	// Submit: documents to two recipients each, from four senders, eight at a
	// time; a failed or refused submission is retried on another hub (the
	// same bytes give the same id).
	type pair struct{ doc, recp string }
	want := map[pair]bool{}
	ids := make([]string, *chaosDocs)
	var wantMu sync.Mutex
	var resubmits atomic.Int64
	work := make(chan int)
	var subWG sync.WaitGroup
	for range 8 {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			for i := range work {
				from := senders[i%len(senders)]
				to := []string{recipients[i%chaosRecipients], recipients[(i*7+3)%chaosRecipients]}
				if to[0] == to[1] {
					to = to[:1]
				}
				raw := sample.EdXML(sample.Doc{From: from, To: to, Number: fmt.Sprint(i + 1), Notation: "CHAOS",
					Date: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)})
				for attempt := 0; ; attempt++ {
					var res struct{ ID string }
					st, err := call("POST", "/v1/documents", tokens[from], raw, &res)
					if err == nil && (st == 202 || st == 200) && res.ID != "" {
						wantMu.Lock()
						if ids[i] != "" && ids[i] != res.ID {
							t.Errorf("document %d got two ids: %s and %s", i, ids[i], res.ID)
						}
						ids[i] = res.ID
						for _, r := range to {
							want[pair{res.ID, r}] = true
						}
						wantMu.Unlock()
						break
					}
					if err == nil && st != 503 && st < 500 {
						t.Errorf("document %d refused: %d", i, st)
						break
					}
					resubmits.Add(1)
					time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
				}
			}
		}()
	}
	for i := range *chaosDocs {
		work <- i
	}
	close(work)
	subWG.Wait()
	submitted := time.Since(start)
	t.Logf("submitted %d documents (%d pairs) in %v, %d resubmissions", *chaosDocs, len(want), submitted.Round(time.Second), resubmits.Load())

	// The chaos goes on while the deliveries are made: until 95% are done
	// (and its whole schedule has run), at most 90 s; then everything settles.
	delivered := func() (ok, total int) {
		rows, err := pool.Query(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
		if err != nil {
			return 0, -1
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			var n int
			_ = rows.Scan(&s, &n)
			total += n
			if s == ledger.StateDelivered || s == ledger.StateAcknowledged {
				ok += n
			}
		}
		return ok, total
	}
	chaosUntil := time.Now().Add(90 * time.Second)
	for time.Now().Before(chaosUntil) {
		ok, total := delivered()
		if kills.Load() >= 6 && pgRestarts.Load() >= 1 && total > 0 && ok*100 >= total*95 {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("%v: chaos stops", time.Since(start).Round(time.Second))
	close(stopChaos)
	<-chaosDone
	var lastReport time.Time
	t.Cleanup(func() { // on failure: what is not delivered, and its history
		if !t.Failed() {
			return
		}
		rows, err := pool.Query(context.Background(), `SELECT r.id, r.recipient, r.state, r.attempts, r.last_error,
			r.next_attempt_at, r.updated_at, coalesce((SELECT string_agg(kind || ':' || at::time::text, ' ' ORDER BY id) FROM events e
			WHERE e.document_id = r.document_id AND e.recipient = r.recipient), '')
			FROM deliveries r WHERE state NOT IN ('delivered', 'acknowledged') ORDER BY id LIMIT 20`)
		if err != nil {
			t.Logf("diagnostics: %v", err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var recp, state, lastErr, evs string
			var attempts int
			var next *time.Time
			var upd time.Time
			_ = rows.Scan(&id, &recp, &state, &attempts, &lastErr, &next, &upd, &evs)
			t.Logf("not delivered: #%d to %s %s attempts %d next %v updated %v error %q events %s (now %v)",
				id, recp, state, attempts, next, upd.Format(time.TimeOnly), lastErr, evs, time.Now().UTC().Format(time.TimeOnly))
		}
	})
	waitUntil("every pair delivered", 4*time.Minute, func() bool {
		ok, total := delivered()
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			t.Logf("%v: %d of %d deliveries delivered", time.Since(start).Round(time.Second), ok, total)
		}
		return total == len(want) && ok == total
	})
	waitUntil("the pull recipients to acknowledge everything", 2*time.Minute, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE channel = 'pull' AND state <> 'acknowledged'`).Scan(&n)
		return err == nil && n == 0
	})
	waitUntil("an empty outbox", 2*time.Minute, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
		return err == nil && n == 0
	})
	close(stopPull)
	pullWG.Wait()

	// Every pair is in the ledger, delivered, and nothing else is.
	var docs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	if docs != *chaosDocs {
		t.Errorf("%d documents stored, want %d", docs, *chaosDocs)
	}
	rows, err := pool.Query(ctx, `SELECT document_id::text, recipient, state, channel, attempts FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[pair]string{}
	maxAttempts, pushPairs := 0, 0
	for rows.Next() {
		var p pair
		var state, channel string
		var attempts int
		if err := rows.Scan(&p.doc, &p.recp, &state, &channel, &attempts); err != nil {
			t.Fatal(err)
		}
		got[p] = state
		maxAttempts = max(maxAttempts, attempts)
		if channel == "push" {
			pushPairs++
		}
	}
	rows.Close()
	for p := range want {
		if s := got[p]; s != ledger.StateDelivered && s != ledger.StateAcknowledged {
			t.Errorf("pair %v: state %q", p, s)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d deliveries in the ledger, want %d", len(got), len(want))
	}

	// Push recipients got each of their documents, under one key only.
	push.mu.Lock()
	received := 0
	for p := range want {
		keys, isPush := push.keys[p.recp]
		if !isPush && !contains(pullers, p.recp) {
			isPush = true
		}
		if contains(pullers, p.recp) {
			continue
		}
		k := keys[p.doc]
		if len(k) != 1 || !k[p.doc+"/"+p.recp] {
			t.Errorf("push recipient %s saw document %s under keys %v", p.recp, p.doc, k)
		}
		received++
	}
	for organ, docs := range push.keys {
		for doc, k := range docs {
			if !want[pair{doc, organ}] {
				t.Errorf("push recipient %s got %s, which was not for it (keys %v)", organ, doc, k)
			}
		}
	}
	push.mu.Unlock()

	// States and events agree: per pair, the last event's state is the
	// delivery's state, and it was delivered (and acknowledged) exactly once.
	var inconsistent, doubleDelivered int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deliveries r JOIN LATERAL (
			SELECT state FROM events e WHERE e.document_id = r.document_id AND e.recipient = r.recipient
			ORDER BY id DESC LIMIT 1) last ON true WHERE last.state <> r.state`).Scan(&inconsistent); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT document_id, recipient FROM events
			WHERE kind IN ('delivered', 'acknowledged') GROUP BY document_id, recipient, kind HAVING count(*) > 1) x`).
		Scan(&doubleDelivered); err != nil {
		t.Fatal(err)
	}
	var accepted int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE kind = 'accepted'`).Scan(&accepted); err != nil {
		t.Fatal(err)
	}
	if inconsistent != 0 || doubleDelivered != 0 || accepted != docs {
		t.Errorf("events: %d pairs whose last event disagrees with the state, %d pairs delivered twice, %d accepted events for %d documents",
			inconsistent, doubleDelivered, accepted, docs)
	}
	var events, retries, deferred int
	_ = pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE kind = 'retrying'), count(*) FILTER (WHERE kind = 'deferred') FROM events`).
		Scan(&events, &retries, &deferred)

	// How much the safety nets did (from the processes' log): deliveries
	// adopted from the ledger because their task was lost, consumers that
	// started over as new group members.
	adopted, restarts := 0, 0
	if b, err := os.ReadFile(logPath); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "adopted deliveries") {
				var n int
				if i := strings.Index(line, "deliveries="); i >= 0 {
					fmt.Sscan(line[i+len("deliveries="):], &n)
				}
				adopted += n
			}
			if strings.Contains(line, "starts over as a new group member") {
				restarts++
			}
		}
	}
	t.Logf("safety nets: %d deliveries adopted from the ledger, %d consumer restarts", adopted, restarts)
	t.Logf("chaos: %d documents, %d (document, recipient) pairs (%d push, %d pull) all delivered; "+
		"%d push requests (%d refused by flaky/down endpoints, %d repeats dropped by Idempotency-Key), %d pull acks; "+
		"%d hubd SIGKILLs, %d broker restarts, %d PostgreSQL restarts, %d resubmissions; "+
		"%d events (%d retrying, %d deferred), max %d attempts for one delivery; outbox empty; %v in all",
		docs, len(want), pushPairs, len(want)-pushPairs, push.posts.Load(), push.refused.Load(), push.repeats.Load(),
		acked.Load(), kills.Load(), brokerRestarts.Load(), pgRestarts.Load(), resubmits.Load(),
		events, retries, deferred, maxAttempts, time.Since(start).Round(time.Second))
	_ = received
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
