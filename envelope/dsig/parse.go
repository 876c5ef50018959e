package dsig

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"

	"lienthong/envelope/xmlscan"
)

// Namespaces the package knows by name.
const (
	NamespaceDSig  = "http://www.w3.org/2000/09/xmldsig#"
	NamespaceEdXML = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
	NamespaceAKN   = "http://docs.oasis-open.org/legaldocml/ns/akn/3.0"
)

// MaxDepth is the nesting limit of documents read by this package.
const MaxDepth = 256

// Location says where a document type carries its signature: the chain of
// elements from the root down to the signature's parent.
type Location struct {
	// Path holds local names from the root element (first) to the
	// signature's parent (last); "*" matches any one element. Empty means
	// "a child of the root", whatever the root is.
	Path []string
	// Namespace is the namespace URI of the elements of Path; "" matches any.
	Namespace string
	// Accept, when set, is an extra test on the parent (for example AKN's
	// proprietary/@source).
	Accept func(parent *etree.Element) bool
}

// Locations of the hub's document types.
var (
	// EdXMLHeader: edXML/edXMLEnvelope/edXMLHeader/Signature (edxml.md §6).
	EdXMLHeader = Location{Namespace: NamespaceEdXML, Path: []string{"edXML", "edXMLEnvelope", "edXMLHeader"}}
	// RootChild: a child of the root element (the hub envelope).
	RootChild = Location{}
)

// AKNProprietary is /akomaNtoso/*/meta/proprietary[@source=source], where
// the hub puts the signature of an Akoma Ntoso document (akn-ipu.md §1.9).
func AKNProprietary(source string) Location {
	return Location{
		Namespace: NamespaceAKN,
		Path:      []string{"akomaNtoso", "*", "meta", "proprietary"},
		Accept:    func(p *etree.Element) bool { return p.SelectAttrValue("source", "") == source },
	}
}

func (l Location) String() string {
	if len(l.Path) == 0 {
		return "/*/Signature"
	}
	return "/" + strings.Join(l.Path, "/") + "/Signature"
}

// matches reports whether parent sits at l in the tree rooted at root.
func (l Location) matches(root, parent *etree.Element) bool {
	path := l.Path
	if len(path) == 0 {
		path = []string{"*"}
	}
	el := parent
	for i := len(path) - 1; i >= 0; i-- {
		if el == nil || !l.nameMatches(el, path[i]) {
			return false
		}
		if i == 0 {
			if el != root {
				return false
			}
			break
		}
		el = el.Parent()
	}
	return l.Accept == nil || l.Accept(parent)
}

func (l Location) nameMatches(el *etree.Element, name string) bool {
	if name != "*" && el.Tag != name {
		return false
	}
	return l.Namespace == "" || el.NamespaceURI() == l.Namespace
}

// find returns the element at l, for signing.
func (l Location) find(root *etree.Element) (*etree.Element, error) {
	path := l.Path
	if len(path) == 0 {
		return root, nil
	}
	if !l.nameMatches(root, path[0]) {
		return nil, fmt.Errorf("root <%s> does not match %s", root.Tag, l)
	}
	el := root
	for _, name := range path[1:] {
		var next *etree.Element
		for _, c := range el.ChildElements() {
			if l.nameMatches(c, name) {
				if next != nil {
					return nil, fmt.Errorf("more than one <%s> under <%s>", name, el.Tag)
				}
				next = c
			}
		}
		if next == nil {
			return nil, fmt.Errorf("no <%s> under <%s> (want %s)", name, el.Tag, l)
		}
		el = next
	}
	if l.Accept != nil && !l.Accept(el) {
		return nil, fmt.Errorf("<%s> not accepted as the signature's parent", el.Tag)
	}
	return el, nil
}

// parse reads untrusted XML with hardened settings (envelope/xmlscan: UTF-8
// only, no DOCTYPE, the depth limit, no duplicate attributes). raw is not
// modified; nothing but whitespace may follow the root element.
func parse(raw []byte) (*etree.Document, error) {
	if !utf8.Valid(raw) {
		return nil, verr(CodeBadEncoding, nil, "input is not valid UTF-8")
	}
	doc, err := xmlscan.BuildTree(xmlscan.NewBytes(raw, xmlscan.Options{MaxDepth: MaxDepth, MaxAttrs: 1 << 16, MaxNameLen: 1 << 16, KeepSpaceOutsideRoot: true}))
	if err != nil {
		switch {
		case errors.Is(err, xmlscan.ErrDoctype):
			return nil, verr(CodeDoctype, nil, "DOCTYPE not allowed")
		case errors.Is(err, xmlscan.ErrNotUTF8):
			return nil, verr(CodeBadEncoding, err, "not UTF-8 (UTF-8 only)")
		case errors.Is(err, xmlscan.ErrTooDeep):
			return nil, verr(CodeTooDeep, err, "nesting deeper than %d", MaxDepth)
		case errors.Is(err, xmlscan.ErrDuplicateAttr):
			return nil, verr(CodeDuplicateAttr, err, "duplicate attribute")
		}
		return nil, verr(CodeNotXML, err, "not well-formed XML")
	}
	root := doc.Root()
	if root == nil {
		return nil, verr(CodeNotXML, nil, "no root element")
	}
	// Whitespace before the root stays (Sign writes the tree out); after it
	// it is dropped (Sign appends the received run). Comments and PIs after
	// the root are well-formed but outside any signature; the hub has never
	// accepted them.
	for i := len(doc.Child) - 1; doc.Child[i] != root; i-- {
		if _, ok := doc.Child[i].(*etree.CharData); !ok {
			return nil, verr(CodeNotXML, nil, "content after the root element")
		}
		doc.RemoveChildAt(i)
	}
	walk(root, func(el *etree.Element) bool {
		for i := range el.Attr {
			for j := i + 1; j < len(el.Attr); j++ {
				a, b := &el.Attr[i], &el.Attr[j]
				if a.Key == b.Key && (a.Space == b.Space || a.NamespaceURI() == b.NamespaceURI()) {
					err = verr(CodeDuplicateAttr, nil, "duplicate attribute %q on <%s>", a.FullKey(), el.FullTag())
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// walk calls f on el and its descendants in document order until f returns
// false. It reports whether the walk completed.
func walk(el *etree.Element, f func(*etree.Element) bool) bool {
	if !f(el) {
		return false
	}
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok && !walk(c, f) {
			return false
		}
	}
	return true
}

// findCommentInjection returns the parent of the first comment that sits
// between non-whitespace character data, i.e. one that splits a text value.
// With a c14n "without comments" algorithm such a comment is invisible to
// the signature, and code that reads the first text node gets a truncated
// value (the 2018 SAML comment-injection class).
func findCommentInjection(root *etree.Element) *etree.Element {
	var found *etree.Element
	walk(root, func(el *etree.Element) bool {
		for i, t := range el.Child {
			if _, ok := t.(*etree.Comment); !ok {
				continue
			}
			if textAround(el.Child, i, -1) && textAround(el.Child, i, +1) {
				found = el
				return false
			}
		}
		return true
	})
	return found
}

// textAround reports whether non-whitespace character data is adjacent to
// position i in the direction dir, skipping other comments and PIs.
func textAround(toks []etree.Token, i, dir int) bool {
	for j := i + dir; j >= 0 && j < len(toks); j += dir {
		switch t := toks[j].(type) {
		case *etree.CharData:
			if strings.TrimSpace(t.Data) != "" {
				return true
			}
		case *etree.Comment, *etree.ProcInst:
			continue
		default:
			return false
		}
	}
	return false
}
