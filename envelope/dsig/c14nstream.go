package dsig

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"lienthong/envelope/xmlscan"
)

const namespaceXML = "http://www.w3.org/XML/1998/namespace"

// c14nStream canonicalises the element tree of a document read as a token
// stream (envelope/xmlscan, reader mode) and writes the canonical bytes to
// w, holding only the open elements' names and namespace bindings. It is
// the streaming twin of goxmldsig's canonicalisers over etree, for the
// whole-document case the hub verifies (the root element has no parent):
//
//   - inclusive c14n 1.0 and 1.1 (identical without a parent context):
//     namespace declarations as written, minus those already rendered with
//     the same value by an output ancestor; xmlns="" only when it undoes a
//     rendered default namespace;
//   - exclusive c14n 1.0: a namespace is rendered on the element that
//     visibly uses it (its own prefix, its attributes' prefixes, and the
//     InclusiveNamespaces PrefixList, "#default" for the default namespace)
//     when the nearest output ancestor has not rendered it with that value.
//
// Both: comments dropped, processing instructions inside the root kept,
// everything outside the root element dropped (as goxmldsig canonicalises
// the root element), CDATA written as escaped text, empty elements as start
// and end tag, namespace declarations first (the default one, then by
// prefix), then attributes by namespace URI and local name (C14N §2.2;
// goxmldsig's etreeutils.SortedAttrs sorts prefixed attributes of different
// namespaces by local name: the only ordering in which they differ).
type c14nStream struct {
	w         *bufio.Writer
	exclusive bool
	inclusive map[string]bool // exc-c14n PrefixList; "" is #default

	scope    []nsBinding // in-scope declarations, innermost last
	rendered []nsBinding // declarations written, innermost last
	frames   []c14nFrame
	// scratch
	decls []nsBinding
	attrs []c14nAttr
	used  []string // exc-c14n: prefixes visibly used by an element
}

type c14nFrame struct {
	prefix, local     string // the name as written
	scopeN, renderedN int    // lengths of scope and rendered before this element
}

type c14nAttr struct {
	prefix, uri, local, value string
}

// writeName writes prefix:local (local alone without a prefix), without
// making the qualified name a string of its own.
func writeName(w *bufio.Writer, prefix, local string) {
	if prefix != "" {
		w.WriteString(prefix)
		w.WriteByte(':')
	}
	w.WriteString(local)
}

func newC14NStream(w io.Writer, alg, prefixList string) (*c14nStream, error) {
	bw := c14nWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	c := &c14nStream{w: bw}
	switch alg {
	case AlgExcC14N:
		c.exclusive = true
		c.inclusive = map[string]bool{}
		for _, p := range strings.Fields(prefixList) {
			if p == "#default" {
				p = ""
			}
			c.inclusive[p] = true
		}
	case AlgC14N10, AlgC14N11:
	default:
		return nil, fmt.Errorf("dsig: streaming c14n: algorithm %q", alg)
	}
	return c, nil
}

// lookupNS is lookup with the xml prefix, which is bound without a
// declaration.
func lookupNS(bs []nsBinding, prefix string) (string, bool) {
	if uri, ok := lookup(bs, prefix); ok {
		return uri, true
	}
	if prefix == "xml" {
		return namespaceXML, true
	}
	return "", false
}

func qname(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// token feeds one token of the document, in order.
func (c *c14nStream) token(t xmlscan.Token) error {
	switch t.Kind {
	case xmlscan.StartElement:
		return c.start(t)
	case xmlscan.EndElement:
		f := c.frames[len(c.frames)-1]
		c.frames = c.frames[:len(c.frames)-1]
		c.scope, c.rendered = c.scope[:f.scopeN], c.rendered[:f.renderedN]
		c.w.WriteString("</")
		writeName(c.w, f.prefix, f.local)
		c.w.WriteByte('>')
	case xmlscan.CharData:
		if len(c.frames) > 0 {
			escapeText(c.w, t.Data)
		}
	case xmlscan.ProcInst:
		if len(c.frames) > 0 {
			c.w.WriteString("<?")
			c.w.WriteString(t.Target)
			if len(t.Data) > 0 {
				c.w.WriteByte(' ')
				c.w.Write(t.Data)
			}
			c.w.WriteString("?>")
		}
	}
	return nil
}

func (c *c14nStream) start(t xmlscan.Token) error {
	f := c14nFrame{prefix: t.Prefix, local: t.Local, scopeN: len(c.scope), renderedN: len(c.rendered)}
	c.decls, c.attrs = c.decls[:0], c.attrs[:0]
	for _, a := range t.Attrs {
		switch {
		case a.Prefix == "xmlns":
			if a.Value == "" { // Namespaces in XML 1.0 §2.2: no prefix undeclaration
				return fmt.Errorf("dsig: streaming c14n: empty namespace name for prefix %q", a.Local)
			}
			c.scope = append(c.scope, nsBinding{a.Local, a.Value})
		case a.Prefix == "" && a.Local == "xmlns":
			c.scope = append(c.scope, nsBinding{"", a.Value})
		}
	}
	if c.exclusive {
		used := append(c.used[:0], t.Prefix)
		for _, a := range t.Attrs {
			switch {
			case a.Prefix == "xmlns":
				if c.inclusive[a.Local] {
					used = append(used, a.Local)
				}
			case a.Prefix == "" && a.Local == "xmlns":
				if c.inclusive[""] {
					used = append(used, "")
				}
			case a.Prefix != "":
				used = append(used, a.Prefix)
			}
		}
		for _, p := range used {
			if p == "xml" || slices.ContainsFunc(c.decls, func(b nsBinding) bool { return b.prefix == p }) {
				continue
			}
			uri, ok := lookupNS(c.scope, p)
			if !ok && p != "" {
				return fmt.Errorf("dsig: streaming c14n: prefix %q is not declared", p)
			}
			if r, _ := lookupNS(c.rendered, p); r == uri {
				continue // rendered by an output ancestor (or the default namespace is empty)
			}
			c.decls = append(c.decls, nsBinding{p, uri})
		}
		c.used = used[:0] // the scratch, grown, for the next element
	} else {
		for _, b := range c.scope[f.scopeN:] {
			if b.prefix == "xml" && b.uri == namespaceXML {
				continue
			}
			if r, ok := lookupNS(c.rendered, b.prefix); (ok && r == b.uri) || (!ok && b.prefix == "" && b.uri == "") {
				continue
			}
			c.decls = append(c.decls, b)
		}
	}
	for _, a := range t.Attrs {
		if a.Prefix == "xmlns" || (a.Prefix == "" && a.Local == "xmlns") {
			continue
		}
		ca := c14nAttr{prefix: a.Prefix, local: a.Local, value: a.Value}
		if a.Prefix != "" {
			uri, ok := lookupNS(c.scope, a.Prefix)
			if !ok {
				return fmt.Errorf("dsig: streaming c14n: prefix %q is not declared", a.Prefix)
			}
			ca.uri = uri
		}
		c.attrs = append(c.attrs, ca)
	}
	slices.SortFunc(c.decls, func(a, b nsBinding) int { return strings.Compare(a.prefix, b.prefix) })
	slices.SortFunc(c.attrs, func(a, b c14nAttr) int {
		if a.uri != b.uri {
			return strings.Compare(a.uri, b.uri)
		}
		return strings.Compare(a.local, b.local)
	})
	c.rendered = append(c.rendered, c.decls...)
	c.frames = append(c.frames, f)

	w := c.w
	w.WriteByte('<')
	writeName(w, f.prefix, f.local)
	for _, d := range c.decls {
		if d.prefix == "" {
			w.WriteString(` xmlns="`)
		} else {
			w.WriteString(" xmlns:")
			w.WriteString(d.prefix)
			w.WriteString(`="`)
		}
		escapeAttr(w, d.uri)
		w.WriteByte('"')
	}
	for _, a := range c.attrs {
		w.WriteByte(' ')
		writeName(w, a.prefix, a.local)
		w.WriteString(`="`)
		escapeAttr(w, a.value)
		w.WriteByte('"')
	}
	w.WriteByte('>')
	return nil
}

// flush writes out what is buffered. It is called once: the output buffer
// goes back to the pool.
func (c *c14nStream) flush() error {
	err := c.w.Flush()
	c.w.Reset(nil)
	c14nWriters.Put(c.w)
	c.w = nil
	return err
}

// escapeText writes character data (a string from a tree, bytes from the
// tokenizer) as c14n requires: &, <, > and \r escaped. Each of the four is
// searched for with IndexByte (vectorised) and searched again only once
// passed, so the text is read four times at most, quickly, rather than once
// byte by byte (IndexAny).
func escapeText[T string | []byte](w *bufio.Writer, s T) {
	const specials = "&<>\r"
	var next [len(specials)]int // where specials[k] occurs next, len(s) if not
	for k := range next {
		next[k] = indexByteFrom(s, specials[k], 0)
	}
	for pos := 0; ; {
		i, k := len(s), -1
		for j, n := range next {
			if n < i {
				i, k = n, j
			}
		}
		if k < 0 {
			write(w, s[pos:])
			return
		}
		write(w, s[pos:i])
		switch specials[k] {
		case '&':
			w.WriteString("&amp;")
		case '<':
			w.WriteString("&lt;")
		case '>':
			w.WriteString("&gt;")
		case '\r':
			w.WriteString("&#xD;")
		}
		pos = i + 1
		next[k] = indexByteFrom(s, specials[k], pos)
	}
}

// indexByteFrom is the index of c in s at or after from, or len(s).
func indexByteFrom[T string | []byte](s T, c byte, from int) int {
	var i int
	switch v := any(s[from:]).(type) {
	case string:
		i = strings.IndexByte(v, c)
	case []byte:
		i = bytes.IndexByte(v, c)
	}
	if i < 0 {
		return len(s)
	}
	return from + i
}

// escapeAttr writes an attribute value as c14n requires: &, <, " and the
// whitespace characters tab, newline and \r escaped.
func escapeAttr(w *bufio.Writer, s string) {
	for len(s) > 0 {
		i := strings.IndexAny(s, "&<\"\t\n\r")
		if i < 0 {
			w.WriteString(s)
			return
		}
		w.WriteString(s[:i])
		switch s[i] {
		case '&':
			w.WriteString("&amp;")
		case '<':
			w.WriteString("&lt;")
		case '"':
			w.WriteString("&quot;")
		case '\t':
			w.WriteString("&#x9;")
		case '\n':
			w.WriteString("&#xA;")
		case '\r':
			w.WriteString("&#xD;")
		}
		s = s[i+1:]
	}
}

func write[T string | []byte](w *bufio.Writer, s T) {
	switch v := any(s).(type) {
	case string:
		w.WriteString(v)
	case []byte:
		w.Write(v)
	}
}
