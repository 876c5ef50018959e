package xmlscan

import (
	"testing"
	"unicode/utf8"
)

// Written in pieces of every size, the stream is judged as utf8.Valid
// judges it whole.
func TestUTF8CheckAcrossPieces(t *testing.T) {
	for _, s := range []string{"", "ascii", "Quốc hội — 国会 🏛", "bad\xffbyte", "cut\xe1\xbb", "\xe1\xbb\x91k", "\xc0\xaf"} {
		for size := 1; size <= len(s)+1; size++ {
			var u UTF8Check
			for i := 0; i < len(s); i += size {
				u.Write([]byte(s[i:min(i+size, len(s))]))
			}
			if got, want := u.Valid(), utf8.ValidString(s); got != want {
				t.Errorf("%q in pieces of %d: Valid = %v, want %v", s, size, got, want)
			}
		}
	}
}

func FuzzUTF8Check(f *testing.F) {
	f.Add([]byte("Quốc hội"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, size uint8) {
		n := int(size%16) + 1
		var u UTF8Check
		for i := 0; i < len(b); i += n {
			u.Write(b[i:min(i+n, len(b))])
		}
		if u.Valid() != utf8.Valid(b) {
			t.Fatalf("pieces of %d: Valid = %v, utf8.Valid = %v", n, u.Valid(), utf8.Valid(b))
		}
	})
}
