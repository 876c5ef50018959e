//go:build !unix

package attsig

import (
	"io"
	"os"
)

// mapFile reads the n bytes of f (no mmap on this system).
func mapFile(f *os.File, n int64) ([]byte, func(), error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, nil, err
	}
	return b, func() {}, nil
}
