package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"lienthong/cmd/internal/sample"
	"lienthong/routing/embedbroker"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var (
	hubctlOnce sync.Once
	hubctlBin  string
	hubctlErr  error
)

func hubctlBinary(t *testing.T) string {
	t.Helper()
	hubctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubctl-bin-")
		if err != nil {
			hubctlErr = err
			return
		}
		hubctlBin = filepath.Join(dir, "hubctl")
		out, err := exec.Command("go", "build", "-o", hubctlBin, "../hubctl").CombinedOutput()
		if err != nil {
			hubctlErr = fmt.Errorf("go build hubctl: %v: %s", err, out)
		}
	})
	if hubctlErr != nil {
		t.Fatal(hubctlErr)
	}
	return hubctlBin
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// `hubd serve` against a database and a broker it did not start, configured
// only through LT_* variables and a --directory file, with its stages split
// over two processes (api | relay,router,delivery,scheduler). hubctl then
// drives the tour of the README against it: submit, status, events, inbox, ack.
func TestServeSplitRolesWithDirectoryAndHubctl(t *testing.T) {
	bin := binary(t)
	ctl := hubctlBinary(t)
	dbURL := pgtest.NewDatabase(t)
	broker := embedbroker.StartForTest(t)

	// The push recipient's endpoint.
	var mu sync.Mutex
	pushed := map[string][]byte{} // Idempotency-Key → body
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushed[r.Header.Get("Idempotency-Key")] = b
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()

	const (
		sender, pushOrgan, pullOrgan = "000.00.00.T01", "000.00.00.T02", "000.00.00.T03"
		tokSender, tokPull, tokAudit = "tok-sender-0123456789", "tok-pull-0123456789", "tok-audit-0123456789"
	)
	dir := t.TempDir()
	directory := map[string]any{
		"organs": []map[string]any{
			{"code": sender, "name": "Đơn vị gửi (THỬ)", "delivery": "pull"},
			{"code": pushOrgan, "name": "Đơn vị nhận push (THỬ)", "delivery": "push", "endpoint": sink.URL, "push_pipeline": 4},
			{"code": pullOrgan, "name": "Đơn vị nhận pull (THỬ)", "delivery": "pull"},
		},
		"principals": []map[string]any{
			{"kind": "organ", "organ": sender, "token_sha256": sha256Hex(tokSender)},
			{"kind": "organ", "organ": pullOrgan, "token_sha256": sha256Hex(tokPull)},
			{"kind": "auditor", "name": "kiểm toán", "token_sha256": sha256Hex(tokAudit)},
		},
	}
	dirFile := filepath.Join(dir, "organs.json")
	writeJSON(t, dirFile, directory)

	env := append(os.Environ(), "LT_DATABASE_URL="+dbURL, "LT_KAFKA_BROKERS="+strings.Join(broker.Addrs(), ","),
		"LT_TOPIC_PREFIX=svt", "LT_PARTITIONS=2")
	if out, err := runEnv(env, bin, "migrate"); err != nil {
		t.Fatalf("hubd migrate: %v\n%s", err, out)
	}

	listen := freePort(t)
	apiURL := "http://" + listen
	api := startEnv(t, env, bin, "serve", "--roles", "api", "--listen", listen, "--directory", dirFile)
	waitReady(t, api, apiURL, 60*time.Second)
	// The directory file's push_pipeline is the organ's.
	if conn, err := pgx.Connect(context.Background(), dbURL); err != nil {
		t.Fatal(err)
	} else {
		var window int
		err := conn.QueryRow(context.Background(), `SELECT push_pipeline FROM organs WHERE code = $1`, pushOrgan).Scan(&window)
		conn.Close(context.Background())
		if err != nil || window != 4 {
			t.Fatalf("push_pipeline of %s after loading the directory: %d %v, want 4", pushOrgan, window, err)
		}
	}
	workers := startEnv(t, env, bin, "serve", "--roles", "relay,router,delivery,scheduler",
		"--listen", freePort(t), "--directory", dirFile) // loading the same directory twice is harmless

	creds := filepath.Join(dir, "credentials.json")
	writeJSON(t, creds, map[string]any{"api_url": apiURL, "auditor_token": tokAudit,
		"organs": []map[string]string{{"code": sender, "token": tokSender}, {"code": pullOrgan, "token": tokPull}}})
	hubctl := func(args ...string) string {
		t.Helper()
		out, err := runEnv(os.Environ(), ctl, append([]string{"--credentials", creds}, args...)...)
		if err != nil {
			t.Fatalf("hubctl %v: %v\n%s", args, err, out)
		}
		return out
	}

	docFile := filepath.Join(dir, "doc.edxml")
	raw := sample.EdXML(sample.Doc{From: sender, To: []string{pushOrgan, pullOrgan}, Number: "77", Subject: "Kiểm thử serve"})
	if err := os.WriteFile(docFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := hubctl("submit", docFile)
	var id string
	for _, f := range strings.Fields(out) {
		if len(f) == 36 && strings.Count(f, "-") == 4 {
			id = f
			break
		}
	}
	if id == "" {
		t.Fatalf("hubctl submit printed no id:\n%s", out)
	}
	if again := hubctl("submit", docFile); !strings.Contains(again, id) || !strings.Contains(again, "already accepted") {
		t.Errorf("second submit should name the same id as already accepted:\n%s", again)
	}

	// The worker process (not the API process) delivers both.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := hubctl("--as", "auditor", "status", id)
		if strings.Count(st, "delivered") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 60s:\n%s\napi:\n%s\nworkers:\n%s", st, api.out, workers.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	got := pushed[id+"/"+pushOrgan]
	mu.Unlock()
	if string(got) != string(raw) {
		t.Errorf("push endpoint got %d bytes under key %s/%s, want the %d submitted bytes", len(got), id, pushOrgan, len(raw))
	}

	if inbox := hubctl("--as", pullOrgan, "inbox"); !strings.Contains(inbox, id) {
		t.Errorf("pull inbox does not list %s:\n%s", id, inbox)
	}
	hubctl("--as", pullOrgan, "ack", id)
	if inbox := hubctl("--as", pullOrgan, "inbox"); strings.Contains(inbox, id) {
		t.Errorf("acknowledged document still in the inbox:\n%s", inbox)
	}
	st := hubctl("status", id)
	for _, want := range []string{pushOrgan + " ", "delivered", pullOrgan + " ", "acknowledged"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	ev := hubctl("events", id)
	if a, d := strings.Index(ev, "accepted"), strings.Index(ev, "delivered"); a < 0 || d < 0 || a > d {
		t.Errorf("events not in order accepted … delivered:\n%s", ev)
	}
	// Every event of the document reaches lt.events, in order, though no
	// process runs the evidence role: the relay role sequences the log that
	// lt.events is published from.
	readDocumentEvents(t, dbURL, broker.Addrs(), "svt.events", 2, id)

	// The pull recipient cannot submit as the sender: hubctl exits non-zero
	// with the server's code, in both languages.
	out, err := runEnv(os.Environ(), ctl, "--credentials", creds, "--as", pullOrgan, "submit", docFile)
	if err == nil || !strings.Contains(out, "forbidden_sender") {
		t.Errorf("submit as another organ: err=%v, want forbidden_sender:\n%s", err, out)
	}
	api.stop(t)
	workers.stop(t)
}

// readDocumentEvents reads topic back over TCP until it has seen every event
// the ledger holds for document id (keyed by id, with its event id), and
// checks that they came in event order.
func readDocumentEvents(t *testing.T, dbURL string, brokers []string, topic string, partitions int, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows, _ := db.Query(ctx, `SELECT id FROM events WHERE document_id = $1 ORDER BY id`, id)
	want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(want) < 4 {
		t.Fatalf("events of %s in the ledger: %v %v", id, want, err)
	}
	part := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(id)}, func() []int {
		ps := make([]int, partitions)
		for i := range ps {
			ps[i] = i
		}
		return ps
	}()...)
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MinBytes: 1,
		MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond})
	defer rd.Close()
	var got []int64
	for len(got) < len(want) {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("%s: %v; read events %v of %v", topic, err, got, want)
		}
		var e struct {
			ID         int64  `json:"id"`
			DocumentID string `json:"document_id"`
		}
		if string(m.Key) != id || json.Unmarshal(m.Value, &e) != nil || e.DocumentID != id {
			continue
		}
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s carries events %v of %s, want %v", topic, got, id, want)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func startEnv(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	return startIn(t, env, "", name, args)
}
