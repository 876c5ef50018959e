package envelope

import (
	"encoding/xml"
	"errors"
	"io"

	"lienthong/envelope/xmlscan"
)

// scan drives the parser with envelope/xmlscan's tokens (one strict pass;
// character data is handed over without copying).
func (p *parser) scan(data []byte) error {
	s := xmlscan.NewBytes(data, xmlscan.Options{MaxDepth: p.lim.MaxDepth, MaxAttrs: 1 << 16, MaxNameLen: 1 << 16})
	p.data = data
	if p.tape != nil {
		s.Record(p.tape)
	}
	return p.drive(s)
}

// drive feeds the parser the tokens of s, in bytes mode (scan) or reader
// mode (ParseReader: character data arrives in chunks, which chars accepts —
// it appends leaf text and streams base64 into the decoder). tokStart and
// tokAfter are the offsets around the current token in the input (attachment
// spans use them).
func (p *parser) drive(s *xmlscan.Scanner) error {
	var attrs []xml.Attr
	for {
		p.tokStart = int(s.Offset())
		t, err := s.Next()
		p.tokAfter = int(s.Offset())
		if err == io.EOF {
			break
		}
		if err != nil {
			return scanErr(err)
		}
		if p.reader && len(p.stack) > 0 && p.stack[len(p.stack)-1].kind == kAttData {
			// Reader mode: the span of an attachment's text is plain only
			// when nothing but text as written lies in it (see attSpan).
			if t.Kind == xmlscan.Comment || t.Kind == xmlscan.ProcInst || t.Kind == xmlscan.CharData && (t.CDATA || t.Ref) {
				p.atts[len(p.atts)-1].impure = true
			}
		}
		switch t.Kind {
		case xmlscan.StartElement:
			attrs = attrs[:0]
			for _, a := range t.Attrs {
				attrs = append(attrs, xml.Attr{Name: xml.Name{Space: a.Prefix, Local: a.Local}, Value: a.Value})
			}
			if err := p.start(xml.StartElement{Name: xml.Name{Space: t.Prefix, Local: t.Local}, Attr: attrs}); err != nil {
				return err
			}
		case xmlscan.EndElement:
			if err := p.end(xml.EndElement{Name: xml.Name{Space: t.Prefix, Local: t.Local}}); err != nil {
				return err
			}
		case xmlscan.CharData:
			if err := p.chars(t.Data); err != nil {
				return err
			}
		}
	}
	if p.root == kOther {
		return newErr(CodeNotXML, "no root element")
	}
	return nil
}

// scanErr maps a tokenizer error to the envelope's codes.
func scanErr(err error) error {
	switch {
	case errors.Is(err, xmlscan.ErrNotUTF8):
		return &Error{Code: CodeBadEncoding, Msg: "only UTF-8 is accepted", Err: err}
	case errors.Is(err, xmlscan.ErrDoctype):
		return &Error{Code: CodeNotXML, Msg: "DOCTYPE and other declarations are not allowed", Err: err}
	case errors.Is(err, xmlscan.ErrTooDeep):
		return &Error{Code: CodeTooDeep, Msg: "nesting too deep", Err: err}
	case errors.Is(err, xmlscan.ErrDuplicateAttr):
		return &Error{Code: CodeDuplicateAttr, Msg: "attribute repeated", Err: err}
	}
	return &Error{Code: CodeNotXML, Msg: "not well-formed", Err: err}
}
