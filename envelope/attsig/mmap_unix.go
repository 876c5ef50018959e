//go:build unix

package attsig

import (
	"os"
	"syscall"
)

// mapFile maps the n bytes of f read-only: the PDF scanner reads a decoded
// PDF of a spooled body from the page cache, not from the heap.
func mapFile(f *os.File, n int64) ([]byte, func(), error) {
	if n == 0 {
		return nil, func() {}, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}
