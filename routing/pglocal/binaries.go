package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries reports that the PostgreSQL server binaries (initdb, pg_ctl,
// postgres) could not be found.
var ErrNoBinaries = errors.New("không tìm thấy PostgreSQL (initdb, pg_ctl, postgres) / " +
	"PostgreSQL server binaries not found: install them with `apt-get install postgresql` " +
	"(or put their directory in Config.BinDir)")

// serverBinaries are the programs Start needs.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinaries returns the directory that holds initdb, pg_ctl and postgres.
// A non-empty override is the only place looked at. Otherwise it asks
// `pg_config --bindir`, then takes the highest version under
// /usr/lib/postgresql/*/bin. It returns an error wrapping ErrNoBinaries when
// none fits.
func FindBinaries(ctx context.Context, override string) (string, error) {
	if override != "" {
		if hasServerBinaries(override) {
			return override, nil
		}
		return "", fmt.Errorf("pglocal: bin dir %s: %w", override, ErrNoBinaries)
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		if dir := strings.TrimSpace(string(out)); err == nil && hasServerBinaries(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Sort by numeric version, highest first: "9.6" < "10" < "15".
	slices.SortFunc(dirs, func(a, b string) int { return compareVersion(versionOf(b), versionOf(a)) })
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("pglocal: %w", ErrNoBinaries)
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf extracts "15" from /usr/lib/postgresql/15/bin.
func versionOf(bindir string) []int {
	var v []int
	for _, part := range strings.Split(filepath.Base(filepath.Dir(bindir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

func compareVersion(a, b []int) int { return slices.Compare(a, b) }
