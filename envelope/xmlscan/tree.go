package xmlscan

import (
	"io"

	"github.com/beevik/etree"
)

// BuildTree reads the whole document from s into an etree.Document, built
// with etree's own constructors so that Parent and Index work. CDATA
// sections become ordinary text, as with etree's default ReadSettings; the
// XML declaration, comments and PIs outside the root are children of the
// document.
func BuildTree(s *Scanner) (*etree.Document, error) {
	doc := etree.NewDocument()
	cur := &doc.Element
	for {
		t, err := s.Next()
		if err == io.EOF {
			return doc, nil
		}
		if err != nil {
			return nil, err
		}
		switch t.Kind {
		case StartElement:
			el := cur.CreateElement(t.Local)
			el.Space = t.Prefix
			if len(t.Attrs) > 0 {
				el.Attr = make([]etree.Attr, 0, len(t.Attrs))
				// CreateAttr binds the attribute to el (NamespaceURI needs
				// it); the others are copies of that first one, because
				// CreateAttr would merge x and p:x.
				a0 := t.Attrs[0]
				el.CreateAttr(a0.Local, a0.Value).Space = a0.Prefix
				for _, a := range t.Attrs[1:] {
					at := el.Attr[0]
					at.Space, at.Key, at.Value = a.Prefix, a.Local, a.Value
					el.Attr = append(el.Attr, at)
				}
			}
			cur = el
		case EndElement:
			cur = cur.Parent()
		case CharData:
			c := etree.NewText("")
			c.SetData(string(t.Data))
			cur.AddChild(c)
		case Comment:
			cur.CreateComment(string(t.Data))
		case ProcInst:
			cur.CreateProcInst(t.Target, string(t.Data))
		}
	}
}
