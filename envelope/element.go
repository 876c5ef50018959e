package envelope

import (
	"encoding/xml"

	"github.com/beevik/etree"
)

// ParseElement reads the envelope held by the element tree el, as Parse
// reads it from bytes: the same state machine, the same rules and
// normalisation, fed with the tree's elements and text instead of tokens.
// It is how the verification step reads the metadata of the signed content
// from the verified element the signature verifier returns (no
// re-serialisation, no second parse). Document.Raw is nil.
//
// el must carry its namespace declarations (a document's root element, or
// an element detached with them); comments and PIs are ignored.
func ParseElement(el *etree.Element, lim Limits) (*Document, error) {
	return parseElement(el, lim, nil)
}

// ParseSigned is ParseElement for the signed content of received, the
// Document Parse returned for the bytes el was read from. An attachment
// whose base64 text in el is, byte for byte, the text Parse decoded for the
// attachment of the same position in received is not decoded again: the
// same characters decode to the same bytes, so Parse's size, SHA-256 and
// sniffed type are taken. Any other text (and every attachment when
// received is nil or was not read by Parse) is decoded as ParseElement
// does. The result is the Document ParseElement returns.
func ParseSigned(el *etree.Element, lim Limits, received *Document) (*Document, error) {
	return parseElement(el, lim, received)
}

func parseElement(el *etree.Element, lim Limits, ref *Document) (*Document, error) {
	lim = lim.withDefaults()
	p := parser{lim: lim, doc: &Document{}, ref: ref}
	defer p.b64.release()
	p.stack = make([]frame, 0, 16)
	p.ns = make([]nsBinding, 0, 8)
	var buf []byte
	if err := p.walk(el, &buf); err != nil {
		return nil, err
	}
	if len(p.stack) > 0 {
		return nil, newErr(CodeNotXML, "unbalanced tree")
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

// walk feeds el and its descendants to the parser; buf is a reusable
// buffer for text, handed over in pieces so that a large base64 text is
// neither copied whole nor aliased.
func (p *parser) walk(el *etree.Element, buf *[]byte) error {
	t := xml.StartElement{Name: xml.Name{Space: el.Space, Local: el.Tag}}
	if len(el.Attr) > 0 {
		t.Attr = make([]xml.Attr, len(el.Attr))
		for i, a := range el.Attr {
			t.Attr[i] = xml.Attr{Name: xml.Name{Space: a.Space, Local: a.Key}, Value: a.Value}
		}
	}
	if err := p.start(t); err != nil {
		return err
	}
	for _, c := range el.Child {
		switch c := c.(type) {
		case *etree.Element:
			if err := p.walk(c, buf); err != nil {
				return err
			}
		case *etree.CharData:
			if p.sameString(c.Data) {
				continue // the received attachment text (ParseSigned): not copied, not decoded
			}
			for s := c.Data; len(s) > 0; {
				n := min(len(s), 32<<10)
				*buf = append((*buf)[:0], s[:n]...)
				if err := p.chars(*buf); err != nil {
					return err
				}
				s = s[n:]
			}
		}
	}
	return p.end(xml.EndElement{Name: t.Name})
}
