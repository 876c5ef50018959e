package attsig

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"lienthong/envelope/trust"
)

// PDFSignature is one signature dictionary found in a PDF: its /ByteRange,
// its /SubFilter and the CMS of its /Contents. Code is set when the
// dictionary cannot be verified as found (malformed, unsupported
// sub-filter, a byte range that leaves part of the file unsigned).
type PDFSignature struct {
	Offset    int // of the /ByteRange key
	ByteRange [4]int64
	SubFilter string
	Contents  []byte // DER, hex-decoded, the zero padding removed
	Code      string
	Reason    string
	// Revision is set for a signature over an earlier revision of the file
	// that a later signature covers (see ScanPDF).
	Revision string

	partial bool // the range ends before the end of the file
}

// Sub-filters whose /Contents is a detached CMS over the byte ranges.
var detachedSubFilters = map[string]bool{"adbe.pkcs7.detached": true, "ETSI.CAdES.detached": true}

const (
	keyByteRange = "/ByteRange"
	keyContents  = "/Contents"
	keySubFilter = "/SubFilter"
	// dictWindow bounds how far from /ByteRange the scanner looks for the
	// /SubFilter of the same dictionary.
	dictWindow = 16 << 10
)

// ScanPDF finds every signature dictionary of pdf: every /ByteRange whose
// gap is the hexadecimal /Contents string of the same dictionary. It reads
// the file as bytes and never follows objects, so it sees signature
// dictionaries wherever they are (signature dictionaries may not sit in
// compressed object streams, their offsets must be literal). It checks that
// the ranges cover the whole file except the Contents hole (first range from
// byte 0, second to the end of the file). A signature over an earlier
// revision (its range ends at that revision's %%EOF) passes only when a
// later signature covers the whole file and that revision; otherwise it is
// pdf_byterange_incomplete (changes after signing that nobody signed).
//
// More than maxSigs dictionaries is an *Error (pdf_too_many_signatures).
func ScanPDF(pdf []byte, maxSigs int, maxSigBytes int64) ([]PDFSignature, error) {
	var out []PDFSignature
	for off := 0; ; {
		i := bytes.Index(pdf[off:], []byte(keyByteRange))
		if i < 0 {
			break
		}
		pos := off + i
		off = pos + len(keyByteRange)
		if off < len(pdf) && !isDelim(pdf[off]) {
			continue // a longer name, e.g. /ByteRangeX
		}
		if len(out) >= maxSigs {
			return out, aerr(CodePDFTooMany, nil, "more than %d signature dictionaries", maxSigs)
		}
		out = append(out, scanOne(pdf, pos, maxSigBytes))
	}
	acceptRevisions(out, pdf)
	return out, nil
}

func scanOne(pdf []byte, pos int, maxSigBytes int64) PDFSignature {
	s := PDFSignature{Offset: pos}
	bad := func(code, format string, args ...any) PDFSignature {
		s.Code, s.Reason = code, fmt.Sprintf(format, args...)
		s.Contents = nil
		return s
	}
	// /ByteRange [a b c d]
	i := skipWS(pdf, pos+len(keyByteRange))
	if i >= len(pdf) || pdf[i] != '[' {
		return bad(CodePDFMalformed, "/ByteRange at %d is not a direct array", pos)
	}
	i++
	for k := range 4 {
		i = skipWS(pdf, i)
		j := i
		for j < len(pdf) && j-i < 19 && pdf[j] >= '0' && pdf[j] <= '9' {
			j++
		}
		if j == i || j < len(pdf) && pdf[j] >= '0' && pdf[j] <= '9' {
			return bad(CodePDFMalformed, "/ByteRange at %d: element %d is not a non-negative integer", pos, k+1)
		}
		var n int64
		for _, c := range pdf[i:j] {
			n = n*10 + int64(c-'0')
		}
		s.ByteRange[k] = n
		i = j
	}
	i = skipWS(pdf, i)
	if i >= len(pdf) || pdf[i] != ']' {
		return bad(CodePDFMalformed, "/ByteRange at %d has more or fewer than 4 elements", pos)
	}
	brEnd := i + 1
	a, b, c, d := s.ByteRange[0], s.ByteRange[1], s.ByteRange[2], s.ByteRange[3]
	size := int64(len(pdf))

	// The gap [b, c) must be exactly the hex string of this dictionary's
	// /Contents.
	if b <= 0 || c <= b+1 || c > size {
		return bad(CodePDFMalformed, "/ByteRange %v: the gap is not inside the file", s.ByteRange)
	}
	if pdf[b] != '<' || pdf[c-1] != '>' {
		return bad(CodePDFMalformed, "/ByteRange %v: the gap is not a hexadecimal string", s.ByteRange)
	}
	k := b - 1
	for k >= 0 && isWS(pdf[k]) {
		k--
	}
	if k+1 < int64(len(keyContents)) || string(pdf[k+1-int64(len(keyContents)):k+1]) != keyContents {
		return bad(CodePDFMalformed, "/ByteRange %v: the gap is not the value of /Contents", s.ByteRange)
	}
	cPos := int(k + 1 - int64(len(keyContents)))
	hole := [2]int{int(b), int(c)}
	if !sameDict(pdf, pos, brEnd, cPos, int(c), hole) {
		return bad(CodePDFMalformed, "/ByteRange at %d and the /Contents at %d are not in the same dictionary", pos, cPos)
	}
	hexText := pdf[b+1 : c-1]
	if int64(len(hexText)) > 2*maxSigBytes {
		return bad(CodeTooLarge, "/Contents of %d hex digits is over the limit of %d bytes", len(hexText), maxSigBytes)
	}
	der := make([]byte, hex.DecodedLen(len(hexText)))
	if len(hexText)%2 != 0 {
		return bad(CodePDFMalformed, "/Contents has an odd number of hex digits")
	}
	if _, err := hex.Decode(der, hexText); err != nil {
		return bad(CodePDFMalformed, "/Contents is not hexadecimal: %v", err)
	}
	n, ok := derLength(der)
	if !ok {
		return bad(CodeMalformed, "/Contents does not hold a DER structure")
	}
	for _, z := range der[n:] {
		if z != 0 {
			return bad(CodePDFMalformed, "/Contents has non-zero bytes after the CMS")
		}
	}
	s.Contents = der[:n]

	// /SubFilter of the same dictionary.
	lo, hi := max(0, min(pos, cPos)-dictWindow), min(len(pdf), max(brEnd, int(c))+dictWindow)
	for off := lo; off < hi; {
		j := bytes.Index(pdf[off:hi], []byte(keySubFilter))
		if j < 0 {
			break
		}
		sf := off + j
		off = sf + len(keySubFilter)
		if inHole(sf, hole) {
			continue
		}
		if !sameDict(pdf, sf, off, pos, brEnd, hole) {
			continue
		}
		v := skipWS(pdf, off)
		if v < len(pdf) && pdf[v] == '/' {
			e := v + 1
			for e < len(pdf) && !isDelim(pdf[e]) && !isWS(pdf[e]) {
				e++
			}
			s.SubFilter = string(pdf[v+1 : e])
		}
		break
	}
	switch {
	case s.SubFilter == "":
		return bad(CodePDFMalformed, "signature dictionary without /SubFilter")
	case !detachedSubFilters[s.SubFilter]:
		return bad(CodePDFSubFilter, "/SubFilter /%s is not supported (adbe.pkcs7.detached or ETSI.CAdES.detached only)", s.SubFilter)
	}

	// Coverage: the whole file except the hole.
	switch {
	case a != 0:
		return bad(CodePDFByteRange, "/ByteRange %v does not start at byte 0", s.ByteRange)
	case d < 0 || c+d > size:
		return bad(CodePDFMalformed, "/ByteRange %v goes beyond the end of the file (%d bytes)", s.ByteRange, size)
	case c+d < size:
		// Maybe an earlier revision, signed again later (see ScanPDF).
		s.Code, s.Reason = CodePDFByteRange, fmt.Sprintf("/ByteRange %v leaves bytes %d to %d unsigned (changes after signing)", s.ByteRange, c+d, size)
		s.partial = true
		return s
	}
	return s
}

// endsRevision reports whether pdf[:n] ends with an %%EOF marker (and an
// optional end of line): the end of a revision before an incremental
// update.
func endsRevision(pdf []byte, n int64) bool {
	t := pdf[:n]
	t = bytes.TrimSuffix(t, []byte("\n"))
	t = bytes.TrimSuffix(t, []byte("\r"))
	return bytes.HasSuffix(t, []byte("%%EOF"))
}

// acceptRevisions clears the incomplete-range code of a signature over an
// earlier revision when a later signature, itself covering the whole file
// except its own hole, covers that whole revision: the usual PDF with
// several signatures (the signer's, then the issuing office's), each added
// by an incremental update. What changed after the earlier revision is
// attested by the later signer only; the verdict says so.
func acceptRevisions(sigs []PDFSignature, pdf []byte) {
	size := int64(len(pdf))
	for i := range sigs {
		s := &sigs[i]
		if !s.partial {
			continue
		}
		end := s.ByteRange[2] + s.ByteRange[3]
		if !endsRevision(pdf, end) {
			continue
		}
		for j, o := range sigs {
			if o.Code == "" && o.ByteRange[2]+o.ByteRange[3] == size && o.ByteRange[1] >= end {
				s.Code, s.partial = "", false
				s.Revision = fmt.Sprintf("signs the revision of bytes 0 to %d; the changes after it are covered by signature %d only", end, j+1)
				break
			}
		}
	}
}

// signedContent writes the bytes the signature covers (the two parts of
// its /ByteRange, never copied).
func (s *PDFSignature) signedContent(pdf []byte) contentFunc {
	a, b, c, d := s.ByteRange[0], s.ByteRange[1], s.ByteRange[2], s.ByteRange[3]
	return bytesContent(pdf[a:a+b], pdf[c:c+d])
}

// sameDict reports whether the tokens at [p1, e1) and [p2, e2) sit in the
// same dictionary: the bytes between them (outside the Contents hole) open
// and close dictionaries in balance and never close the enclosing one.
func sameDict(pdf []byte, p1, e1, p2, e2 int, hole [2]int) bool {
	from, to := e1, p2
	if p2 < p1 {
		from, to = e2, p1
	}
	if from > to {
		return false
	}
	depth := 0
	for i := from; i < to; {
		if inHole(i, hole) {
			i = hole[1]
			continue
		}
		switch c := pdf[i]; {
		case c == '(':
			i = skipLiteral(pdf, i, to)
			continue
		case c == '%':
			for i < to && pdf[i] != '\n' && pdf[i] != '\r' {
				i++
			}
			continue
		case c == '<' && i+1 < to && pdf[i+1] == '<':
			depth++
			i += 2
			continue
		case c == '>' && i+1 < to && pdf[i+1] == '>':
			depth--
			if depth < 0 {
				return false
			}
			i += 2
			continue
		case c == '<':
			for i < to && pdf[i] != '>' {
				i++
			}
		}
		i++
	}
	return depth == 0
}

// skipLiteral skips a literal string starting at pdf[i] == '(' (nested
// parentheses, backslash escapes) and returns the index after it.
func skipLiteral(pdf []byte, i, to int) int {
	depth := 0
	for ; i < to; i++ {
		switch pdf[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return to
}

func inHole(i int, hole [2]int) bool { return i >= hole[0] && i < hole[1] }

// derLength returns the length of the DER (or BER) element at the start of
// b: header plus content for a definite length, len(b) for an indefinite
// one (the BER end-of-contents octets are zeros, so no padding can be told
// apart; the CMS parser takes it from there).
func derLength(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	l := int(b[1])
	switch {
	case l < 0x80:
		if 2+l > len(b) {
			return 0, false
		}
		return 2 + l, true
	case l == 0x80:
		return len(b), true
	}
	n := l & 0x7f
	if n > 4 || 2+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[2 : 2+n] {
		v = v<<8 | int(c)
	}
	if v < 0 || 2+n+v > len(b) {
		return 0, false
	}
	return 2 + n + v, true
}

func isWS(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return isWS(c)
}

func skipWS(pdf []byte, i int) int {
	for i < len(pdf) && isWS(pdf[i]) {
		i++
	}
	return i
}

// VerifyPDF checks every signature embedded in pdf under the named trust
// domain and returns one verdict per signature dictionary (none for an
// unsigned PDF). Errors are the hub's problem (unknown domain, context).
func (v *Verifier) VerifyPDF(ctx context.Context, domain string, pdf []byte) ([]Verdict, error) {
	d, now, err := v.domain(domain)
	if err != nil {
		return nil, err
	}
	return verifyPDF(ctx, d, now, v.Limits.withDefaults(), pdf)
}

// pdfTooLarge is the verdict of a PDF over lim.MaxPDFBytes: not checked.
func pdfTooLarge(d *trust.Domain, now time.Time, size int64, lim Limits) Verdict {
	return Verdict{Kind: KindPAdES, Index: 1, Outcome: OutcomeNotChecked, Code: CodeTooLarge, Domain: d.Name, VerifiedAt: now,
		Reason: fmt.Sprintf("PDF of %d bytes is over the scan limit of %d: its signatures were not checked", size, lim.MaxPDFBytes)}
}

func verifyPDF(ctx context.Context, d *trust.Domain, now time.Time, lim Limits, pdf []byte) ([]Verdict, error) {
	if int64(len(pdf)) > lim.MaxPDFBytes {
		return []Verdict{pdfTooLarge(d, now, int64(len(pdf)), lim)}, nil
	}
	sigs, scanErr := ScanPDF(pdf, lim.MaxPDFSignatures, lim.MaxSignatureBytes)
	var out []Verdict
	for i, s := range sigs {
		vd := Verdict{Kind: KindPAdES, Index: i + 1, Domain: d.Name, VerifiedAt: now, SubFilter: s.SubFilter,
			ByteRange: append([]int64(nil), s.ByteRange[:]...)}
		if s.Code != "" {
			vd.Outcome, vd.Code, vd.Reason = OutcomeInvalid, s.Code, s.Reason
			out = append(out, vd)
			continue
		}
		if err := verifyCMS(ctx, d, now, lim, s.signedContent(pdf), s.Contents, &vd); err != nil {
			if _, err := fail(&vd, err); vd.Outcome == "" {
				return nil, err
			}
		}
		if vd.Outcome == OutcomeValid && s.Revision != "" {
			vd.Reason = s.Revision
		}
		out = append(out, vd)
	}
	if scanErr != nil {
		var ae *Error
		if errors.As(scanErr, &ae) {
			out = append(out, Verdict{Kind: KindPAdES, Index: len(sigs) + 1, Outcome: OutcomeInvalid, Code: ae.Code, Reason: ae.Reason,
				Domain: d.Name, VerifiedAt: now})
		}
	}
	return out, nil
}
