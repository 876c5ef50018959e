package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
)

// AttachmentData is one attachment of an edXML package with its decoded
// content.
type AttachmentData struct {
	Attachment
	Data []byte
}

// EachAttachment parses the edXML package raw with Parse (same limits and
// checks, so nothing is decoded from a package Parse refuses), then calls fn
// for each attachment, in document order, with its decoded content. Only one
// attachment is decoded at a time; data is valid during the call only. raw
// is not modified. fn's error stops the walk and is returned as is.
//
// A hub envelope has no attachments: fn is not called.
func EachAttachment(raw []byte, lim Limits, fn func(a Attachment, data []byte) error) (*Document, error) {
	lim = lim.withDefaults()
	doc, err := Parse(raw, lim)
	if err != nil {
		return nil, err
	}
	return doc, eachAttachment(doc, lim, fn)
}

// EachAttachmentOf is EachAttachment on a Document that Parse returned
// (its Raw and Attachments), without parsing it again.
func EachAttachmentOf(doc *Document, lim Limits, fn func(a Attachment, data []byte) error) error {
	return eachAttachment(doc, lim.withDefaults(), fn)
}

func eachAttachment(doc *Document, lim Limits, fn func(a Attachment, data []byte) error) error {
	if doc.Format == FormatHub || len(doc.Attachments) == 0 {
		return nil
	}
	maxData := lim.MaxAttachmentBytes
	if maxData <= 0 {
		maxData = lim.MaxBytes
	}
	if len(doc.spans) != len(doc.Attachments) {
		return readAttachments(doc, maxData, 0, fn)
	}
	// Fast path: Parse located every attachment's base64 text; take the
	// content Parse kept, or decode it from there and check it against
	// Parse's size and SHA-256.
	var b64, buf []byte
	for i, a := range doc.Attachments {
		if data, ok := keptData(doc, i, maxData); ok {
			if err := fn(a, data); err != nil {
				return err
			}
			continue
		}
		data, b, bf, ok, tooLarge := spanData(doc.Raw, doc.spans[i], a, maxData, b64, buf)
		b64, buf = b, bf
		if tooLarge {
			return newErr(CodeTooLarge, "attachment %d: decoded size over the limit of %d bytes", i+1, maxData)
		}
		if !ok { // Raw changed since Parse: read it again from attachment i on
			return readAttachments(doc, maxData, i, fn)
		}
		if err := fn(a, data); err != nil {
			return err
		}
	}
	return nil
}

// readAttachments is eachAttachment reading doc.Raw again with a tokenizer;
// fn is called for the attachments from the skip-th on.
func readAttachments(doc *Document, maxData int64, skip int, fn func(a Attachment, data []byte) error) error {
	raw := doc.Raw
	data := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	dec := newDecoder(data)

	// The element kinds of Parse's grammar that lead to attachment content.
	const (
		aOther = iota
		aRoot
		aEnv
		aBody
		aAttEnc
		aAtt
		aCID
		aData
	)
	next := func(parent int, n xml.Name) int {
		if n.Space != NamespaceEdXML {
			return aOther
		}
		switch {
		case parent == -1 && n.Local == "edXML":
			return aRoot
		case parent == aRoot && n.Local == "edXMLEnvelope":
			return aEnv
		case parent == aEnv && n.Local == "edXMLBody":
			return aBody
		case (parent == aRoot || parent == aEnv || parent == aBody) && n.Local == "AttachmentEncoded":
			return aAttEnc
		case parent == aAttEnc && n.Local == "Attachment":
			return aAtt
		case parent == aAtt && n.Local == "ContentId":
			return aCID
		case parent == aAtt && n.Local == "ContentTransferEncoded":
			return aData
		}
		return aOther
	}
	type frame struct{ kind, nsN int }
	var (
		stack []frame
		ns    []nsBinding // in-scope namespace bindings, innermost last
		cid   []byte
		b64   []byte // the base64 characters, whitespace removed
		buf   []byte
		i     int
		base  int // offset of dec's input within data
	)
	lookup := func(prefix string) string {
		for j := len(ns) - 1; j >= 0; j-- {
			if ns[j].prefix == prefix {
				return ns[j].uri
			}
		}
		return ""
	}
	for {
		// RawToken with our own namespace stack (as Parse does), so that the
		// base64 text can be handed over without encoding/xml copying it.
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return newErr(CodeNotXML, "reading attachments: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			parent := -1
			if len(stack) > 0 {
				parent = stack[len(stack)-1].kind
			}
			n := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					ns = append(ns, nsBinding{"", a.Value})
					n++
				case a.Name.Space == "xmlns":
					ns = append(ns, nsBinding{a.Name.Local, a.Value})
					n++
				}
			}
			k := next(parent, xml.Name{Space: lookup(t.Name.Space), Local: t.Name.Local})
			stack = append(stack, frame{k, n})
			switch k {
			case aAtt:
				cid, b64 = cid[:0], b64[:0]
			case aData:
				// Fast path: the text up to the next '<' is the base64
				// unless it holds an entity or character reference.
				off := base + int(dec.InputOffset())
				if off < 2 || off > len(data) || data[off-2] == '/' {
					continue // <x/>
				}
				j := bytes.IndexByte(data[off:], '<')
				if j < 0 || bytes.IndexByte(data[off:off+j], '&') >= 0 {
					continue // the tokenizer takes it from here
				}
				b64 = appendBase64(slices.Grow(b64, j), data[off:off+j])
				if int64(len(b64)) > maxData/3*4+8 {
					return newErr(CodeTooLarge, "attachment %d: decoded size over the limit of %d bytes", i+1, maxData)
				}
				base = off + j
				dec = newDecoder(data[base:])
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			switch stack[len(stack)-1].kind {
			case aCID:
				cid = append(cid, t...)
			case aData:
				b64 = appendBase64(b64, t)
				if int64(len(b64)) > maxData/3*4+8 {
					return newErr(CodeTooLarge, "attachment %d: decoded size over the limit of %d bytes", i+1, maxData)
				}
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return newErr(CodeNotXML, "reading attachments: unbalanced end tag")
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			ns = ns[:len(ns)-top.nsN]
			if top.kind != aAtt {
				continue
			}
			if i >= len(doc.Attachments) {
				return newErr(CodeManifest, "more attachments than Parse saw")
			}
			a := doc.Attachments[i]
			if id := stripCID(string(cid)); id != a.ContentID {
				return newErr(CodeManifest, "attachment %d: ContentId %q, Parse saw %q", i+1, id, a.ContentID)
			}
			enc := base64.StdEncoding
			if len(b64)%4 != 0 && bytes.IndexByte(b64, '=') < 0 {
				enc = base64.RawStdEncoding
			}
			if n := enc.DecodedLen(len(b64)); cap(buf) < n {
				buf = make([]byte, n)
			}
			n, err := enc.Decode(buf[:cap(buf)], b64)
			if err != nil {
				return &Error{Code: CodeBadBase64, Msg: fmt.Sprintf("attachment %s", a.ContentID), Err: err}
			}
			if int64(n) != a.Size {
				return newErr(CodeBadBase64, "attachment %s: decoded %d bytes, Parse saw %d", a.ContentID, n, a.Size)
			}
			if sum := sha256.Sum256(buf[:n]); hex.EncodeToString(sum[:]) != a.SHA256 {
				return newErr(CodeBadBase64, "attachment %s: decoded bytes differ from what Parse saw (SHA-256)", a.ContentID)
			}
			if i >= skip {
				if err := fn(a, buf[:n]); err != nil {
					return err
				}
			}
			i++
		}
	}
	return nil
}

// ReadAttachments is EachAttachment collecting every attachment with a copy
// of its content. The decoded attachments take at most three quarters of
// len(raw).
func ReadAttachments(raw []byte, lim Limits) (*Document, []AttachmentData, error) {
	var out []AttachmentData
	doc, err := EachAttachment(raw, lim, func(a Attachment, data []byte) error {
		out = append(out, AttachmentData{Attachment: a, Data: bytes.Clone(data)})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return doc, out, nil
}

// AttachmentsOf is ReadAttachments on a Document that Parse returned. The
// content Parse kept is not copied: Data may be shared with doc and must
// not be modified.
func AttachmentsOf(doc *Document, lim Limits) ([]AttachmentData, error) {
	var out []AttachmentData
	i := 0
	err := EachAttachmentOf(doc, lim, func(a Attachment, data []byte) error {
		if kept, ok := keptData(doc, i, lim.withDefaults().MaxAttachmentBytes); ok && len(kept) == len(data) {
			data = kept[:len(kept):len(kept)] // the same bytes, kept by Parse: no copy
		} else {
			data = bytes.Clone(data)
		}
		out = append(out, AttachmentData{Attachment: a, Data: data})
		i++
		return nil
	})
	return out, err
}

// keptData returns attachment i's content as Parse kept it, when it did
// and the content is still the one doc.Attachments[i] describes; max is
// the decoded size limit (0: doc's own).
func keptData(doc *Document, i int, max int64) ([]byte, bool) {
	dec := doc.decoded
	if dec == nil || !sameSlice(doc.Raw, dec.raw) || len(dec.atts) != len(doc.Attachments) || i >= len(dec.atts) {
		return nil, false
	}
	d, a := &dec.atts[i], &doc.Attachments[i]
	if !d.kept || d.sum != a.SHA256 || d.size != a.Size || int64(len(d.data)) != d.size || (max > 0 && d.size > max) {
		return nil, false
	}
	return d.data, true
}

// appendBase64 appends src to dst without its whitespace (space, tab, CR,
// LF: MIME-wrapped base64), a line at a time.
func appendBase64(dst, src []byte) []byte {
	for len(src) > 0 {
		i := bytes.IndexAny(src, " \t\r\n")
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		src = src[i+1:]
	}
	return dst
}
