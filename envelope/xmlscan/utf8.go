package xmlscan

import "unicode/utf8"

// UTF8Check is an io.Writer that validates, as UTF-8, a stream written to
// it in pieces of any size (a rune may be cut between two pieces). Readers
// of a streamed body tee it through one so that invalid UTF-8 anywhere can
// be reported as such, whatever else the scanner refused first.
type UTF8Check struct {
	buf []byte // scratch: the bytes of a rune cut by the previous piece, then the piece
	n   int    // such pending bytes at the start of buf
	bad bool
}

// Write implements io.Writer; it never fails.
func (u *UTF8Check) Write(p []byte) (int, error) {
	if u.bad {
		return len(p), nil
	}
	u.buf = append(u.buf[:u.n], p...)
	b := u.buf
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		u.bad = true
	}
	u.n = copy(u.buf, b[cut:])
	return len(p), nil
}

// Valid reports whether everything written so far is UTF-8 and ends on a
// whole rune.
func (u *UTF8Check) Valid() bool { return !u.bad && u.n == 0 }
