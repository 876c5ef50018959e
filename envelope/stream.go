package envelope

import (
	"io"
	"unicode/utf8"

	"lienthong/envelope/xmlscan"
)

// StreamTextChunk is the most character data ParseReader holds at once: a
// 270 MB base64 attachment reaches the base64 decoder in pieces of this size.
const StreamTextChunk = 64 << 10

// ParseReader is Parse for a body that is not held in memory (above the
// intake's blob threshold): it reads r once, through envelope/xmlscan in
// reader mode (bounded buffer, text in chunks of StreamTextChunk), and
// returns the Document Parse would give for the same bytes, with Raw nil.
// Attachments are decoded on the fly into their size and SHA-256, as Parse
// does. size is the body's length in bytes, checked against lim.MaxBytes
// before anything is read; UTF-8 is checked by the tokenizer as it reads.
func ParseReader(r io.Reader, size int64, lim Limits) (*Document, error) {
	lim = lim.withDefaults()
	if size > lim.MaxBytes {
		return nil, newErr(CodeTooLarge, "%d bytes is over the limit of %d", size, lim.MaxBytes)
	}
	p := parser{lim: lim, doc: &Document{}}
	p.stack = make([]frame, 0, 16)
	p.ns = make([]nsBinding, 0, 8)
	// As Parse checks UTF-8 before anything else, invalid UTF-8 anywhere is
	// bad_encoding whatever else is wrong: the bytes are validated as they
	// are read, and after a refusal the rest is read (only validated).
	u := &utf8Check{}
	r = io.TeeReader(r, u)
	s := xmlscan.NewReader(r, xmlscan.Options{MaxDepth: lim.MaxDepth, MaxAttrs: 1 << 16, MaxNameLen: 1 << 16,
		MaxTextChunk: StreamTextChunk})
	err := p.drive(s)
	if _, ok := err.(*Error); ok {
		if _, cerr := io.Copy(io.Discard, r); cerr != nil {
			return nil, &Error{Code: CodeNotXML, Msg: "reading the body", Err: cerr}
		}
	}
	if (err == nil || isEnvelopeErr(err)) && !u.valid() {
		return nil, newErr(CodeBadEncoding, "the document is not valid UTF-8")
	}
	if err != nil {
		return nil, err
	}
	switch p.root {
	case kEdRoot:
		if err := p.finishEdXML(); err != nil {
			return nil, err
		}
	case kHubRoot:
		if err := p.finishHub(); err != nil {
			return nil, err
		}
	}
	return p.doc, nil
}

func isEnvelopeErr(err error) bool { _, ok := err.(*Error); return ok }

// utf8Check validates a stream written to it in pieces.
type utf8Check struct {
	buf []byte // scratch: the bytes of a rune cut by the previous piece, then the piece
	n   int    // such pending bytes at the start of buf
	bad bool
}

func (u *utf8Check) Write(p []byte) (int, error) {
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

func (u *utf8Check) valid() bool { return !u.bad && u.n == 0 }
