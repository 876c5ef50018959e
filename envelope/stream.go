package envelope

import (
	"encoding/xml"
	"errors"
	"io"

	"lienthong/envelope/xmlscan"
)

// tokenSource is where the parser takes its tokens: encoding/xml over the
// bytes in memory (Parse), or xmlscan over a stream (ParseReader).
type tokenSource interface {
	RawToken() (xml.Token, error)
}

func (p *parser) token() (xml.Token, error) {
	if p.src != nil {
		return p.src.RawToken()
	}
	return p.dec.RawToken()
}

// StreamTextChunk is the most character data ParseReader holds at once: a
// 270 MB base64 attachment reaches the base64 decoder in pieces of this size.
const StreamTextChunk = 64 << 10

// ParseReader is Parse for a body that is not held in memory (above the
// intake's blob threshold): it reads r once, through the bounded tokenizer
// of envelope/xmlscan, and returns the same Document as Parse would, with
// Raw nil. Attachments are decoded on the fly into their size and SHA-256,
// as Parse does. size is the body's length in bytes, checked against
// lim.MaxBytes before anything is read.
//
// The token stream differs from encoding/xml's where xmlscan documents it
// (attribute-value normalisation as the XML spec says; end-of-line
// normalisation in comments); the metadata the hub reads is the same.
func ParseReader(r io.Reader, size int64, lim Limits) (*Document, error) {
	lim = lim.withDefaults()
	if size > lim.MaxBytes {
		return nil, newErr(CodeTooLarge, "%d bytes is over the limit of %d", size, lim.MaxBytes)
	}
	sc := xmlscan.NewReader(r, xmlscan.Options{MaxTextChunk: StreamTextChunk, MaxDepth: lim.MaxDepth + 1})
	p := parser{lim: lim, doc: &Document{}, src: &scanSource{sc: sc}}
	p.stack = make([]frame, 0, 16)
	p.ns = make([]nsBinding, 0, 8)
	if err := p.run(); err != nil {
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

// scanSource turns xmlscan tokens into the encoding/xml tokens RawToken
// would give (prefix in Name.Space, as written).
type scanSource struct {
	sc    *xmlscan.Scanner
	attrs []xml.Attr
}

func (s *scanSource) RawToken() (xml.Token, error) {
	t, err := s.sc.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, scanErr(err)
	}
	switch t.Kind {
	case xmlscan.StartElement:
		attrs := make([]xml.Attr, len(t.Attrs))
		for i, a := range t.Attrs {
			attrs[i] = xml.Attr{Name: xml.Name{Space: a.Prefix, Local: a.Local}, Value: a.Value}
		}
		return xml.StartElement{Name: xml.Name{Space: t.Prefix, Local: t.Local}, Attr: attrs}, nil
	case xmlscan.EndElement:
		return xml.EndElement{Name: xml.Name{Space: t.Prefix, Local: t.Local}}, nil
	case xmlscan.CharData:
		return xml.CharData(t.Data), nil // the parser copies what it keeps
	case xmlscan.Comment:
		return xml.Comment(t.Data), nil
	case xmlscan.ProcInst:
		return xml.ProcInst{Target: t.Target, Inst: t.Data}, nil
	}
	return s.RawToken()
}

// scanErr maps the tokenizer's refusals to the parser's codes.
func scanErr(err error) error {
	switch {
	case errors.Is(err, xmlscan.ErrDoctype):
		return newErr(CodeNotXML, "DOCTYPE and other declarations are not allowed")
	case errors.Is(err, xmlscan.ErrNotUTF8):
		return &Error{Code: CodeBadEncoding, Msg: "only UTF-8 is accepted", Err: err}
	case errors.Is(err, xmlscan.ErrTooDeep):
		return &Error{Code: CodeTooDeep, Msg: "nesting too deep", Err: err}
	}
	return &Error{Code: CodeNotXML, Msg: "not well-formed", Err: err}
}
