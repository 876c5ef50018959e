package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// spoolPrefix names the private directories of hub processes under the
// spool base: each holds the spooled bodies (restapi) and the attachments
// decoded from them (envelope/verify) of one process.
const spoolPrefix = "lt-spool-"

// openSpoolDir makes this process's private spool directory under base
// (os.TempDir() when ""), mode 0700, and holds an exclusive lock on its
// .lock file for as long as the process runs. First it removes every
// sibling spool directory whose lock nobody holds: the leftovers of a
// process that crashed mid-upload (a 200 MB body must not stay on disk
// forever), never the files of a process still running, even one sharing
// the base. release unlocks and removes the directory.
func openSpoolDir(base string, log *slog.Logger) (dir string, release func(), err error) {
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, fmt.Errorf("spool directory: %w", err)
	}
	sweepSpoolDirs(base, log)
	dir, err = os.MkdirTemp(base, spoolPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("spool directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("spool directory: %w", err)
	}
	return dir, func() {
		os.RemoveAll(dir)
		lock.Close() // releases the lock
	}, nil
}

// spoolGrace is how old an unlocked spool directory must be to be swept.
const spoolGrace = 5 * time.Second

var errLocked = errors.New("locked by a running process")

// lockDir takes the exclusive lock of dir/.lock without waiting.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}

// sweepSpoolDirs removes the spool directories under base that no running
// process holds.
func sweepSpoolDirs(base string, log *slog.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		log.Warn("hub: cannot list the spool base", "dir", base, "error", err)
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), spoolPrefix) {
			continue
		}
		d := filepath.Join(base, e.Name())
		// Only a real directory of ours, private as openSpoolDir makes it
		// (the base may be a shared temp folder). A directory made in the
		// last seconds may be one whose process has not taken its lock yet.
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || time.Since(fi.ModTime()) < spoolGrace {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uint32(os.Geteuid()) {
			continue
		}
		lock, err := lockDir(d)
		if err != nil { // held (a live process), or not ours to touch
			continue
		}
		var files, bytes int64
		_ = filepath.Walk(d, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() && fi.Name() != ".lock" {
				files, bytes = files+1, bytes+fi.Size()
			}
			return nil
		})
		if err := os.RemoveAll(d); err != nil {
			log.Warn("hub: cannot remove a crashed process's spool directory", "dir", d, "error", err)
		} else if files > 0 {
			log.Info("hub: removed the spool files a crashed process left", "dir", d, "files", files, "bytes", bytes)
		}
		lock.Close()
	}
}
