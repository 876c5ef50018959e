package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/pglocal"
)

// EnvURL names the environment variable that points the tests at an
// existing server instead of a throwaway cluster.
const EnvURL = "LT_TEST_DATABASE_URL"

// server is the one PostgreSQL server of this test binary.
var server struct {
	mu       sync.Mutex // guards the fields below
	inMain   bool
	started  bool
	err      error // why the server could not be had; sticky
	dir      string
	cluster  *pglocal.Cluster // nil when EnvURL is used
	adminURL string
	admin    *pgxpool.Pool
}

// Main runs the tests and then stops the cluster, if one was started, and
// removes its directory. Use it as os.Exit(pgtest.Main(m)) in TestMain.
// The cluster itself starts on the first NewDatabase, so a test binary whose
// tests all skip pays nothing.
func Main(m *testing.M) int {
	server.mu.Lock()
	server.inMain = true
	server.mu.Unlock()

	code := m.Run()

	server.mu.Lock()
	defer server.mu.Unlock()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// NewDatabase creates a fresh, empty database and returns its URL. The
// database is dropped, with any sessions still open on it, when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin, adminURL, err := ensureServer(t)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}

// ensureServer starts the cluster (or connects to EnvURL) once.
func ensureServer(t testing.TB) (*pgxpool.Pool, string, error) {
	t.Helper()
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.started || server.err != nil {
		return server.admin, server.adminURL, server.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	if err := start(ctx); err != nil {
		server.err = err
		return nil, "", err
	}
	server.started = true
	if server.cluster != nil {
		t.Logf("pgtest: PostgreSQL cluster started in %v (port %d, %s)",
			time.Since(began).Round(time.Millisecond), server.cluster.Port(), server.dir)
	}
	return server.admin, server.adminURL, nil
}

func start(ctx context.Context) error {
	server.adminURL = os.Getenv(EnvURL)
	if server.adminURL == "" {
		if !server.inMain {
			return errors.New("NewDatabase needs `os.Exit(pgtest.Main(m))` in TestMain, which stops the cluster")
		}
		dir, err := os.MkdirTemp("", "lienthong-pgtest-")
		if err != nil {
			return err
		}
		server.dir = dir
		server.cluster, err = pglocal.Start(ctx, pglocal.Config{Dir: dir, Fast: true})
		if err != nil {
			return err
		}
		server.adminURL = server.cluster.URL("postgres")
	}
	admin, err := pgxpool.New(ctx, server.adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(server.adminURL), err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return fmt.Errorf("connect to %s: %w", redact(server.adminURL), err)
	}
	server.admin = admin
	return nil
}

// shutdown stops what start started. server.mu must be held.
func shutdown() error {
	if server.admin != nil {
		server.admin.Close()
	}
	var errs []error
	if server.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := server.cluster.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if server.dir != "" {
		if err := os.RemoveAll(server.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pgtest: shutdown: %w", err)
	}
	return nil
}

// databaseName makes a unique, readable, valid database name from a test
// name: "lt_" + the test name folded to [a-z0-9_] + "_" + 8 random hex
// digits (test binaries of several packages may share one server).
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() == 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return "lt_" + b.String() + "_" + hex.EncodeToString(suffix)
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
