package dsig

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/beevik/etree"
)

const nsXML = "http://www.w3.org/XML/1998/namespace"

// canonicalizer writes the canonical form (without comments) of a whole
// document's root element to w, leaving out one element (the enveloped
// signature), without copying or changing the tree. It implements
// exclusive c14n 1.0 (with an InclusiveNamespaces PrefixList) and inclusive
// c14n 1.0 and 1.1, which give the same bytes for a document's root element
// (they differ only for xml:* attributes inherited into a document subset).
//
// It is for an element with no ancestors (the document's root, where the
// in-scope namespaces are the ones the tree declares: the Reference the hub
// accepts covers the whole document), or for SignedInfo detached from its
// tree with the namespaces in scope at it (canonicalSignedInfo).
type canonicalizer struct {
	w         *bufio.Writer
	exclusive bool
	inclusive []string // exclusive c14n's PrefixList ("" for #default)
	skip      *etree.Element
	// detached: the element canonicalised carries every namespace in
	// scope (inclusive c14n of a detached SignedInfo); cleared once used.
	detached bool

	scope    []nsBinding // declarations in scope, innermost last
	rendered []nsBinding // declarations in effect in the output
	nsOut    []nsBinding // scratch: declarations to render, per element
	attrs    []canonAttr // scratch: attributes to render, per element
}

type nsBinding struct{ prefix, uri string }

type canonAttr struct {
	uri string
	a   *etree.Attr
}

// c14nWriters pools the canonicalizers' output buffers (one per
// verification otherwise, 32 KB each).
var c14nWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

func newCanonicalizer(w io.Writer, exclusive bool, prefixList string, skip *etree.Element) *canonicalizer {
	bw := c14nWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	c := &canonicalizer{w: bw, exclusive: exclusive, skip: skip}
	for _, p := range strings.Fields(prefixList) {
		if p == "#default" {
			p = ""
		}
		c.inclusive = append(c.inclusive, p)
	}
	return c
}

// canonicalize writes root's canonical form. It is called once: the
// output buffer goes back to the pool.
func (c *canonicalizer) canonicalize(root *etree.Element) error {
	defer func() {
		c.w.Reset(nil)
		c14nWriters.Put(c.w)
		c.w = nil
	}()
	if err := c.element(root); err != nil {
		return err
	}
	return c.w.Flush() // bufio keeps the first write error
}

func (c *canonicalizer) str(s string) { c.w.WriteString(s) }

func lookup(stack []nsBinding, prefix string) (string, bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].prefix == prefix {
			return stack[i].uri, true
		}
	}
	return "", false
}

// appendDecls appends the namespace declarations of el to scope. A prefix
// undeclaration (xmlns:p="") is refused: Namespaces in XML 1.0 §2.2 has
// none (as c14nStream).
func appendDecls(scope []nsBinding, el *etree.Element) ([]nsBinding, error) {
	for _, a := range el.Attr {
		switch {
		case a.Space == "xmlns":
			if a.Value == "" {
				return scope, fmt.Errorf("c14n: empty namespace name for prefix %q", a.Key)
			}
			scope = append(scope, nsBinding{a.Key, a.Value})
		case a.Space == "" && a.Key == "xmlns":
			scope = append(scope, nsBinding{"", a.Value})
		}
	}
	return scope, nil
}

func (c *canonicalizer) element(el *etree.Element) error {
	scopeMark, rendMark := len(c.scope), len(c.rendered)
	defer func() { c.scope, c.rendered = c.scope[:scopeMark], c.rendered[:rendMark] }()
	var err error
	if c.scope, err = appendDecls(c.scope, el); err != nil {
		return err
	}

	nsStart := len(c.nsOut)
	// renderedHere holds the prefixes rendered on this element once there are
	// many (a hostile SignedInfo may carry thousands of declarations on
	// its ancestors): below that a scan of nsOut is cheaper than a map.
	var renderedHere map[string]struct{}
	render := func(p, uri string) {
		if renderedHere != nil {
			if _, dup := renderedHere[p]; dup {
				return
			}
		} else {
			for _, b := range c.nsOut[nsStart:] {
				if b.prefix == p {
					return
				}
			}
		}
		r, ok := lookup(c.rendered[:rendMark], p)
		if p == "" && uri == "" && (!ok || r == "") {
			return
		}
		if ok && r == uri {
			return
		}
		c.nsOut = append(c.nsOut, nsBinding{p, uri})
		switch out := c.nsOut[nsStart:]; {
		case renderedHere != nil:
			renderedHere[p] = struct{}{}
		case len(out) > 16:
			renderedHere = make(map[string]struct{}, 2*len(out))
			for _, b := range out {
				renderedHere[b.prefix] = struct{}{}
			}
		}
	}
	if c.exclusive {
		utilise := func(p string) error {
			if p == "xml" {
				return nil
			}
			uri, ok := lookup(c.scope, p)
			if !ok && p != "" {
				return fmt.Errorf("c14n: undeclared namespace prefix %q", p)
			}
			render(p, uri)
			return nil
		}
		if err := utilise(el.Space); err != nil {
			return err
		}
		for _, a := range el.Attr {
			if a.Space != "" && a.Space != "xmlns" {
				if err := utilise(a.Space); err != nil {
					return err
				}
			}
		}
		for _, p := range c.inclusive {
			if uri, ok := lookup(c.scope, p); ok || p == "" {
				render(p, uri)
			}
		}
	} else {
		bs := c.scope[scopeMark:]
		if c.detached {
			bs, c.detached = c.scope, false
		}
		// A binding shadowed by one closer to the element is left out. With
		// many bindings (the whole scope of a detached element; a hostile
		// one may carry thousands) the closer prefixes go in a map, so the
		// cost stays linear.
		var inner map[string]struct{}
		if len(bs) > 16 {
			inner = make(map[string]struct{}, len(bs))
		}
		for i := len(bs) - 1; i >= 0; i-- { // innermost first: it wins
			b := bs[i]
			if inner != nil {
				_, shadowed := inner[b.prefix]
				inner[b.prefix] = struct{}{}
				if shadowed {
					continue
				}
			} else if slices.ContainsFunc(bs[i+1:], func(o nsBinding) bool { return o.prefix == b.prefix }) {
				continue
			}
			if b.prefix == "xml" && b.uri == nsXML {
				continue
			}
			render(b.prefix, b.uri)
		}
		if el.Space != "" && el.Space != "xml" {
			if _, ok := lookup(c.scope, el.Space); !ok {
				return fmt.Errorf("c14n: undeclared namespace prefix %q", el.Space)
			}
		}
	}
	ns := c.nsOut[nsStart:]
	slices.SortFunc(ns, func(a, b nsBinding) int { return cmp.Compare(a.prefix, b.prefix) })
	c.rendered = append(c.rendered, ns...)

	attrStart := len(c.attrs)
	for i := range el.Attr {
		a := &el.Attr[i]
		var uri string
		switch {
		case a.Space == "xmlns", a.Space == "" && a.Key == "xmlns":
			continue
		case a.Space == "":
		case a.Space == "xml":
			uri = nsXML
		default:
			u, ok := lookup(c.scope, a.Space)
			if !ok {
				return fmt.Errorf("c14n: undeclared namespace prefix %q", a.Space)
			}
			uri = u
		}
		c.attrs = append(c.attrs, canonAttr{uri, a})
	}
	attrs := c.attrs[attrStart:]
	slices.SortFunc(attrs, func(a, b canonAttr) int {
		if r := cmp.Compare(a.uri, b.uri); r != 0 {
			return r
		}
		return cmp.Compare(a.a.Key, b.a.Key)
	})

	c.str("<")
	c.qname(el.Space, el.Tag)
	for _, b := range ns {
		if b.prefix == "" {
			c.str(` xmlns="`)
		} else {
			c.str(" xmlns:")
			c.str(b.prefix)
			c.str(`="`)
		}
		escapeAttr(c.w, b.uri)
		c.str(`"`)
	}
	for _, a := range attrs {
		c.str(" ")
		c.qname(a.a.Space, a.a.Key)
		c.str(`="`)
		escapeAttr(c.w, a.a.Value)
		c.str(`"`)
	}
	c.str(">")
	c.nsOut, c.attrs = c.nsOut[:nsStart], c.attrs[:attrStart]

	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if t == c.skip {
				continue
			}
			if err := c.element(t); err != nil {
				return err
			}
		case *etree.CharData:
			escapeText(c.w, t.Data)
		case *etree.ProcInst:
			c.str("<?")
			c.str(t.Target)
			if t.Inst != "" {
				c.str(" ")
				c.str(t.Inst)
			}
			c.str("?>")
		}
	}
	c.str("</")
	c.qname(el.Space, el.Tag)
	c.str(">")
	return nil
}

func (c *canonicalizer) qname(space, local string) {
	if space != "" {
		c.str(space)
		c.str(":")
	}
	c.str(local)
}

// canonicalSignedInfo returns the canonical form of the SignedInfo element
// si, as goxmldsig's Validate computes it (and validateAt did with
// goxmldsig's canonicalizers): si detached from its tree with the
// namespaces in scope at it (etreeutils.NSDetatch), then exclusive c14n
// without a prefix list (goxmldsig ignores an InclusiveNamespaces child of
// the CanonicalizationMethod) or inclusive c14n, which renders every
// in-scope namespace on si. Only si's ancestors' namespace declarations are
// read outside si.
func canonicalSignedInfo(si *etree.Element, alg string) ([]byte, error) {
	var exclusive bool
	switch alg {
	case AlgExcC14N:
		exclusive = true
	case AlgC14N10, AlgC14N11:
	default:
		return nil, fmt.Errorf("invalid CanonicalizationMethod on Signature: %s", alg)
	}
	var up []*etree.Element
	for p := si.Parent(); p != nil; p = p.Parent() {
		up = append(up, p)
	}
	var scope []nsBinding
	for i := len(up) - 1; i >= 0; i-- {
		var err error
		if scope, err = appendDecls(scope, up[i]); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	c := newCanonicalizer(&out, exclusive, "", nil)
	c.scope, c.detached = scope, !exclusive
	if err := c.canonicalize(si); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
