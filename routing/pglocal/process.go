package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serverState is what postmaster.pid says about the data dir.
type serverState int

const (
	absent  serverState = iota // no postmaster.pid
	running                    // a live postmaster of this data dir
	stale                      // the pid is dead, or is not a postmaster of this dir
)

// postmasterState reads data/postmaster.pid and checks its pid.
func (c *Cluster) postmasterState() (pid, port int, state serverState) {
	b, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, 0, absent
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		// Torn or empty: postgres writes the file in one go, so this is a
		// crash during startup; nobody can be running with it.
		return 0, 0, stale
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if !c.isOurPostmaster(pid) {
		return pid, port, stale
	}
	return pid, port, running
}

// isOurPostmaster reports whether pid is alive and, where /proc can tell, has
// this data dir as its working directory (the postmaster chdirs there). When
// in doubt it answers true: removing a live server's pid file is far worse
// than refusing to start.
func (c *Cluster) isOurPostmaster(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		// Gone in between (ENOENT) is dead; EACCES or no /proc is doubt.
		if _, serr := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(serr, os.ErrNotExist) {
			if _, perr := os.Stat("/proc/self"); perr == nil {
				return false
			}
		}
		return true
	}
	want, err := filepath.EvalSymlinks(c.dataDir())
	if err != nil {
		return true
	}
	return strings.TrimSuffix(cwd, " (deleted)") == want
}

// prepareForPostgresUser makes dir usable by the postgres user and returns
// its credentials: it chowns dir and everything below it, and adds o+x to
// each ancestor of dir that lacks it.
func prepareForPostgresUser(ctx context.Context, dir string, logger *slog.Logger) (*syscall.Credential, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	uid, gid := int(cred.Uid), int(cred.Gid)
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return nil, fmt.Errorf("pglocal: chown %s to postgres: %w", dir, err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("pglocal: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			mode := fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)
			if err := os.Chmod(p, mode|0o001); err != nil {
				return nil, fmt.Errorf("pglocal: make %s traversable for postgres: %w", p, err)
			}
			logger.InfoContext(ctx, "pglocal: added o+x so that postgres can reach its dir", slog.String("path", p))
		}
		if p == filepath.Dir(p) {
			return cred, nil
		}
	}
}

// postgresCredential returns the uid and gid of the postgres user, with no
// supplementary groups.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root, PostgreSQL must run as user postgres: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pglocal: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
