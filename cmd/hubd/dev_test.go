package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/adapters/axis"
	"lienthong/cmd/internal/sample"
)

// These tests run the real binary, as a user would: `make run`, Ctrl-C,
// SIGKILL, restart on the same data dir.

var (
	buildOnce sync.Once
	hubdBin   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real hub")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		hubdBin = filepath.Join(dir, "hubd")
		out, err := exec.Command("go", "build", "-o", hubdBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return hubdBin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running hubd (or make) process group.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func start(t *testing.T, name string, args []string, dir string) *proc {
	t.Helper()
	return startIn(t, nil, dir, name, args)
}

// startIn starts name in its own process group, with env (nil: the test's own
// environment) and working directory dir.
func startIn(t *testing.T, env []string, dir, name string, args []string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &out}, &syncWriter{w: &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

func (p *proc) kill(sig syscall.Signal) { _ = syscall.Kill(-p.cmd.Process.Pid, sig) }

// stop sends SIGINT (Ctrl-C) to the process group and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.kill(syscall.SIGINT)
	select {
	case err := <-p.done:
		if err != nil && !p.viaMake(err) {
			t.Fatalf("hubd did not exit cleanly on Ctrl-C: %v\n%s", err, p.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("hubd did not stop within 60s of Ctrl-C\n%s", p.out)
	}
}

// viaMake reports whether err is GNU make's own death by SIGINT after a clean
// recipe: make always re-raises SIGINT on itself, so a Ctrl-C of `make run`
// ends with "signal: interrupt" however well the hub stopped. The recipe's
// exit status shows as "make: *** [...] Error N" when it was not 0.
func (p *proc) viaMake(err error) bool {
	var ee *exec.ExitError
	if filepath.Base(p.cmd.Path) != "make" || !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT && !strings.Contains(p.out.String(), "make: ***")
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func waitReady(t *testing.T, p *proc, api string, within time.Duration) {
	t.Helper()
	if !readyOrPortTaken(t, p, api, within) {
		t.Fatalf("hubd exited before ready: a port it was given was taken\n%s", p.out)
	}
}

// readyOrPortTaken waits until hubd at api answers /readyz with 200 and
// returns true. It returns false when hubd exited because a port freePort
// had found was taken meanwhile (by any process of the machine: the kernel
// hands the same range out for outgoing connections), so that the caller can
// try again with other ports.
func readyOrPortTaken(t *testing.T, p *proc, api string, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		select {
		case err := <-p.done:
			if strings.Contains(p.out.String(), "address already in use") {
				t.Logf("a port was taken before hubd bound it; again with others")
				return false
			}
			t.Fatalf("hubd exited before ready: %v\n%s", err, p.out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("/readyz did not answer 200 within %s\n%s", within, p.out)
	return false
}

type credFile struct {
	APIURL       string   `json:"api_url"`
	KafkaBrokers []string `json:"kafka_brokers"`
	DatabaseURL  string   `json:"database_url"`
	CACert       string   `json:"ca_cert"`
	HubCert      string   `json:"hub_cert"`
	Organs       []struct {
		Code, Name, Token, Cert, Key, Delivery string
	} `json:"organs"`
	Auditor  string   `json:"auditor_token"`
	Operator string   `json:"operator_token"`
	Samples  []string `json:"samples"`
	Axis     *struct {
		URL     string `json:"url"`
		Systems []struct {
			SystemID string `json:"systemid"`
			Secret   string `json:"secret"`
			Organ    string `json:"organ"`
			Name     string `json:"name"`
		} `json:"systems"`
	} `json:"axis"`
}

func readCreds(t *testing.T, dir string) credFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c credFile
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func api(t *testing.T, method, url, token string, body []byte, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// `make run` on a clean data dir: /readyz answers 200 within 60 seconds, the
// credentials file keeps its contract, and the printed sample submits.
func TestMakeRunIsReadyWithin60s(t *testing.T) {
	binary(t) // warms the build cache so that the 60 s measure the hub, not the compiler
	root, _ := filepath.Abs("../..")
	var dir, listen, brokerListen string
	var p *proc
	for attempt := 1; ; attempt++ {
		dir = t.TempDir()
		listen, brokerListen = freePort(t), freePort(t)
		p = start(t, "make", []string{"-s", "run", fmt.Sprintf("RUNFLAGS=--data-dir %s --listen %s --broker-listen %s", dir, listen, brokerListen)}, root)
		if readyOrPortTaken(t, p, "http://"+listen, 60*time.Second) {
			break
		}
		if attempt == 3 {
			t.Fatalf("three free ports in a row were taken before hubd bound them\n%s", p.out)
		}
	}

	c := readCreds(t, dir)
	if c.APIURL != "http://"+listen || len(c.KafkaBrokers) != 1 || c.KafkaBrokers[0] != brokerListen ||
		!strings.HasPrefix(c.DatabaseURL, "postgres://") || c.Auditor == "" || c.Operator == "" {
		t.Fatalf("credentials.json: %+v", c)
	}
	if len(c.Organs) < 4 {
		t.Fatalf("want at least 4 demo organs, got %d", len(c.Organs))
	}
	ca := loadCert(t, c.CACert)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	deliveries := map[string]bool{}
	for _, o := range c.Organs {
		if !filepath.IsAbs(o.Cert) || !filepath.IsAbs(o.Key) || o.Token == "" {
			t.Errorf("organ %s: paths must be absolute and the token set: %+v", o.Code, o)
		}
		cert := loadCert(t, o.Cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("organ %s: certificate not issued by ca_cert: %v", o.Code, err)
		}
		if !strings.Contains(o.Name, "DEMO") {
			t.Errorf("organ %s is not marked demo: %q", o.Code, o.Name)
		}
		deliveries[o.Delivery] = true
	}
	if !deliveries["push"] || !deliveries["pull"] {
		t.Errorf("want push and pull organs, got %v", deliveries)
	}
	if !strings.Contains(p.out.String(), "curl") || !strings.Contains(p.out.String(), c.Organs[0].Token) {
		t.Errorf("banner has no ready-to-paste submit command:\n%s", p.out)
	}

	// The sample from the banner is accepted and reaches its recipients.
	raw, err := os.ReadFile(c.Samples[0])
	if err != nil {
		t.Fatal(err)
	}
	var sub struct{ ID string }
	if st := api(t, "POST", c.APIURL+"/v1/documents", c.Organs[0].Token, raw, &sub); st != 202 {
		t.Fatalf("submitting the sample: %d", st)
	}
	waitDelivered(t, c, sub.ID, 60*time.Second)
	checkSampleSigned(t, c, sub.ID)
	checkDevAxis(t, c, 60*time.Second)
	checkDevPartitions(t, brokerListen, 2)
	p.stop(t)
	if !strings.Contains(p.out.String(), "PostgreSQL stopped") {
		t.Errorf("Ctrl-C did not stop the private PostgreSQL:\n%s", p.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); err == nil {
		t.Errorf("PostgreSQL still running after Ctrl-C of make run")
	}
}

// checkDevPartitions checks that the dev hub made its topics with the dev
// default of partitions (one process reads them all: more would only add
// fsynced produce batches in the embedded broker).
func checkDevPartitions(t *testing.T, broker string, want int) {
	t.Helper()
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, topic := range []string{"lt.route", "lt.deliver", "lt.events"} {
		parts, err := conn.ReadPartitions(topic)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if len(parts) != want {
			t.Errorf("%s has %d partitions, want the dev default %d", topic, len(parts), want)
		}
	}
}

func waitDelivered(t *testing.T, c credFile, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var d struct {
		Recipients []struct{ Organ, State string }
	}
	for time.Now().Before(deadline) {
		if st := api(t, "GET", c.APIURL+"/v1/documents/"+id, c.Auditor, nil, &d); st == 200 && len(d.Recipients) > 0 {
			all := true
			for _, r := range d.Recipients {
				all = all && r.State == "delivered"
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("document %s not delivered within %s: %+v", id, within, d)
}

// A document accepted just before `hubd dev` stops is delivered after it
// restarts on the same data dir; a SIGKILLed hubd leaves PostgreSQL running,
// and the next start finds and reuses it with all data.
func TestDevRestartResumes(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	listen, brokerListen := freePort(t), freePort(t)
	args := []string{"dev", "--data-dir", dir, "--listen", listen, "--broker-listen", brokerListen}
	apiURL := "http://" + listen

	// 1. Only the API runs: the document is accepted and stays accepted.
	p := start(t, bin, append(args, "--roles", "api"), "")
	waitReady(t, p, apiURL, 90*time.Second)
	c := readCreds(t, dir)
	raw, _ := os.ReadFile(c.Samples[0])
	var sub struct{ ID string }
	if st := api(t, "POST", apiURL+"/v1/documents", c.Organs[0].Token, raw, &sub); st != 202 {
		t.Fatalf("submit: %d", st)
	}
	p.stop(t) // Ctrl-C stops PostgreSQL too
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); err == nil {
		t.Errorf("PostgreSQL still running after Ctrl-C")
	}

	// 2. Restart with every role: it is delivered.
	p = start(t, bin, args, "")
	waitReady(t, p, apiURL, 90*time.Second)
	waitDelivered(t, c, sub.ID, 60*time.Second)

	// 3. SIGKILL: PostgreSQL is left behind; the next start reuses it.
	p.kill(syscall.SIGKILL)
	<-p.done
	p = start(t, bin, args, "")
	waitReady(t, p, apiURL, 90*time.Second)
	c2 := readCreds(t, dir)
	if c2.Organs[0].Token != c.Organs[0].Token {
		t.Errorf("tokens changed across restarts")
	}
	waitDelivered(t, c2, sub.ID, 10*time.Second)
	var second struct{ ID string }
	if st := api(t, "POST", apiURL+"/v1/documents", c.Organs[0].Token, raw, &second); st != 200 || second.ID != sub.ID {
		t.Fatalf("resubmission after restart: %d %s, want 200 %s", st, second.ID, sub.ID)
	}
	p.stop(t)
}

// checkDevAxis acts as a demo ministry with the "axis" object of
// credentials.json: its edoc, sent with the axis API to the simulator,
// reaches a pull NA organ's inbox, and the 01 status comes back.
func checkDevAxis(t *testing.T, c credFile, within time.Duration) {
	t.Helper()
	if c.Axis == nil || !strings.HasPrefix(c.Axis.URL, "http://") || len(c.Axis.Systems) != 2 {
		t.Fatalf("credentials.json: axis object %+v", c.Axis)
	}
	for _, s := range c.Axis.Systems {
		if s.SystemID == "" || s.Secret == "" || s.Organ == "" || !strings.Contains(s.Name, "DEMO") {
			t.Fatalf("axis system %+v: want systemid, secret, organ and a DEMO name", s)
		}
	}
	m := c.Axis.Systems[0]
	client, err := axis.New(axis.Config{Endpoint: c.Axis.URL, SystemID: m.SystemID, Secret: m.Secret})
	if err != nil {
		t.Fatal(err)
	}
	var pull struct{ Code, Token string }
	for _, o := range c.Organs {
		if o.Delivery == "pull" {
			pull.Code, pull.Token = o.Code, o.Token
			break
		}
	}
	ctx := context.Background()
	raw := sample.EdXML(sample.Doc{From: m.Organ, FromName: m.Name, To: []string{pull.Code}, Number: "5", Notation: "BTN-DEMO"})
	if _, err := client.SendEdoc(ctx, raw, axis.MessageTypeEdoc, nil); err != nil {
		t.Fatalf("sendEdoc as the demo ministry: %v", err)
	}
	deadline := time.Now().Add(within)
	var inbox struct {
		Documents []struct{ Sender string } `json:"documents"`
	}
	for {
		api(t, "GET", c.APIURL+"/v1/inbox", pull.Token, nil, &inbox)
		if len(inbox.Documents) > 0 && inbox.Documents[len(inbox.Documents)-1].Sender == m.Organ {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ministry's edoc did not reach %s's inbox: %+v", pull.Code, inbox)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		items, err := client.GetReceivedEdocList(ctx, axis.MessageTypeStatus)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no 01 status came back to the demo ministry")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
