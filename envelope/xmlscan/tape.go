package xmlscan

import (
	"errors"
	"io"
	"sync"
	"unsafe"
)

// Tape holds the tokens a Scanner in bytes mode read from its input, for
// replays: one tokenization of a document serves several readers (the
// envelope parser, then the signature verifier's passes), which then see
// exactly the same tokens. Character data that is the input as written is
// kept as a reference into the input, not copied; decoded text (references,
// line ends) and attribute lists are copied into the tape's arenas.
//
// A Tape is complete once the Scanner recording it returned io.EOF; an
// incomplete tape (a refused input, or one that outgrew MaxTapeBytes) must
// not be replayed as the document. A Tape is not safe for concurrent use.
type Tape struct {
	src      []byte
	opt      Options
	toks     []tapeToken
	data     []byte
	attrs    []Attr
	complete bool
	over     bool // outgrew MaxTapeBytes: recording stopped
	bytes    int  // the tape's own size, as counted against MaxTapeBytes
}

type tapeToken struct {
	prefix, local string // Target for a ProcInst
	data0, data1  int32  // Data: in src, or in the arena (inArena)
	attr0, attr1  int32
	kind          Kind
	flags         uint8
}

const (
	tfCDATA uint8 = 1 << iota
	tfRef
	tfSelfClosing
	tfArena
)

// MaxTapeBytes bounds the memory of one Tape (its tokens and arenas, not the
// input it refers to): a document of many small elements is recorded only
// up to this size, and the tape is then incomplete.
const MaxTapeBytes = 4 << 20

const tapeTokenSize = int(unsafe.Sizeof(tapeToken{}))

var tapes = sync.Pool{New: func() any { return new(Tape) }}

// maxPooledTape is the largest tape (in the bytes it holds) put back into
// the pool.
const maxPooledTape = 1 << 20

// NewTape returns an empty Tape (from a pool; Release returns it).
func NewTape() *Tape { return tapes.Get().(*Tape) }

// Release empties t and returns it to the pool; t must not be used after.
func (t *Tape) Release() {
	if t == nil {
		return
	}
	size := cap(t.toks)*tapeTokenSize + cap(t.data) + cap(t.attrs)*int(unsafe.Sizeof(Attr{}))
	clear(t.toks) // drop the strings
	clear(t.attrs)
	*t = Tape{toks: t.toks[:0], data: t.data[:0], attrs: t.attrs[:0]}
	if size <= maxPooledTape {
		tapes.Put(t)
	}
}

// Record makes s append every token it returns to t (which must be empty),
// and mark t complete when it returns io.EOF. It is for bytes mode only
// (NewBytes) and must be called before the first Next; otherwise it does
// nothing and t stays incomplete.
func (s *Scanner) Record(t *Tape) {
	if s.r != nil || s.pos != 0 || s.state != stProlog || len(t.toks) != 0 || t.src != nil || len(s.buf) > 1<<31-1 {
		return
	}
	t.src, t.opt = s.buf, s.opt
	s.tape = t
}

// Complete reports whether t holds every token of its input, up to the end.
// The input of a complete tape is valid UTF-8: the Scanner checks every
// byte it consumes.
func (t *Tape) Complete() bool { return t != nil && t.complete && !t.over }

// Options returns the options (defaults applied) of the Scanner that
// recorded t: its tokens are those of any Scanner over the same input with
// limits at least as wide.
func (t *Tape) Options() Options { return t.opt }

// Of reports whether t was recorded from b itself (the same bytes in
// memory, not a copy), or from b without a leading UTF-8 byte order mark.
func (t *Tape) Of(b []byte) bool {
	if t == nil || t.src == nil {
		return false
	}
	if len(b) == len(t.src) {
		return unsafe.SliceData(b) == unsafe.SliceData(t.src)
	}
	return len(b) == len(t.src)+3 && string(b[:3]) == "\xef\xbb\xbf" && len(t.src) > 0 &&
		unsafe.SliceData(b[3:]) == unsafe.SliceData(t.src)
}

// add records tok, which s returned from t.src.
func (t *Tape) add(tok Token) {
	if t.over {
		return
	}
	tt := tapeToken{kind: tok.Kind, prefix: tok.Prefix, local: tok.Local,
		attr0: int32(len(t.attrs)), attr1: int32(len(t.attrs) + len(tok.Attrs))}
	if tok.Kind == ProcInst {
		tt.local = tok.Target
	}
	if tok.CDATA {
		tt.flags |= tfCDATA
	}
	if tok.Ref {
		tt.flags |= tfRef
	}
	if tok.SelfClosing {
		tt.flags |= tfSelfClosing
	}
	if len(tok.Data) > 0 {
		if off, ok := within(t.src, tok.Data); ok {
			tt.data0, tt.data1 = int32(off), int32(off+len(tok.Data))
		} else {
			tt.flags |= tfArena
			tt.data0 = int32(len(t.data))
			t.data = append(t.data, tok.Data...)
			tt.data1 = int32(len(t.data))
			t.bytes += len(tok.Data)
		}
	}
	t.attrs = append(t.attrs, tok.Attrs...)
	t.toks = append(t.toks, tt)
	t.bytes += tapeTokenSize + len(tok.Attrs)*int(unsafe.Sizeof(Attr{}))
	if t.bytes > MaxTapeBytes {
		t.over = true
		clear(t.toks)
		clear(t.attrs)
		t.toks, t.data, t.attrs = t.toks[:0], t.data[:0], t.attrs[:0]
	}
}

// within returns the offset of sub in b when sub lies inside b's memory.
func within(b, sub []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	if p < base || p-base > uintptr(len(b)) || uintptr(len(sub)) > uintptr(len(b))-(p-base) {
		return 0, false
	}
	return int(p - base), true
}

// ErrIncompleteTape is returned by a replay of an incomplete Tape at its end.
var ErrIncompleteTape = errors.New("xmlscan: replay of an incomplete tape")

// Replay reads a Tape's tokens in order, as the Scanner returned them.
type Replay struct {
	t *Tape
	i int
}

// Replay returns a reader of t's tokens from the first.
func (t *Tape) Replay() *Replay { return &Replay{t: t} }

// Next returns the next recorded token; after the last one io.EOF for a
// complete tape, ErrIncompleteTape otherwise. Data and Attrs must not be
// modified.
func (r *Replay) Next() (Token, error) {
	t := r.t
	if r.i >= len(t.toks) || t.over {
		if t.Complete() {
			return Token{}, io.EOF
		}
		return Token{}, ErrIncompleteTape
	}
	tt := &t.toks[r.i]
	r.i++
	tok := Token{Kind: tt.kind, Prefix: tt.prefix, Local: tt.local,
		CDATA: tt.flags&tfCDATA != 0, Ref: tt.flags&tfRef != 0, SelfClosing: tt.flags&tfSelfClosing != 0}
	if tt.kind == ProcInst {
		tok.Local, tok.Target = "", tt.local
	}
	if tt.data1 > tt.data0 {
		if tt.flags&tfArena != 0 {
			tok.Data = t.data[tt.data0:tt.data1:tt.data1]
		} else {
			tok.Data = t.src[tt.data0:tt.data1:tt.data1]
		}
	}
	if tt.attr1 > tt.attr0 {
		tok.Attrs = t.attrs[tt.attr0:tt.attr1:tt.attr1]
	}
	return tok, nil
}
