package envelope

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// b64Stream decodes base64 text handed to it in pieces (the text of one
// ContentTransferEncoded or hub Payload element) and keeps only what the
// model needs: the decoded size, its SHA-256 and the first bytes for
// sniffing. The decoded attachment is never held in memory as a whole.
//
// Whitespace (space, tab, CR, LF) is ignored anywhere, as MIME-wrapped base64
// from Java and .NET encoders needs. Padding is optional at the very end; a
// '=' followed by more data is invalid.
type b64Stream struct {
	h     hash.Hash
	size  int64
	max   int64 // decoded size limit; 0 = none
	head  []byte
	tail  []byte // last decoded bytes of a zip, for its central directory
	chars []byte // filtered base64 characters not decoded yet
	out   []byte
	pad   int // '=' seen so far
	err   error
	big   bool // size went over max
	// sink, when set, receives the decoded bytes as they are decoded
	// (valid during the call only).
	sink func([]byte)
	// keep: the decoded bytes are also appended to kept (by sink, see
	// keepDecoded), as long as they stay within its max; then keep is
	// cleared.
	keep bool
	kept []byte
	bufs *b64Bufs // where h, chars, out and head come from (pooled)
}

const (
	b64Chunk   = 16 << 10 // filtered characters per decode call, a multiple of 4
	b64HeadLen = 512      // decoded bytes kept for sniffing
)

// b64Valid marks the characters of the standard alphabet.
var b64Valid = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

// b64Bits is b64Valid as bits, so that eight characters are checked with
// one branch (b64Run8).
var b64Bits = func() (t [256]uint8) {
	for c, ok := range b64Valid {
		if ok {
			t[c] = 1
		}
	}
	return t
}()

// b64Run8 reports whether the 8 bytes of b are all alphabet characters.
func b64Run8(b []byte) bool {
	_ = b[7]
	return b64Bits[b[0]]&b64Bits[b[1]]&b64Bits[b[2]]&b64Bits[b[3]]&
		b64Bits[b[4]]&b64Bits[b[5]]&b64Bits[b[6]]&b64Bits[b[7]] != 0
}

// b64Bufs are a b64Stream's scratch buffers and hash, pooled across
// parses: nothing in them outlives the parse (the Document gets strings and
// freshly allocated kept content only).
type b64Bufs struct {
	h          hash.Hash
	chars, out []byte
	head       []byte
}

var b64Pool = sync.Pool{New: func() any {
	return &b64Bufs{h: sha256.New(), chars: make([]byte, 0, b64Chunk),
		out: make([]byte, base64.StdEncoding.DecodedLen(b64Chunk)), head: make([]byte, 0, b64HeadLen)}
}}

// release returns the scratch buffers to the pool; the stream may be reset
// and used again afterwards (it takes new ones).
func (s *b64Stream) release() {
	if s.bufs == nil {
		return
	}
	b := s.bufs
	b.chars, b.head = s.chars[:0], s.head[:0]
	s.bufs, s.h, s.chars, s.out, s.head = nil, nil, nil, nil, nil
	b64Pool.Put(b)
}

func (s *b64Stream) reset(max int64) {
	if s.bufs == nil {
		s.bufs = b64Pool.Get().(*b64Bufs)
		s.h, s.chars, s.out, s.head = s.bufs.h, s.bufs.chars, s.bufs.out, s.bufs.head
	}
	s.h.Reset()
	s.size, s.max, s.pad, s.err, s.big, s.sink = 0, max, 0, nil, false, nil
	s.chars = s.chars[:0]
	s.head = s.head[:0]
	s.tail = s.tail[:0]
	s.keep, s.kept = false, nil
}

// keepDecoded makes the stream keep the decoded bytes, up to max of them,
// in a buffer of capacity hint (a fresh one: it is handed over to the
// Document).
func (s *b64Stream) keepDecoded(max int64, hint int) {
	s.keep, s.kept = true, make([]byte, 0, hint)
	s.sink = func(b []byte) {
		switch {
		case !s.keep:
		case int64(len(s.kept)+len(b)) > max:
			s.keep, s.kept = false, nil
		default:
			s.kept = append(s.kept, b...)
		}
	}
}

// write feeds a piece of the element's text.
func (s *b64Stream) write(text []byte) {
	if s.err != nil {
		return
	}
	for i := 0; i < len(text); {
		// Copy the longest run of alphabet characters at once.
		j := i
		end := min(len(text), i+cap(s.chars)-len(s.chars))
		for j+8 <= end && b64Run8(text[j:j+8]) {
			j += 8
		}
		for j < end && b64Valid[text[j]] {
			j++
		}
		if j > i {
			if s.pad > 0 {
				s.err = errors.New("data after '=' padding")
				return
			}
			s.chars = append(s.chars, text[i:j]...)
			i = j
			if len(s.chars) == cap(s.chars) {
				s.flush(false)
				if s.err != nil {
					return
				}
			}
			continue
		}
		switch c := text[i]; c {
		case ' ', '\t', '\r', '\n':
		case '=':
			s.pad++
			if s.pad > 2 {
				s.err = errors.New("too much '=' padding")
				return
			}
			s.chars = append(s.chars, c)
			if len(s.chars) == cap(s.chars) {
				s.flush(false)
				if s.err != nil {
					return
				}
			}
		default:
			s.err = fmt.Errorf("character %q is not base64", c)
			return
		}
		i++
	}
}

// flush decodes the buffered characters; final allows a partial last quantum.
func (s *b64Stream) flush(final bool) {
	if len(s.chars) == 0 {
		return
	}
	enc := base64.StdEncoding
	if final && len(s.chars)%4 != 0 {
		if s.pad > 0 {
			s.err = errors.New("truncated base64 (padding before the end of a quantum)")
			return
		}
		enc = base64.RawStdEncoding // tolerate missing padding
	}
	n, err := enc.Decode(s.out, s.chars)
	if err != nil {
		s.err = err
		return
	}
	s.chars = s.chars[:0]
	s.consume(s.out[:n])
}

func (s *b64Stream) consume(b []byte) {
	s.size += int64(len(b))
	if s.max > 0 && s.size > s.max {
		s.big = true
		s.err = fmt.Errorf("decoded size over the limit of %d bytes", s.max)
		return
	}
	if room := b64HeadLen - len(s.head); room > 0 {
		s.head = append(s.head, b[:min(room, len(b))]...)
	}
	if sniff(s.head) == "application/zip" {
		s.keepTail(b)
	}
	s.h.Write(b)
	if s.sink != nil {
		s.sink(b)
	}
}

// finish decodes what is left and returns the result.
func (s *b64Stream) finish() (size int64, sum string, err error) {
	if s.err == nil {
		s.flush(true)
	}
	if s.err != nil {
		return 0, "", s.err
	}
	return s.size, hex.EncodeToString(s.h.Sum(nil)), nil
}

const b64TailLen = 16 << 10

// keepTail keeps the last b64TailLen decoded bytes.
func (s *b64Stream) keepTail(b []byte) {
	if s.tail == nil {
		s.tail = make([]byte, 0, b64TailLen)
	}
	if len(b) >= b64TailLen {
		s.tail = append(s.tail[:0], b[len(b)-b64TailLen:]...)
		return
	}
	if over := len(s.tail) + len(b) - b64TailLen; over > 0 {
		s.tail = s.tail[:copy(s.tail, s.tail[over:])]
	}
	s.tail = append(s.tail, b...)
}

// sniff names the type of the decoded content from its first bytes.
func sniff(head []byte) string {
	switch {
	case len(head) >= 4 && string(head[:4]) == "%PDF":
		return "application/pdf"
	case len(head) >= 4 && string(head[:4]) == "PK\x03\x04":
		return "application/zip"
	}
	return ""
}

// zipView serves the parts of a zip attachment that were kept (the first
// and the last bytes) to archive/zip, which needs only the end of central
// directory and the central directory to list the entries.
type zipView struct {
	head, tail []byte
	size       int64
}

func (z zipView) ReadAt(p []byte, off int64) (int, error) {
	tailStart := z.size - int64(len(z.tail))
	switch {
	case off >= tailStart && off+int64(len(p)) <= z.size:
		return copy(p, z.tail[off-tailStart:]), nil
	case off+int64(len(p)) <= int64(len(z.head)):
		return copy(p, z.head[off:]), nil
	}
	return 0, errors.New("zip: outside the kept bytes")
}

// zipWarnings inspects a zip attachment's directory, as far as its kept bytes
// show it, and reports what the unzip stage will have to refuse: entry names
// that leave the extraction directory, and compression ratios typical of a zip
// bomb. Parse never unzips; this is advice for the report.
func zipWarnings(cid string, head, tail []byte, size int64) []string {
	type entry struct {
		name         string
		csize, usize uint64
	}
	var entries []entry
	// A non-local name may come back as ErrInsecurePath with a usable reader.
	if zr, _ := zip.NewReader(zipView{head, tail, size}, size); zr != nil {
		for _, f := range zr.File {
			entries = append(entries, entry{f.Name, f.CompressedSize64, f.UncompressedSize64})
		}
	} else if len(head) >= 30 && string(head[:4]) == "PK\x03\x04" {
		// The directory was not kept: fall back to the first local header.
		nlen := int(binary.LittleEndian.Uint16(head[26:]))
		if 30+nlen <= len(head) {
			entries = append(entries, entry{string(head[30 : 30+nlen]),
				uint64(binary.LittleEndian.Uint32(head[18:])), uint64(binary.LittleEndian.Uint32(head[22:]))})
		}
	}
	var w []string
	var usum uint64
	for _, e := range entries {
		n := strings.ReplaceAll(e.name, `\`, "/")
		if strings.HasPrefix(n, "/") || n == ".." || strings.HasPrefix(n, "../") ||
			strings.Contains(n, "/../") || strings.HasSuffix(n, "/..") || (len(n) > 1 && n[1] == ':') {
			w = append(w, fmt.Sprintf("attachment %s: zip entry %q points outside the archive (unzipping must refuse it)", cid, e.name))
		}
		usum += e.usize
	}
	if size > 0 && usum/uint64(size) >= 100 {
		w = append(w, fmt.Sprintf("attachment %s: zip declares %d bytes uncompressed from %d (ratio %d:1, possible zip bomb)", cid, usum, size, usum/uint64(size)))
	}
	return w
}
