package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startCluster starts a Fast cluster in dir and makes sure that whatever
// the test does with the handle, no server outlives the test.
func startCluster(t *testing.T, ctx context.Context, dir string) *Cluster {
	t.Helper()
	return startClusterConfig(t, ctx, Config{Dir: dir, Fast: true})
}

func startClusterConfig(t *testing.T, ctx context.Context, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return c
}

func exec1(t *testing.T, ctx context.Context, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func countRows(t *testing.T, ctx context.Context, url string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM docs").Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// seed creates database app with one row in docs.
func seed(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	for range 2 { // idempotent
		if err := c.CreateDatabase(ctx, "app"); err != nil {
			t.Fatalf("CreateDatabase: %v", err)
		}
	}
	exec1(t, ctx, c.URL("app"), "CREATE TABLE docs (id text PRIMARY KEY)")
	exec1(t, ctx, c.URL("app"), "INSERT INTO docs VALUES ($1)", "văn bản 1")
}

func TestStopAndStartKeepsData(t *testing.T) {
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "postgres")
	c := startCluster(t, ctx, dir)
	seed(t, ctx, c)
	port := c.Port()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	c2 := startCluster(t, ctx, dir)
	if c2.Reused() {
		t.Error("Reused() = true after a clean stop")
	}
	if c2.Port() != port {
		t.Errorf("port = %d, want the remembered %d", c2.Port(), port)
	}
	if n := countRows(t, ctx, c2.URL("app")); n != 1 {
		t.Errorf("rows after restart = %d, want 1", n)
	}
	if !strings.HasPrefix(c2.URL("app"), fmt.Sprintf("postgres://%s:", Superuser)) ||
		!strings.Contains(c2.URL("app"), fmt.Sprintf("@127.0.0.1:%d/app", port)) {
		t.Errorf("URL = %s", c2.URL("app"))
	}
	fi, err := os.Stat(filepath.Join(dir, passwordFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v, mode %v", err, fi.Mode())
	}
}

func TestStartReusesServerOfDeadOwner(t *testing.T) {
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "postgres")
	c := startCluster(t, ctx, dir)
	seed(t, ctx, c)
	pid, _, state := c.postmasterState()
	if state != running {
		t.Fatalf("postmaster state = %v, want running", state)
	}
	// The server is in its own session: a signal to our process group
	// (a terminal's ^C, a supervisor's kill) does not reach it.
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("server session = %d (%v), want its own (%d)", sid, err, pid)
	}

	// The owner "dies": the handle is dropped without Stop.
	c2 := startCluster(t, ctx, dir)
	if !c2.Reused() {
		t.Error("Reused() = false, want the running server reused")
	}
	if pid2, _, _ := c2.postmasterState(); pid2 != pid {
		t.Errorf("postmaster pid = %d, want %d", pid2, pid)
	}
	if c2.Port() != c.Port() {
		t.Errorf("port = %d, want %d", c2.Port(), c.Port())
	}
	if n := countRows(t, ctx, c2.URL("app")); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
}

func TestStartRemovesStalePidFile(t *testing.T) {
	// A pid that is certainly dead: a child we started and reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, test := range []struct {
		name string
		pid  int
	}{
		{"dead pid", dead.Process.Pid},
		{"pid reused by another process", os.Getpid()},
	} {
		t.Run(test.name, func(t *testing.T) {
			ctx := testContext(t)
			dir := filepath.Join(t.TempDir(), "postgres")
			c := startCluster(t, ctx, dir)
			seed(t, ctx, c)
			pidFile := filepath.Join(c.dataDir(), "postmaster.pid")
			live, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			// What a crashed server leaves behind, with the pid swapped.
			lines := strings.SplitN(string(live), "\n", 2)
			stalePid := fmt.Sprintf("%d\n%s", test.pid, lines[1])
			if err := os.WriteFile(pidFile, []byte(stalePid), 0o600); err != nil {
				t.Fatal(err)
			}

			c2 := startCluster(t, ctx, dir)
			if c2.Reused() {
				t.Error("Reused() = true for a stale pid file")
			}
			if n := countRows(t, ctx, c2.URL("app")); n != 1 {
				t.Errorf("rows = %d, want 1", n)
			}
		})
	}
}

func TestNoBinaries(t *testing.T) {
	_, err := Start(t.Context(), Config{Dir: t.TempDir(), BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start with an empty BinDir: err = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"không tìm thấy PostgreSQL", "apt-get install postgresql"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestVersionOrder(t *testing.T) {
	for _, test := range []struct {
		a, b string
		want int
	}{
		{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/9.6/bin", 1},
		{"/usr/lib/postgresql/10/bin", "/usr/lib/postgresql/16/bin", -1},
		{"/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/16/bin", 0},
	} {
		if got := compareVersion(versionOf(test.a), versionOf(test.b)); got != test.want {
			t.Errorf("compare(%s, %s) = %d, want %d", test.a, test.b, got, test.want)
		}
	}
}

func TestStartAfterServerCrash(t *testing.T) {
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "postgres")
	// Durable, as in `hubd dev`: Fast mode loses the last commits in a crash
	// (synchronous_commit=off leaves them in the dead server's WAL buffers).
	c := startClusterConfig(t, ctx, Config{Dir: dir})
	seed(t, ctx, c)
	pid, _, _ := c.postmasterState()
	// The postmaster dies hard; its children notice and exit on their own,
	// and postmaster.pid stays behind.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for c.isOurPostmaster(pid) {
		time.Sleep(10 * time.Millisecond)
	}

	c2 := startClusterConfig(t, ctx, Config{Dir: dir})
	if c2.Reused() {
		t.Error("Reused() = true after the server was killed")
	}
	if n := countRows(t, ctx, c2.URL("app")); n != 1 {
		t.Errorf("rows after crash recovery = %d, want 1", n)
	}
}
