package envelope

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrNoSpan: ParseReader did not find the attachment's base64 as plain text
// in the body (a CDATA section, a comment or a reference inside it), so it
// cannot be read from its span; DecodeAttachments reads it.
var ErrNoSpan = errors.New("envelope: attachment text is not plain in the body")

// OpenAttachment returns the decoded content of attachment i of doc, a
// Document that ParseReader read from body, decoding its base64 text from
// its span in body as it is read: bounded memory whatever the attachment's
// size. The reader checks at the end that the content has the size and
// SHA-256 ParseReader saw; when it does not (body is not the bytes doc was
// read from) the last Read returns an *Error with CodeBadBase64 instead of
// io.EOF, so only a reader read to io.EOF has given the attachment. An
// attachment without a plain span is ErrNoSpan.
func OpenAttachment(doc *Document, i int, body io.ReaderAt) (io.Reader, error) {
	if i < 0 || i >= len(doc.Attachments) {
		return nil, fmt.Errorf("envelope: attachment %d of %d", i, len(doc.Attachments))
	}
	if !PlainSpan(doc, i) {
		return nil, ErrNoSpan
	}
	s := doc.bodySpans[i]
	r := &spanReader{src: io.NewSectionReader(body, int64(s.start), int64(s.end-s.start)), att: doc.Attachments[i],
		raw: make([]byte, 32<<10)}
	r.dec.reset(0)
	r.dec.sink = func(b []byte) { r.out = append(r.out, b...) }
	return r, nil
}

// PlainSpan reports whether ParseReader found attachment i's base64 as plain
// text in the body, so that OpenAttachment can read it from there.
func PlainSpan(doc *Document, i int) bool {
	if len(doc.bodySpans) != len(doc.Attachments) || i < 0 || i >= len(doc.bodySpans) {
		return false
	}
	s := doc.bodySpans[i]
	return s.start >= 0 && s.start <= s.end
}

// spanReader decodes a span with the parser's own base64 stream (same
// alphabet, whitespace and padding rules).
type spanReader struct {
	src  io.Reader
	att  Attachment
	dec  b64Stream
	raw  []byte
	out  []byte // decoded, not yet returned
	off  int
	done error // io.EOF or the final check's error
}

func (r *spanReader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.done != nil {
			return 0, r.done
		}
		r.out, r.off = r.out[:0], 0
		n, err := r.src.Read(r.raw)
		r.dec.write(r.raw[:n])
		switch {
		case r.dec.err != nil:
			r.done = r.mismatch("not base64: %v", r.dec.err)
		case err == io.EOF:
			r.done = r.finish()
		case err != nil:
			return 0, fmt.Errorf("envelope: attachment %s: %w", r.att.ContentID, err)
		}
		if r.done != nil {
			r.dec.release() // the decoder's pooled buffers: not used again
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

func (r *spanReader) finish() error {
	size, sum, err := r.dec.finish()
	switch {
	case err != nil:
		return r.mismatch("not base64: %v", err)
	case size != r.att.Size || sum != r.att.SHA256:
		return r.mismatch("decoded %d bytes with another SHA-256 than the %d ParseReader saw", size, r.att.Size)
	}
	return io.EOF
}

func (r *spanReader) mismatch(format string, args ...any) error {
	return newErr(CodeBadBase64, "attachment %s: the body differs from what ParseReader read: %s", r.att.ContentID, fmt.Sprintf(format, args...))
}

// DecodeAttachments reads body r (size bytes) again with ParseReader and the
// same limits, and calls fn with each attachment's decoded content in
// pieces, in document order (i is the attachment's index in doc; a piece is
// valid during the call only). It is the way to an attachment that has no
// plain span (ErrNoSpan), in one pass for all of them. The document read
// must have doc's attachments, or the result is an *Error with
// CodeBadBase64. fn's first error stops the calls and is returned.
func DecodeAttachments(r io.Reader, size int64, lim Limits, doc *Document, fn func(i int, b []byte) error) error {
	var ferr error
	again, err := parseReader(r, size, lim, func(i int, b []byte) {
		if ferr == nil {
			ferr = fn(i, b)
		}
	})
	switch {
	case ferr != nil:
		return ferr
	case err != nil:
		return err
	case !slices.Equal(again.Attachments, doc.Attachments):
		return newErr(CodeBadBase64, "the body differs from what ParseReader read (attachments)")
	}
	return nil
}
