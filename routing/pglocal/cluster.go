package pglocal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PreloadEnv names the environment variable whose value, when set, becomes
// the server's shared_preload_libraries (e.g. "pg_stat_statements" to find
// where PostgreSQL's time goes under load).
const PreloadEnv = "LT_PG_PRELOAD"

// Superuser is the name of the cluster's superuser.
const Superuser = "lienthong"

// Config describes where a cluster lives and how it runs.
type Config struct {
	// Dir holds the cluster (see the package doc), e.g. <data-dir>/postgres.
	// It is created if missing. Required.
	Dir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free port the first
	// time and reuses it afterwards (it is remembered in Dir/port). A server
	// found running keeps the port it has.
	Port int
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off): a crash of the server loses the last commits.
	// For tests only: a dev hub keeps fsync on, because nothing is
	// acknowledged before it is durable. It applies to the server this
	// Start launches; a server found running keeps its settings.
	Fast bool
	// BinDir overrides the lookup of the server binaries.
	BinDir string
	// Logger receives progress and the server's fate; nil discards.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server. Its methods are safe for
// concurrent use; dropping a Cluster without Stop leaves the server running.
type Cluster struct {
	dir      string
	bindir   string
	port     int
	password string
	reused   bool
	cred     *syscall.Credential // nil: run as the current user
	logger   *slog.Logger
}

// File and directory names inside Config.Dir.
const (
	dataSubdir   = "data"
	socketSubdir = "run"
	passwordFile = "password"
	portFile     = "port"
	logFile      = "postgres.log"
)

// Start starts the cluster in cfg.Dir, creating it on first use, or reuses
// the server already running there. It returns when the server accepts
// connections, or when ctx is done.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pglocal: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bindir, err := FindBinaries(ctx, cfg.BinDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bindir: bindir, logger: logger.With(slog.String("pgdir", dir))}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pglocal: create dir: %w", err)
	}
	if os.Getuid() == 0 {
		if c.cred, err = prepareForPostgresUser(ctx, dir, c.logger); err != nil {
			return nil, err
		}
	}

	// A server left running by a previous owner is reused as is. One that
	// is shutting down is waited out and then started anew.
	reused, err := c.reuse(ctx)
	if err != nil {
		return nil, err
	}
	if reused {
		return c, nil
	}

	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, cfg.Fast); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	if c.password, err = c.readPassword(); err != nil {
		return nil, err
	}

	picked := false
	if c.port = cfg.Port; c.port == 0 {
		if c.port, err = c.readPort(); err != nil {
			return nil, err
		}
	}
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		picked = true
	}
	for attempt := 1; ; attempt++ {
		err = c.start(ctx, cfg.Fast)
		if err == nil || ctx.Err() != nil || attempt == 10 {
			break
		}
		switch {
		case picked && errors.Is(err, errAddrInUse):
			// A port we picked was taken in between: pick another.
			if c.port, err = freePort(); err != nil {
				return nil, err
			}
			continue
		case errors.Is(err, errShmemInUse):
			// Children of a killed postmaster have not all exited yet.
			c.logger.InfoContext(ctx, "pglocal: waiting for the previous server's processes to exit")
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	if err := c.writeFile(portFile, []byte(strconv.Itoa(c.port)+"\n"), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// reuse connects to the server postmaster.pid names, if it is alive, and
// removes a stale postmaster.pid. It reports whether a server was reused.
func (c *Cluster) reuse(ctx context.Context) (bool, error) {
	pid, port, state := c.postmasterState()
	switch state {
	case running:
		var err error
		if c.password, err = c.readPassword(); err != nil {
			return false, err
		}
		if port == 0 {
			if port, err = c.readPort(); err != nil {
				return false, err
			}
		}
		c.port = port
		c.logger.InfoContext(ctx, "pglocal: reusing running server", slog.Int("pid", pid), slog.Int("port", port))
		watchCtx, stopWatch := context.WithCancel(ctx)
		err = c.waitReady(ctx, c.watchPid(watchCtx, pid))
		stopWatch()
		if errors.Is(err, errExited) {
			// It was stopping. Whatever it left is dealt with as usual.
			c.logger.InfoContext(ctx, "pglocal: running server went away; starting anew", slog.Int("pid", pid))
			_, _, state = c.postmasterState()
		} else if err != nil {
			return false, fmt.Errorf("pglocal: reuse server pid %d: %w", pid, err)
		} else {
			c.reused = true
			return true, nil
		}
	}
	if state == stale {
		c.logger.WarnContext(ctx, "pglocal: removing stale postmaster.pid", slog.Int("pid", pid))
		if err := os.Remove(filepath.Join(c.dataDir(), "postmaster.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("pglocal: remove stale postmaster.pid: %w", err)
		}
	}
	return false, nil
}

// watchPid returns a channel that receives once pid is no longer our
// postmaster, polling until ctx is done.
func (c *Cluster) watchPid(ctx context.Context, pid int) <-chan error {
	gone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if !c.isOurPostmaster(pid) {
					gone <- fmt.Errorf("pid %d is gone", pid)
					return
				}
			}
		}
	}()
	return gone
}

// URL returns a postgres:// URL for dbname as the superuser, over TCP.
func (c *Cluster) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir returns the cluster's directory (absolute).
func (c *Cluster) Dir() string { return c.dir }

// Reused reports whether Start found the server already running.
func (c *Cluster) Reused() bool { return c.reused }

// CreateDatabase creates the database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return c.admin(ctx, func(conn *pgx.Conn) error {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			return fmt.Errorf("pglocal: create database %s: %w", name, err)
		}
		if exists {
			return nil
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: lost a race
			return nil
		}
		if err != nil {
			return fmt.Errorf("pglocal: create database %s: %w", name, err)
		}
		return nil
	})
}

// DropDatabase drops the database name if it exists, closing its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	return c.admin(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("pglocal: drop database %s: %w", name, err)
		}
		return nil
	})
}

func (c *Cluster) admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pglocal: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// Stop shuts the server down (pg_ctl stop -m fast) and waits until it is
// gone, or until ctx is done. Stopping a stopped cluster is not an error.
func (c *Cluster) Stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	wait := 60 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), time.Second)
	}
	args := []string{"stop", "-D", c.dataDir(), "-m", "fast", "-w", "-t", strconv.Itoa(int(wait.Seconds()))}
	if out, err := c.command(ctx, "pg_ctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pglocal: pg_ctl stop: %w: %s", err, bytes.TrimSpace(out))
	}
	c.logger.InfoContext(ctx, "pglocal: server stopped")
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, dataSubdir) }

// initdb creates the cluster: superuser, password, scram-sha-256, C locale,
// UTF8, and the settings that do not change between starts.
func (c *Cluster) initdb(ctx context.Context, fast bool) error {
	began := time.Now()
	// A data dir without PG_VERSION is the debris of an interrupted initdb.
	if err := os.RemoveAll(c.dataDir()); err != nil {
		return fmt.Errorf("pglocal: remove partial data dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, passwordFile)); errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		if err := c.writeFile(passwordFile, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return err
		}
	}
	args := []string{
		"-D", c.dataDir(), "-U", Superuser, "--pwfile=" + filepath.Join(c.dir, passwordFile),
		"--auth=scram-sha-256", "--locale=C", "--encoding=UTF8", "--no-instructions",
	}
	if fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pglocal: initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	sockets := filepath.Join(c.dir, socketSubdir)
	// sun_path holds 108 bytes; without room for ".s.PGSQL.NNNNN" we go TCP only.
	if len(sockets)+len("/.s.PGSQL.65535") >= 108 {
		sockets = ""
	} else if err := c.mkdir(socketSubdir); err != nil {
		return err
	}
	conf := fmt.Sprintf("\n# pglocal\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"max_connections = 200\npassword_encryption = 'scram-sha-256'\n", strings.ReplaceAll(sockets, "'", "''"))
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pglocal: postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("pglocal: postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pglocal: postgresql.conf: %w", err)
	}
	c.logger.InfoContext(ctx, "pglocal: cluster initialised", slog.Duration("took", time.Since(began)))
	return nil
}

var (
	errAddrInUse  = errors.New("address in use")
	errExited     = errors.New("postgres exited")
	errShmemInUse = errors.New("shared memory still in use")
)

// start runs postgres in its own session and waits until it answers.
func (c *Cluster) start(ctx context.Context, fast bool) error {
	args := []string{"-D", c.dataDir(), "-c", "port=" + strconv.Itoa(c.port)}
	if fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// For measurement: LT_PG_PRELOAD=pg_stat_statements loads that library
	// into the server (e.g. under hubbench); it changes no durability setting.
	if preload := os.Getenv(PreloadEnv); preload != "" {
		args = append(args, "-c", "shared_preload_libraries="+preload)
	}
	logPath := filepath.Join(c.dir, logFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pglocal: open log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	logStart, _ := logf.Seek(0, io.SeekEnd)

	// Not CommandContext: the server must outlive ctx and this process.
	cmd := c.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pglocal: start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the server if it ever exits while we live
	c.logger.InfoContext(ctx, "pglocal: server starting", slog.Int("pid", cmd.Process.Pid), slog.Int("port", c.port), slog.Bool("fast", fast))

	if err := c.waitReady(ctx, exited); err != nil {
		tail := logTail(logPath, logStart)
		if ctx.Err() != nil {
			// Do not leave a half-started server behind.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
		}
		switch {
		case strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use"):
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		case strings.Contains(tail, "pre-existing shared memory block"):
			err = fmt.Errorf("%w: %w", errShmemInUse, err)
		}
		return fmt.Errorf("pglocal: start postgres on port %d: %w\n%s", c.port, err, tail)
	}
	return nil
}

// waitReady pings the server until it answers, ctx is done, or exited fires.
func (c *Cluster) waitReady(ctx context.Context, exited <-chan error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %w)", ctx.Err(), err)
		case werr := <-exited:
			return fmt.Errorf("%w: %v", errExited, werr)
		case <-tick.C:
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	return conn.Close(pctx)
}

// command builds an exec.Cmd for one of the server binaries, run as the
// postgres user when we are root, in the cluster dir, with the C locale.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bindir, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

func (c *Cluster) readPassword() (string, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, passwordFile))
	if err != nil {
		return "", fmt.Errorf("pglocal: read password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Cluster) readPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, portFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pglocal: read port: %w", err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pglocal: port file: %w", err)
	}
	return port, nil
}

// writeFile writes name in the cluster dir, owned by the server's user.
func (c *Cluster) writeFile(name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("pglocal: write %s: %w", name, err)
	}
	if err := os.Chmod(path, perm); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("pglocal: chmod %s: %w", name, err)
	}
	return c.chown(path)
}

func (c *Cluster) mkdir(name string) error {
	path := filepath.Join(c.dir, name)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("pglocal: mkdir %s: %w", name, err)
	}
	return c.chown(path)
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("pglocal: chown %s: %w", path, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns what the server wrote to its log since offset, at most 2 KiB.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	b = b[offset:]
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return strings.TrimSpace(string(b))
}
