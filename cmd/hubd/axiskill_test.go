package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"lienthong/adapters/axis"
	"lienthong/cmd/internal/sample"
	"lienthong/routing/embedbroker"
	"lienthong/routing/pgtest"
)

func buildAxisSim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "axis-sim")
	if out, err := exec.Command("go", "build", "-o", bin, "../axis-sim").CombinedOutput(); err != nil {
		t.Fatalf("go build axis-sim: %v: %s", err, out)
	}
	return bin
}

func writeJSONFile(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The real hubd process is SIGKILLed after it made an axis package durable
// and before updateStatus(done) was answered (the simulator, a separate
// axis-sim process, holds updateStatus). After a restart, exactly one
// document exists and the package is marked done once.
func TestAxisHubdKilledBeforeUpdateStatus(t *testing.T) {
	hubd := binary(t)
	simBin := buildAxisSim(t)
	dir := t.TempDir()
	ctx := context.Background()
	const (
		na, ministry      = "000.00.00.C02", "000.00.00.G91"
		hubSys, hubSecret = "lt.kill-test", "test-secret-hub"
		minSys, minSecret = "sys.g91", "test-secret-g91"
	)

	simAddr := freePort(t)
	simFile := writeJSONFile(t, filepath.Join(dir, "sim.json"), map[string]any{
		"systems": []map[string]any{
			{"id": hubSys, "secret": hubSecret, "organ": na},
			{"id": minSys, "secret": minSecret, "organ": ministry},
		},
		"agencies": []map[string]string{{"id": "1", "code": ministry, "oldCode": "G91", "name": "Bộ Thử nghiệm (test)"}},
	})
	sim := start(t, simBin, []string{"--listen", simAddr, "--systems", simFile}, "")
	simURL := "http://" + simAddr
	adminGet := func(path string, out any) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(simURL + "/_sim/" + path)
			if err == nil {
				var body struct {
					Data json.RawMessage `json:"data"`
				}
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err == nil {
					if out != nil {
						if err := json.Unmarshal(body.Data, out); err != nil {
							t.Fatal(err)
						}
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("axis-sim not answering: %v\n%s", err, sim.out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	adminGet("refusals", nil) // up

	dbURL := pgtest.NewDatabase(t)
	broker := embedbroker.StartForTest(t)
	directory := writeJSONFile(t, filepath.Join(dir, "organs.json"), map[string]any{
		"organs": []map[string]string{{"code": na, "name": "Ủy ban Pháp luật (test)", "delivery": "pull"}}})
	systems := writeJSONFile(t, filepath.Join(dir, "axis.json"), map[string]any{
		"systems": []map[string]any{{"systemid": hubSys, "secret": hubSecret, "organs": []string{na}}}})
	listen := freePort(t)
	args := []string{"serve", "--database-url", dbURL, "--kafka-brokers", broker.Addrs()[0], "--listen", listen,
		"--directory", directory, "--axis-url", simURL, "--axis-systems", systems, "--axis-poll", "1s"}

	// The ministry sends; updateStatus will hang once.
	mc, err := axis.New(axis.Config{Endpoint: simURL, SystemID: minSys, Secret: minSecret})
	if err != nil {
		t.Fatal(err)
	}
	raw := sample.EdXML(sample.Doc{From: ministry, To: []string{na}, Number: "13", Notation: "BTN"})
	if _, err := mc.SendEdoc(ctx, raw, axis.MessageTypeEdoc, nil); err != nil {
		t.Fatal(err)
	}
	var pending []struct {
		DocID string `json:"docId"`
	}
	adminGet("pending?organ="+na, &pending)
	if len(pending) != 1 {
		t.Fatalf("pending %+v", pending)
	}
	resp, err := http.Post(simURL+"/_sim/fault?op=updateStatus&n=1&hang=1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	count := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&n); err != nil {
			return -1 // not migrated yet
		}
		return n
	}
	updates := func() []string {
		var u map[string][]string
		adminGet("status-updates", &u)
		return u[pending[0].DocID]
	}

	p := start(t, hubd, args, "")
	waitReady(t, p, "http://"+listen, 90*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the axis package was not accepted\n%s", p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Kill only once the hub's updateStatus call has taken the fault, i.e.
	// is being held by the simulator: committed, updateStatus not answered.
	deadline = time.Now().Add(60 * time.Second)
	for {
		var faults map[string]int
		adminGet("faults", &faults)
		if faults["updateStatus"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub never called updateStatus\n%s", p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill(syscall.SIGKILL)
	<-p.done
	if u := updates(); len(u) != 0 {
		t.Fatalf("marked %v before the restart", u)
	}

	p = start(t, hubd, args, "")
	waitReady(t, p, "http://"+listen, 90*time.Second)
	deadline = time.Now().Add(60 * time.Second)
	for !slices.Equal(updates(), []string{"done"}) {
		if time.Now().After(deadline) {
			t.Fatalf("not marked done after the restart: %v\n%s", updates(), p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d documents after the restart, want exactly 1", n)
	}
	var refusals []any
	adminGet("refusals", &refusals)
	if len(refusals) != 0 {
		t.Fatalf("the simulator refused requests: %v", refusals)
	}
	p.stop(t)
	sim.stop(t)
}
