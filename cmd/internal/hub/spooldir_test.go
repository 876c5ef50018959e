package hub

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The spool directory of a process that crashed is removed at the next
// start; that of a running process (locked) and a directory just made (its
// process may not hold the lock yet) are left alone; a process removes its
// own at exit.
func TestSpoolDirSweepsWhatACrashLeft(t *testing.T) {
	base := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	live, releaseLive, err := openSpoolDir(base, log)
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir, name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	liveFile := write(live, "lt-body-1", 1<<10)
	crashed := filepath.Join(base, spoolPrefix+"crashed")
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	write(crashed, ".lock", 0)
	write(crashed, "lt-body-2", 1<<20)
	write(crashed, "lt-pdf-3", 1<<10)
	young := filepath.Join(base, spoolPrefix+"young")
	if err := os.MkdirAll(young, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	for _, d := range []string{crashed, live} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(base, "not-ours")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	// Not a private directory of a hub: a shared one (mode 0755) and a
	// symbolic link to a folder elsewhere are left alone, however old.
	shared := filepath.Join(base, spoolPrefix+"shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	sharedFile := write(shared, "keep", 1)
	target := t.TempDir()
	targetFile := write(target, "keep", 1)
	link := filepath.Join(base, spoolPrefix+"link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(shared, old0(), old0()); err != nil {
		t.Fatal(err)
	}

	next, releaseNext, err := openSpoolDir(base, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Errorf("the crashed process's spool directory is still there (%v)", err)
	}
	for _, keep := range []string{liveFile, young, other, next, sharedFile, targetFile, link} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	releaseLive()
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("a process's spool directory stays after it released it (%v)", err)
	}
	releaseNext()
}

// A hub's API role spools under Config.SpoolDir, in a directory of its own.
func TestHubSpoolsUnderSpoolDir(t *testing.T) {
	base := t.TempDir()
	startHub(t, func(c *Config) { c.SpoolDir = base })
	dirs, err := filepath.Glob(filepath.Join(base, spoolPrefix+"*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("spool directories under %s: %v (%v), want one", base, dirs, err)
	}
	if fi, err := os.Stat(dirs[0]); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory %s: %v %v, want mode 0700", dirs[0], fi.Mode(), err)
	}
}

func old0() time.Time { return time.Now().Add(-time.Minute) }
