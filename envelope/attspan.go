package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
)

// attSpan is where Parse found an attachment's base64 text in Document.Raw
// (ParseReader: in the body it read): Raw[start:end] is the whole content of
// its ContentTransferEncoded element (empty when there is none), with no
// markup or reference in it, so its characters are the element's text.
type attSpan struct{ start, end int }

// plainText reports whether data[start:end], the content of the element
// that ends at end, is text only: the end tag starts at end and no '<'
// (comment, CDATA, PI, child) or '&' (reference) lies inside.
func (p *parser) plainText(start, end int) bool {
	if p.data == nil || start < 0 || start > end || end > len(p.data) || !bytes.HasPrefix(p.data[end:], []byte("</")) {
		return false
	}
	t := p.data[start:end]
	return bytes.IndexByte(t, '<') < 0 && bytes.IndexByte(t, '&') < 0
}

// spans returns the attachments' spans in Raw, in attachment order, or nil
// when one of them is not plain text (EachAttachmentOf then reads the
// document again).
func (p *parser) spans() []attSpan {
	if p.data == nil {
		return nil
	}
	return p.attSpans(p.rawOff, true)
}

// bodySpans is spans for ParseReader: every attachment gets its span in the
// body, {-1, -1} when it is not plain text.
func (p *parser) bodySpans() []attSpan {
	if !p.reader {
		return nil
	}
	return p.attSpans(0, false)
}

// attSpans gives each attachment its span shifted by off ({0, 0} for one
// without content). An attachment that is not plain text makes it return
// nil when strict, and gets {-1, -1} otherwise.
func (p *parser) attSpans(off int, strict bool) []attSpan {
	if len(p.atts) == 0 {
		return nil
	}
	out := make([]attSpan, len(p.atts))
	for i, a := range p.atts {
		switch {
		case a.data == 0:
			// No ContentTransferEncoded: empty content, out[i] is {0, 0}.
		case a.plain:
			out[i] = attSpan{off + a.start, off + a.end}
		case strict:
			return nil
		default:
			out[i] = attSpan{-1, -1}
		}
	}
	return out
}

// spanData decodes the attachment a from its span in raw into buf (grown as
// needed) and returns the decoded bytes. ok is false when the span does not
// decode to a content of a's size and SHA-256 (a Document whose Raw was
// changed after Parse): the caller then reads the document again. b64 is a
// scratch buffer. tooLarge is set when the base64 text alone is over max.
func spanData(raw []byte, s attSpan, a Attachment, max int64, b64, buf []byte) (data, b64Out, bufOut []byte, ok, tooLarge bool) {
	if s.start < 0 || s.start > s.end || s.end > len(raw) {
		return nil, b64, buf, false, false
	}
	text := raw[s.start:s.end]
	b64 = appendBase64(slices.Grow(b64[:0], len(text)), text)
	if int64(len(b64)) > max/3*4+8 {
		return nil, b64, buf, false, true
	}
	enc := base64.StdEncoding
	if len(b64)%4 != 0 && bytes.IndexByte(b64, '=') < 0 {
		enc = base64.RawStdEncoding
	}
	if n := enc.DecodedLen(len(b64)); cap(buf) < n {
		buf = make([]byte, n)
	}
	n, err := enc.Decode(buf[:cap(buf)], b64)
	if err != nil || int64(n) != a.Size {
		return nil, b64, buf, false, false
	}
	sum := sha256.Sum256(buf[:n])
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	if string(hx[:]) != a.SHA256 {
		return nil, b64, buf, false, false
	}
	return buf[:n], b64, buf, true, false
}
