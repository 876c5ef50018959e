package logverify

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Hostile archives are refused before anything is checked, naming the part:
// not a zip, unsafe paths, and a bundle that decompresses past its budget
// (a zip bomb: highly compressible files whose sum is over the limit).
func TestVerifyBundleRefusesHostileArchives(t *testing.T) {
	mb := bytes.Repeat([]byte{'0'}, 1<<20)
	bomb := zipOf(t, map[string][]byte{"a.bin": mb, "b.bin": mb, "c.bin": mb})
	if len(bomb) > 64<<10 {
		t.Fatalf("the test bomb is %d bytes compressed; want a small archive", len(bomb))
	}
	for _, tc := range []struct {
		name, part, want string
		b                []byte
		max              int64
	}{
		{"not a zip", "bundle", "not a zip", []byte("PK not really"), 0},
		{"parent path", "../evil", "unsafe path", zipOf(t, map[string][]byte{"../evil": []byte("x")}), 0},
		{"absolute path", "/etc/passwd", "unsafe path", zipOf(t, map[string][]byte{"/etc/passwd": []byte("x")}), 0},
		{"zip bomb", "bundle", "decompresses to more than", bomb, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(tc.b, nil, BundleOptions{MaxBytes: tc.max})
			var pe *PartError
			if !errors.As(err, &pe) || pe.Part != tc.part || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want part %q with %q", err, tc.part, tc.want)
			}
		})
	}
	// Under the budget the same archive gets past the reading stage (it then
	// fails for its missing manifest, which is the next check).
	_, err := VerifyBundle(bomb, nil, BundleOptions{MaxBytes: 4 << 20})
	var pe *PartError
	if !errors.As(err, &pe) || pe.Part != BundleManifest {
		t.Fatalf("within the budget: %v, want the manifest check", err)
	}
}
