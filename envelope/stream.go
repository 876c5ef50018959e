package envelope

import (
	"io"

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
	return parseReader(r, size, lim, nil)
}

// parseReader is ParseReader, handing each attachment's decoded content to
// sink (when set) as it is decoded.
func parseReader(r io.Reader, size int64, lim Limits, sink func(i int, b []byte)) (*Document, error) {
	lim = lim.withDefaults()
	if size > lim.MaxBytes {
		return nil, newErr(CodeTooLarge, "%d bytes is over the limit of %d", size, lim.MaxBytes)
	}
	p := parser{lim: lim, doc: &Document{}, reader: true, sink: sink}
	defer p.b64.release()
	p.stack = make([]frame, 0, 16)
	p.ns = make([]nsBinding, 0, 8)
	// As Parse checks UTF-8 before anything else, invalid UTF-8 anywhere is
	// bad_encoding whatever else is wrong: the bytes are validated as they
	// are read, and after a refusal the rest is read (only validated).
	u := &xmlscan.UTF8Check{}
	r = io.TeeReader(r, u)
	s := xmlscan.NewReader(r, xmlscan.Options{MaxDepth: lim.MaxDepth, MaxAttrs: 1 << 16, MaxNameLen: 1 << 16,
		MaxTextChunk: StreamTextChunk})
	err := p.drive(s)
	if _, ok := err.(*Error); ok {
		if _, cerr := io.Copy(io.Discard, r); cerr != nil {
			return nil, &Error{Code: CodeNotXML, Msg: "reading the body", Err: cerr}
		}
	}
	if (err == nil || isEnvelopeErr(err)) && !u.Valid() {
		return nil, newErr(CodeBadEncoding, "the document is not valid UTF-8")
	}
	if err != nil {
		return nil, err
	}
	return p.finish()
}

func isEnvelopeErr(err error) bool { _, ok := err.(*Error); return ok }
