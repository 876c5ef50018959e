package envelope

import (
	"bytes"
)

// keepDecodedMax bounds the decoded attachment bytes Parse keeps in a
// Document for EachAttachmentOf (they are about three quarters of a
// document this small, which the hub holds in memory anyway; larger
// attachments are decoded again when they are needed).
const keepDecodedMax = 1 << 20

// keepAttachment makes the decoder keep the content of the attachment whose
// ContentTransferEncoded starts at p.tokAfter, when Parse reads bytes and
// the content fits in what is left of the budget.
func (p *parser) keepAttachment() {
	if p.keepBudget <= 0 || p.data == nil || p.tokAfter > len(p.data) {
		return
	}
	j := bytes.IndexByte(p.data[p.tokAfter:], '<')
	if j < 0 {
		return
	}
	n := int64(j)/4*3 + 3 // at most this many decoded bytes before the next markup
	if n > p.keepBudget {
		return
	}
	p.b64.keepDecoded(p.keepBudget, int(n))
}

// sameText follows ParseSigned's comparison of an attachment's text in the
// signed element with the text Parse decoded for it in the received bytes.
type sameText struct {
	on   bool
	text []byte // the attachment's text in the received document's Raw
	pos  int    // text[:pos] is what the signed element's text was so far
	res  attDecoded
}

// match reports whether t continues the received text, and consumes it.
func (s *sameText) match(t []byte) bool {
	if len(t) > len(s.text)-s.pos || !bytes.Equal(t, s.text[s.pos:s.pos+len(t)]) {
		return false
	}
	s.pos += len(t)
	return true
}

// sameString is match for text of the current element given as a string
// (ParseSigned's tree), when it is an attachment's being compared.
func (p *parser) sameString(t string) bool {
	if !p.same.on || len(p.stack) == 0 || p.stack[len(p.stack)-1].kind != kAttData {
		return false
	}
	s := &p.same
	if len(t) > len(s.text)-s.pos || string(s.text[s.pos:s.pos+len(t)]) != t {
		return false
	}
	s.pos += len(t)
	return true
}

// matched is the signed element's text so far (the same bytes).
func (s *sameText) matched() []byte { return s.text[:s.pos] }

// sameAttachment starts comparing the text of attachment i of the signed
// element with the received document's (ParseSigned only).
func (p *parser) sameAttachment(i int) {
	p.same = sameText{}
	r := p.ref
	if r == nil || r.decoded == nil || !sameSlice(r.Raw, r.decoded.raw) || len(r.spans) != len(r.Attachments) ||
		len(r.decoded.atts) != len(r.spans) || i >= len(r.spans) {
		return
	}
	sp := r.spans[i]
	if sp.start < 0 || sp.start >= sp.end || sp.end > len(r.Raw) {
		return
	}
	p.same = sameText{on: true, text: r.Raw[sp.start:sp.end], res: r.decoded.atts[i]}
}

// sameResult ends the comparison at the end of the attachment's text: ok
// when the whole text was the received one, and its decoding fits this
// parser's limit; else the decoder is given what was skipped.
func (p *parser) sameResult() (attDecoded, bool) {
	s := &p.same
	if !s.on {
		return attDecoded{}, false
	}
	s.on = false
	if s.pos == len(s.text) && (p.lim.MaxAttachmentBytes <= 0 || s.res.size <= p.lim.MaxAttachmentBytes) {
		return s.res, true
	}
	p.b64.write(s.matched())
	return attDecoded{}, false
}

// sameSlice reports whether a and b are the same bytes in memory (not only
// equal ones): Document.Raw is still the slice Parse read.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
