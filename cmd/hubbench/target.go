package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// creds is the part of credentials.json that hubbench reads.
type creds struct {
	APIURL      string `json:"api_url"`
	DatabaseURL string `json:"database_url"`
	Organs      []struct {
		Code, Name, Token, Cert, Key, Delivery string
	} `json:"organs"`
	Operator string `json:"operator_token"`
	Auditor  string `json:"auditor_token"`
}

// hubTarget is the hub under test.
type hubTarget struct {
	creds creds
	cmd   *exec.Cmd // nil with --server
	dir   string
	keep  bool
	log   *slog.Logger
}

func attach(server, credPath string) (*hubTarget, error) {
	c, err := readCreds(credPath)
	if err != nil {
		return nil, err
	}
	c.APIURL = server
	return &hubTarget{creds: c}, nil
}

func readCreds(path string) (creds, error) {
	var c creds
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Organs) == 0 || c.DatabaseURL == "" {
		return c, fmt.Errorf("%s: no organs or database_url", path)
	}
	return c, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startDevHub builds (if needed) and starts `hubd dev` on a fresh data dir in
// its own process group and waits for /readyz.
func startDevHub(ctx context.Context, cfg config, log *slog.Logger) (*hubTarget, error) {
	bin := cfg.hubd
	if bin == "" {
		dir, err := os.MkdirTemp("", "hubbench-bin-")
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(dir, "hubd")
		log.Info("building hubd", "out", bin)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hubd").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/hubd (run hubbench from the repository root, or give --hubd): %v\n%s", err, out)
		}
	}
	dir := cfg.dataDir
	keep := cfg.keep || dir != ""
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hubbench-data-"); err != nil {
			return nil, err
		}
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	brokerListen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "hubd.log"))
	if err != nil {
		return nil, err
	}
	maxBody := max(int64(32<<20), int64(cfg.docBytes)*2)
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--listen", listen, "--broker-listen", brokerListen,
		"--max-body", strconv.FormatInt(maxBody, 10))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "LT_LOG_LEVEL=WARN")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &hubTarget{cmd: cmd, dir: dir, keep: keep, log: log}
	deadline := time.Now().Add(120 * time.Second)
	for {
		if resp, err := http.Get("http://" + listen + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.close()
			return nil, fmt.Errorf("hubd dev not ready within 120 s (log: %s)", logFile.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if t.creds, err = readCreds(filepath.Join(dir, "credentials.json")); err != nil {
		t.close()
		return nil, err
	}
	log.Info("hub ready", "api", t.creds.APIURL, "pid", cmd.Process.Pid, "data_dir", dir)
	return t, nil
}

func (t *hubTarget) close() {
	if t.cmd == nil {
		return
	}
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if !t.keep {
		_ = os.RemoveAll(t.dir)
	}
	t.cmd = nil
}

// procUsage is CPU time and memory of the hub, read from /proc.
type procUsage struct {
	cpu        time.Duration // hubd and every process below it
	hubCPU     time.Duration // hubd alone
	hubHWM     int64         // hubd's VmHWM, bytes
	postgresMB float64       // largest VmHWM among hubd's descendants, MB
}

const clockTicks = 100 // USER_HZ on Linux

// usage sums utime+stime of pid and its live descendants, and reads the
// peak resident set sizes. A process that exited in between is not counted.
func usage(pid int) (procUsage, error) {
	var u procUsage
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return u, err
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := statOf(p); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		todo = append(todo, children[p]...)
		if cpu, _, ok := statOf(p); ok {
			u.cpu += cpu
			if p == pid {
				u.hubCPU = cpu
			}
		}
		hwm := hwmOf(p)
		if p == pid {
			u.hubHWM = hwm
		} else if mb := float64(hwm) / (1 << 20); mb > u.postgresMB {
			u.postgresMB = mb
		}
	}
	return u, nil
}

// statOf returns utime+stime and the parent pid of p.
func statOf(p int) (time.Duration, int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] = state, f[1] = ppid, f[11] = utime, f[12] = stime
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, ppid, true
}

func hwmOf(p int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the CPU time every core of the machine spent busy (not idle,
// not waiting for I/O), read from the first line of /proc/stat.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already inside user time
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}
