package xmlscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a Token.
type Kind uint8

// Token kinds.
const (
	StartElement Kind = iota + 1
	EndElement
	CharData
	Comment
	ProcInst
)

func (k Kind) String() string {
	switch k {
	case StartElement:
		return "StartElement"
	case EndElement:
		return "EndElement"
	case CharData:
		return "CharData"
	case Comment:
		return "Comment"
	case ProcInst:
		return "ProcInst"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Attr is an attribute as written: prefix, local name and normalised value.
type Attr struct {
	Prefix, Local, Value string
}

// Token is one piece of the document. Data and Attrs are valid until the next
// call of Next; the strings are not.
type Token struct {
	Kind          Kind
	Prefix, Local string // StartElement, EndElement
	Attrs         []Attr // StartElement
	// Data is the decoded character data (CharData), the comment's text
	// (Comment) or the PI's body (ProcInst).
	Data []byte
	// Target is the PI's target ("xml" for the XML declaration).
	Target string
	// CDATA marks character data that came from a CDATA section.
	CDATA bool
	// Ref marks character data in which a character or entity reference
	// was decoded (Data is then not the text as written).
	Ref bool
	// SelfClosing marks a StartElement written <a/>; its EndElement follows.
	SelfClosing bool
}

// Options bound what a Scanner accepts. Zero values mean the defaults.
type Options struct {
	// MaxDepth is the deepest element nesting allowed (the root is depth 1);
	// 0 means 256.
	MaxDepth int
	// MaxTextChunk, in reader mode, splits character data into CharData
	// tokens of at most max(MaxTextChunk, 4) bytes. 0 means one token per
	// run, which must then fit in MaxTokenBytes. Ignored in bytes mode.
	MaxTextChunk int
	// MaxAttrs is the most attributes one element may carry; 0 means 256.
	MaxAttrs int
	// MaxNameLen is the longest name (prefix:local) in bytes; 0 means 1024.
	MaxNameLen int
	// MaxTokenBytes, in reader mode, is the largest markup construct (and,
	// without MaxTextChunk, text run); 0 means 4 MiB.
	MaxTokenBytes int
	// BufferSize, in reader mode, is the initial buffer size; 0 means 64 KiB.
	BufferSize int
	// KeepSpaceOutsideRoot returns whitespace before and after the root
	// element as CharData tokens instead of skipping it (for a tree that is
	// written out again).
	KeepSpaceOutsideRoot bool
}

// Sentinels wrapped by *SyntaxError, for errors.Is.
var (
	ErrDoctype       = errors.New("DOCTYPE not allowed")
	ErrNotUTF8       = errors.New("not UTF-8")
	ErrTooDeep       = errors.New("nesting too deep")
	ErrTooManyAttrs  = errors.New("too many attributes")
	ErrNameTooLong   = errors.New("name too long")
	ErrTokenTooLarge = errors.New("markup larger than the buffer limit")
	ErrDuplicateAttr = errors.New("duplicate attribute")
)

// SyntaxError says why and where the input was refused.
type SyntaxError struct {
	Offset int64 // byte offset in the input
	Msg    string
	Err    error // a sentinel, an I/O error, or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("xmlscan: offset %d: %s", e.Offset, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

type name struct{ prefix, local string }

const (
	stProlog = iota
	stRoot
	stEpilog
)

// Scanner reads tokens from one document. It is not safe for concurrent use.
type Scanner struct {
	opt Options

	buf  []byte
	pos  int   // next unread byte in buf
	base int64 // input offset of buf[0]
	r    io.Reader
	eof  bool // no more input beyond buf

	state      int
	stack      []name
	pendingEnd bool
	bom        bool // a byte order mark was skipped
	inCDATA    bool
	brackets   int // trailing ']' of the previous text chunk (reader mode)
	chunk      int // output limit of one CharData token; 0: unlimited

	attrs []Attr
	data  []byte
	names map[string]string
	err   error
	tape  *Tape // Record
}

func (o *Options) defaults() {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 256
	}
	if o.MaxAttrs <= 0 {
		o.MaxAttrs = 256
	}
	if o.MaxNameLen <= 0 {
		o.MaxNameLen = 1024
	}
	if o.MaxTokenBytes <= 0 {
		o.MaxTokenBytes = 4 << 20
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 64 << 10
	}
	if o.BufferSize > o.MaxTokenBytes {
		o.BufferSize = o.MaxTokenBytes
	}
}

// NewBytes returns a Scanner over b, which must not change while it is read.
// Tokens refer into b where no decoding is needed.
func NewBytes(b []byte, opt Options) *Scanner {
	opt.defaults()
	return &Scanner{opt: opt, buf: b, eof: true}
}

// NewReader returns a Scanner reading r through a buffer bounded by
// opt.MaxTokenBytes.
func NewReader(r io.Reader, opt Options) *Scanner {
	opt.defaults()
	s := &Scanner{opt: opt, r: r, buf: make([]byte, 0, opt.BufferSize)}
	if opt.MaxTextChunk > 0 {
		s.chunk = max(opt.MaxTextChunk, 4)
	}
	return s
}

// Offset is the input offset of the next unread byte.
func (s *Scanner) Offset() int64 { return s.base + int64(s.pos) }

// Depth is the number of open elements.
func (s *Scanner) Depth() int { return len(s.stack) }

// Next returns the next token, or io.EOF once the root element is closed and
// only whitespace, comments and PIs followed it. Any other error is a
// *SyntaxError and is sticky.
func (s *Scanner) Next() (Token, error) {
	if s.err != nil {
		return Token{}, s.err
	}
	t, err := s.next()
	if s.tape != nil {
		switch err {
		case nil:
			s.tape.add(t)
		case io.EOF:
			s.tape.complete = true
		}
	}
	if err != nil {
		var se *SyntaxError
		if err != io.EOF && !errors.As(err, &se) {
			err = &SyntaxError{Offset: s.Offset(), Msg: err.Error(), Err: err}
		}
		s.err = err
	}
	return t, err
}

func (s *Scanner) fail(off int, msg string, args ...any) error {
	return &SyntaxError{Offset: s.Offset() + int64(off), Msg: fmt.Sprintf(msg, args...)}
}

func (s *Scanner) failErr(off int, sentinel error, msg string, args ...any) error {
	return &SyntaxError{Offset: s.Offset() + int64(off), Msg: fmt.Sprintf(msg, args...), Err: sentinel}
}

// avail is the number of buffered unread bytes.
func (s *Scanner) avail() int { return len(s.buf) - s.pos }

// fill reads more input into the buffer, compacting and growing it within
// MaxTokenBytes. It reports whether any byte was added.
func (s *Scanner) fill() (bool, error) {
	if s.eof {
		return false, nil
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:])
		s.buf = s.buf[:n]
		s.base += int64(s.pos)
		s.pos = 0
	}
	if len(s.buf) == cap(s.buf) {
		if cap(s.buf) >= s.opt.MaxTokenBytes {
			return false, s.failErr(0, ErrTokenTooLarge, "a token exceeds %d bytes", s.opt.MaxTokenBytes)
		}
		nb := make([]byte, len(s.buf), min(max(2*cap(s.buf), 64), s.opt.MaxTokenBytes))
		copy(nb, s.buf)
		s.buf = nb
	}
	for tries := 0; tries < 100; tries++ {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.eof = true
			if err != io.EOF {
				return n > 0, &SyntaxError{Offset: s.Offset() + int64(s.avail()), Msg: "read: " + err.Error(), Err: err}
			}
			return n > 0, nil
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, &SyntaxError{Offset: s.Offset(), Msg: "read: no progress", Err: io.ErrNoProgress}
}

// need makes n unread bytes available if the input has them; it reports
// whether it does.
func (s *Scanner) need(n int) (bool, error) {
	for s.avail() < n {
		ok, err := s.fill()
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// index finds sep in the unread bytes at or after from, reading more as
// needed; -1 when the input ends without it.
func (s *Scanner) index(sep string, from int) (int, error) {
	for {
		if from < s.avail() {
			if i := bytes.Index(s.buf[s.pos+from:], []byte(sep)); i >= 0 {
				return from + i, nil
			}
			from = max(from, s.avail()-len(sep)+1)
		}
		ok, err := s.fill()
		if err != nil {
			return -1, err
		}
		if !ok {
			return -1, nil
		}
	}
}

func (s *Scanner) unexpectedEOF() error {
	return s.fail(s.avail(), "unexpected end of input")
}

func (s *Scanner) next() (Token, error) {
	if s.pendingEnd {
		s.pendingEnd = false
		return s.pop(), nil
	}
	if s.inCDATA {
		return s.cdataChunk()
	}
	if s.state != stRoot {
		if s.opt.KeepSpaceOutsideRoot {
			if t, ok := s.outsideSpace(); ok {
				return t, nil
			}
		}
		if err := s.skipSpace(); err != nil {
			return Token{}, err
		}
		ok, err := s.need(1)
		if err != nil {
			return Token{}, err
		}
		if !ok {
			if s.state == stProlog {
				return Token{}, s.fail(0, "no root element")
			}
			return Token{}, io.EOF
		}
		if s.buf[s.pos] != '<' {
			if s.state == stProlog && s.Offset() == 0 && s.hasPrefix("\xef\xbb\xbf") {
				s.pos += 3
				s.bom = true
				return s.next()
			}
			return Token{}, s.fail(0, "character data outside the root element")
		}
		return s.markup()
	}
	ok, err := s.need(1)
	if err != nil {
		return Token{}, err
	}
	if !ok {
		return Token{}, s.unexpectedEOF()
	}
	if s.buf[s.pos] == '<' {
		return s.markup()
	}
	return s.text()
}

// hasPrefix reports whether the unread bytes start with p (reading as needed).
func (s *Scanner) hasPrefix(p string) bool {
	ok, _ := s.need(len(p))
	return ok && string(s.buf[s.pos:s.pos+len(p)]) == p
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// outsideSpace returns the whitespace run at the unread position as
// CharData, if there is one (in reader mode, at most what one buffer holds).
func (s *Scanner) outsideSpace() (Token, bool) {
	if ok, _ := s.need(1); !ok || !isSpace(s.buf[s.pos]) {
		return Token{}, false
	}
	n := 0
	for {
		for s.pos+n < len(s.buf) && isSpace(s.buf[s.pos+n]) {
			n++
		}
		if s.pos+n < len(s.buf) || s.eof || n >= 4096 {
			break
		}
		if ok, err := s.fill(); !ok || err != nil {
			break
		}
	}
	if s.chunk > 0 && n > s.chunk {
		n = s.chunk
	}
	if n > 1 && s.buf[s.pos+n-1] == '\r' {
		n-- // keep a \r\n pair together
	}
	b := s.buf[s.pos : s.pos+n]
	s.pos += n
	return Token{Kind: CharData, Data: s.normEOL(b)}, true
}

func (s *Scanner) skipSpace() error {
	for {
		for s.pos < len(s.buf) && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos < len(s.buf) {
			return nil
		}
		ok, err := s.fill()
		if err != nil || !ok {
			return err
		}
	}
}

func (s *Scanner) markup() (Token, error) {
	s.brackets = 0 // "]]>" across text chunks only, not across markup
	ok, err := s.need(2)
	if err != nil {
		return Token{}, err
	}
	if !ok {
		return Token{}, s.unexpectedEOF()
	}
	switch s.buf[s.pos+1] {
	case '/':
		return s.endTag()
	case '?':
		return s.procInst()
	case '!':
		switch {
		case s.hasPrefix("<!--"):
			return s.comment()
		case s.hasPrefix("<![CDATA["):
			if s.state != stRoot {
				return Token{}, s.fail(0, "CDATA section outside the root element")
			}
			s.pos += len("<![CDATA[")
			s.inCDATA = true
			s.brackets = 0
			return s.cdataChunk()
		case s.hasPrefix("<!DOCTYPE"):
			return Token{}, s.failErr(0, ErrDoctype, "DOCTYPE not allowed")
		}
		return Token{}, s.fail(0, "invalid markup after <!")
	}
	if s.state == stEpilog {
		return Token{}, s.fail(0, "a second root element")
	}
	return s.startTag()
}

// byteAt returns the unread byte at i, reading as needed.
func (s *Scanner) byteAt(i int) (byte, bool, error) {
	if i >= s.avail() {
		ok, err := s.need(i + 1)
		if err != nil || !ok {
			return 0, false, err
		}
	}
	return s.buf[s.pos+i], true, nil
}

// scanName reads a name at unread offset i; it returns the end offset and
// the offset of its colon (-1 when none).
func (s *Scanner) scanName(i int) (end, colon int, err error) {
	start := i
	if end, colon, ok := s.asciiName(i); ok {
		return end, colon, nil
	}
	colon = -1
	for {
		b, ok, err := s.byteAt(i)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			return 0, 0, s.unexpectedEOF()
		}
		var r rune
		size := 1
		if b < utf8.RuneSelf {
			r = rune(b)
		} else {
			if _, err := s.need(i + utf8.UTFMax); err != nil {
				return 0, 0, err
			}
			r, size = utf8.DecodeRune(s.buf[s.pos+i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, 0, s.failErr(i, ErrNotUTF8, "invalid UTF-8")
			}
		}
		if i == start {
			if !isNameStart(r) {
				return 0, 0, s.fail(i, "invalid name start character %q", r)
			}
		} else if !isNameChar(r) {
			break
		}
		if r == ':' {
			if colon >= 0 || i == start {
				return 0, 0, s.fail(i, "invalid colon in name")
			}
			colon = i
		}
		i += size
		if i-start > s.opt.MaxNameLen {
			return 0, 0, s.failErr(start, ErrNameTooLong, "name longer than %d bytes", s.opt.MaxNameLen)
		}
	}
	if colon == i-1 {
		return 0, 0, s.fail(colon, "invalid colon in name")
	}
	return i, colon, nil
}

// asciiName is scanName's fast path: a valid name of ASCII characters at
// unread offset i, wholly buffered and followed by an ASCII byte that ends
// it. ok false means: read it the general way (which also names the error).
func (s *Scanner) asciiName(i int) (end, colon int, ok bool) {
	b := s.buf[s.pos:]
	colon = -1
	j := i
	for ; j < len(b); j++ {
		c := b[j]
		if c >= utf8.RuneSelf || asciiName[c] == 0 {
			break
		}
		if c == ':' {
			if colon >= 0 {
				return 0, 0, false
			}
			colon = j
		}
	}
	if j == i || j >= len(b) || b[j] >= utf8.RuneSelf || j-i > s.opt.MaxNameLen ||
		asciiName[b[i]]&2 == 0 || colon == i || colon == j-1 {
		return 0, 0, false
	}
	return j, colon, true
}

// knownNames are the element, attribute and prefix names of the documents
// the hub reads (edXML, XML-DSig, the hub envelope, Akoma Ntoso metadata):
// every scanner shares these strings instead of allocating its own. It is
// never written after init.
var knownNames = func() map[string]string {
	names := []string{
		"Algorithm", "Appendix", "Appendixes", "Attachment", "AttachmentEncoded", "AttachmentName", "Body",
		"Bussiness", "BussinessDocReason", "BussinessDocType", "BussinessDocumentInfo", "CanonicalizationMethod",
		"Code", "CodeNotation", "CodeNumber", "Competence", "Content", "ContentId", "ContentTransferEncoded",
		"ContentType", "Created", "Deep", "Department", "Description", "DigestMethod", "DigestValue",
		"DigitalSignature", "Direction", "DocumentId", "DocumentInfo", "DocumentReceiver", "DocumentType",
		"DueDate", "Email", "Envelope", "FRBRWork", "FRBRauthor", "FRBRcountry", "FRBRdate", "FRBRthis", "FRBRuri",
		"Fax", "From", "FullName", "Header", "KeyInfo", "MessageHeader", "Mobile", "Object", "OrganAdd", "OrganId",
		"OrganIdList", "OrganName", "OrganizationInCharge", "OtherInfo", "PageAmount", "Paper", "Payload", "Place",
		"Position", "Priority", "PromulgationAmount", "PromulgationDate", "PromulgationInfo", "Receiver",
		"ReceiverList", "ReceiverType", "Reference", "ReplacementInfo", "ReplacementInfoList", "ResponseFor",
		"SOAP-ENV", "Signature", "SignatureMethod", "SignatureProperties", "SignatureProperty", "SignatureValue",
		"SignedInfo", "SignerInfo", "SigningTime", "SphereOfPromulgation", "Staff", "StaffInfo", "StatusCode",
		"SteeringType", "Subject", "Target", "Telephone", "Timestamp", "To", "ToPlaces", "TraceHeader",
		"TraceHeaderList", "Transform", "Transforms", "Type", "TypeDetail", "TypeName", "TyperNotation", "URI",
		"Website", "X509Certificate", "X509Data", "X509SubjectName", "X509IssuerSerial", "X509IssuerName",
		"X509SerialNumber", "KeyValue", "RSAKeyValue", "Modulus", "Exponent", "InclusiveNamespaces", "PrefixList",
		"Id", "ID", "actor", "akomaNtoso", "contentType", "date", "doc", "edXML", "edXMLBody", "edXMLEnvelope",
		"edXMLHeader", "edXMLManifest", "encoding", "href", "id", "identification", "lt", "mainBody", "meta",
		"mustUnderstand", "name", "p", "role", "source", "type", "value", "version", "xlink", "xmlns", "xml",
		"lang", "ds", "dsig", "ec", "xsi", "soap", "SOAP", "proprietary",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()

// knownValues are attribute values every signed document of the hub
// carries (namespace names, XML-DSig algorithm identifiers): shared instead
// of allocated per attribute. It is never written after init.
var knownValues = func() map[string]string {
	vals := []string{
		"", "1", "1.0", "base64", "ds",
		"http://www.mic.gov.vn/TBT/QCVN_102_2016", "urn:lienthong:envelope:1",
		"http://www.w3.org/2000/09/xmldsig#", "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
		"http://www.w3.org/2001/10/xml-exc-c14n#", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
		"http://www.w3.org/2006/12/xml-c14n11", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", "http://www.w3.org/2001/04/xmlenc#sha256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384", "http://www.w3.org/2001/04/xmlenc#sha512",
		"http://docs.oasis-open.org/legaldocml/ns/akn/3.0", "http://www.w3.org/2001/XMLSchema-instance",
		"http://www.w3.org/2001/XMLSchema", "application/pdf", "application/akn+xml",
	}
	m := make(map[string]string, len(vals))
	for _, v := range vals {
		m[v] = v
	}
	return m
}()

// intern returns b as a string, sharing repeated names.
func (s *Scanner) intern(b []byte) string {
	if v, ok := knownNames[string(b)]; ok {
		return v
	}
	if v, ok := s.names[string(b)]; ok {
		return v
	}
	if s.names == nil {
		s.names = make(map[string]string, 16)
	}
	v := string(b)
	if len(s.names) < 4096 {
		s.names[v] = v
	}
	return v
}

func (s *Scanner) splitName(start, end, colon int) (prefix, local string) {
	b := s.buf[s.pos+start : s.pos+end]
	if colon < 0 {
		return "", s.intern(b)
	}
	return s.intern(b[:colon-start]), s.intern(b[colon-start+1:])
}

func (s *Scanner) startTag() (Token, error) {
	end, colon, err := s.scanName(1)
	if err != nil {
		return Token{}, err
	}
	// Names are interned after the whole tag is buffered (fill may move it).
	nameEnd, nameColon := end, colon
	type span struct{ ns, ne, nc, vs, ve int }
	var spans [16]span
	sp := spans[:0]
	i := end
	for {
		b, ok, err := s.byteAt(i)
		if err != nil {
			return Token{}, err
		}
		if !ok {
			return Token{}, s.unexpectedEOF()
		}
		sawSpace := false
		for isSpace(b) {
			sawSpace = true
			i++
			if b, ok, err = s.byteAt(i); err != nil {
				return Token{}, err
			} else if !ok {
				return Token{}, s.unexpectedEOF()
			}
		}
		if b == '>' || b == '/' {
			if b == '/' {
				c, ok, err := s.byteAt(i + 1)
				if err != nil {
					return Token{}, err
				}
				if !ok || c != '>' {
					return Token{}, s.fail(i, "expected /> ")
				}
				i++
			}
			i++
			break
		}
		if !sawSpace {
			return Token{}, s.fail(i, "expected whitespace before an attribute")
		}
		if len(sp) >= s.opt.MaxAttrs {
			return Token{}, s.failErr(i, ErrTooManyAttrs, "more than %d attributes", s.opt.MaxAttrs)
		}
		ns := i
		ne, nc, err := s.scanName(i)
		if err != nil {
			return Token{}, err
		}
		i = ne
		for {
			if b, ok, err = s.byteAt(i); err != nil {
				return Token{}, err
			} else if !ok {
				return Token{}, s.unexpectedEOF()
			}
			if !isSpace(b) {
				break
			}
			i++
		}
		if b != '=' {
			return Token{}, s.fail(i, "expected = after attribute name")
		}
		i++
		for {
			if b, ok, err = s.byteAt(i); err != nil {
				return Token{}, err
			} else if !ok {
				return Token{}, s.unexpectedEOF()
			}
			if !isSpace(b) {
				break
			}
			i++
		}
		if b != '"' && b != '\'' {
			return Token{}, s.fail(i, "attribute value not quoted")
		}
		j, err := s.index(string(b), i+1)
		if err != nil {
			return Token{}, err
		}
		if j < 0 {
			return Token{}, s.unexpectedEOF()
		}
		sp = append(sp, span{ns, ne, nc, i + 1, j})
		i = j + 1
	}
	// The whole tag [0, i) is buffered from here on.
	tagEnd := i
	selfClosing := s.buf[s.pos+tagEnd-2] == '/'
	prefix, local := s.splitName(1, nameEnd, nameColon)
	s.attrs = s.attrs[:0]
	for _, a := range sp {
		ap, al := s.splitName(a.ns, a.ne, a.nc)
		for _, o := range s.attrs {
			if o.Prefix == ap && o.Local == al {
				return Token{}, s.failErr(a.ns, ErrDuplicateAttr, "duplicate attribute %s", qname(ap, al))
			}
		}
		v, err := s.attrValue(a.vs, a.ve)
		if err != nil {
			return Token{}, err
		}
		s.attrs = append(s.attrs, Attr{Prefix: ap, Local: al, Value: v})
	}
	if len(s.stack) >= s.opt.MaxDepth {
		return Token{}, s.failErr(0, ErrTooDeep, "nesting deeper than %d", s.opt.MaxDepth)
	}
	s.pos += tagEnd
	s.stack = append(s.stack, name{prefix, local})
	s.state = stRoot
	if selfClosing {
		s.pendingEnd = true
	}
	return Token{Kind: StartElement, Prefix: prefix, Local: local, Attrs: s.attrs, SelfClosing: selfClosing}, nil
}

func qname(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// attrValue decodes and normalises the attribute value at unread [vs, ve).
func (s *Scanner) attrValue(vs, ve int) (string, error) {
	raw := s.buf[s.pos+vs : s.pos+ve]
	if bytes.IndexByte(raw, '<') >= 0 {
		return "", s.fail(vs+bytes.IndexByte(raw, '<'), "'<' in an attribute value")
	}
	if off, err := checkChars(raw); err != nil {
		return "", s.wrapChar(vs+off, err)
	}
	plain := true
	for _, b := range raw {
		if b == '&' || b == '\t' || b == '\n' || b == '\r' {
			plain = false
			break
		}
	}
	if plain {
		if v, ok := knownValues[string(raw)]; ok {
			return v, nil
		}
		return string(raw), nil
	}
	out := s.data[:0]
	for k := 0; k < len(raw); k++ {
		switch b := raw[k]; b {
		case '\r':
			if k+1 < len(raw) && raw[k+1] == '\n' {
				k++
			}
			out = append(out, ' ')
		case '\t', '\n':
			out = append(out, ' ')
		case '&':
			r, n, err := entity(raw[k:])
			if err != nil {
				return "", s.fail(vs+k, "%s", err.Error())
			}
			out = utf8.AppendRune(out, r)
			k += n - 1
		default:
			out = append(out, b)
		}
	}
	s.data = out
	return string(out), nil
}

func (s *Scanner) wrapChar(off int, err error) error {
	if errors.Is(err, ErrNotUTF8) {
		return s.failErr(off, ErrNotUTF8, "invalid UTF-8")
	}
	return s.fail(off, "%s", err.Error())
}

func (s *Scanner) endTag() (Token, error) {
	if s.state != stRoot {
		return Token{}, s.fail(0, "end tag outside the root element")
	}
	end, colon, err := s.scanName(2)
	if err != nil {
		return Token{}, err
	}
	i := end
	for {
		b, ok, err := s.byteAt(i)
		if err != nil {
			return Token{}, err
		}
		if !ok {
			return Token{}, s.unexpectedEOF()
		}
		if b == '>' {
			break
		}
		if !isSpace(b) {
			return Token{}, s.fail(i, "invalid character in end tag")
		}
		i++
	}
	top := s.stack[len(s.stack)-1]
	b := s.buf[s.pos+2 : s.pos+end]
	if colon < 0 {
		if top.prefix != "" || string(b) != top.local {
			return Token{}, s.fail(0, "end tag </%s> does not match <%s>", b, qname(top.prefix, top.local))
		}
	} else if string(b[:colon-2]) != top.prefix || string(b[colon-2+1:]) != top.local {
		return Token{}, s.fail(0, "end tag </%s> does not match <%s>", b, qname(top.prefix, top.local))
	}
	s.pos += i + 1
	return s.pop(), nil
}

func (s *Scanner) pop() Token {
	top := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	if len(s.stack) == 0 {
		s.state = stEpilog
	}
	return Token{Kind: EndElement, Prefix: top.prefix, Local: top.local}
}

// normEOL returns b with \r\n and lone \r replaced by \n, in s.data when a
// change is needed.
func (s *Scanner) normEOL(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := s.data[:0]
	for k := 0; k < len(b); k++ {
		if b[k] == '\r' {
			if k+1 < len(b) && b[k+1] == '\n' {
				k++
			}
			out = append(out, '\n')
			continue
		}
		out = append(out, b[k])
	}
	s.data = out
	return out
}

func (s *Scanner) comment() (Token, error) {
	j, err := s.index("--", 4)
	if err != nil {
		return Token{}, err
	}
	if j < 0 {
		return Token{}, s.unexpectedEOF()
	}
	c, ok, err := s.byteAt(j + 2)
	if err != nil {
		return Token{}, err
	}
	if !ok {
		return Token{}, s.unexpectedEOF()
	}
	if c != '>' {
		return Token{}, s.fail(j, `"--" inside a comment`)
	}
	body := s.buf[s.pos+4 : s.pos+j]
	if len(body) > 0 && body[len(body)-1] == '-' {
		return Token{}, s.fail(j-1, `"--" inside a comment`)
	}
	if off, err := checkChars(body); err != nil {
		return Token{}, s.wrapChar(4+off, err)
	}
	s.pos += j + 3
	return Token{Kind: Comment, Data: s.normEOL(body)}, nil
}

func (s *Scanner) procInst() (Token, error) {
	atStart := s.Offset() == 0 || (s.bom && s.Offset() == 3)
	end, _, err := s.scanName(2)
	if err != nil {
		return Token{}, err
	}
	j, err := s.index("?>", end)
	if err != nil {
		return Token{}, err
	}
	if j < 0 {
		return Token{}, s.unexpectedEOF()
	}
	target := string(s.buf[s.pos+2 : s.pos+end])
	body := s.buf[s.pos+end : s.pos+j]
	if len(body) > 0 {
		if !isSpace(body[0]) {
			return Token{}, s.fail(end, "expected whitespace after the PI target")
		}
		k := 0
		for k < len(body) && isSpace(body[k]) {
			k++
		}
		body = body[k:]
	}
	if off, err := checkChars(body); err != nil {
		return Token{}, s.wrapChar(end+off, err)
	}
	if strings.EqualFold(target, "xml") {
		if !atStart || target != "xml" {
			return Token{}, s.fail(0, "XML declaration not at the start of the document")
		}
		if err := s.xmlDecl(string(body)); err != nil {
			return Token{}, err
		}
	} else if strings.ContainsRune(target, ':') {
		return Token{}, s.fail(2, "colon in a PI target")
	}
	s.pos += j + 2
	return Token{Kind: ProcInst, Target: target, Data: s.normEOL(body)}, nil
}

// xmlDecl checks the XML declaration's pseudo-attributes.
func (s *Scanner) xmlDecl(body string) error {
	rest := body
	var seen []string
	for rest = strings.TrimLeft(rest, " \t\r\n"); rest != ""; rest = strings.TrimLeft(rest, " \t\r\n") {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return s.fail(0, "malformed XML declaration")
		}
		key := strings.TrimRight(rest[:eq], " \t\r\n")
		rest = strings.TrimLeft(rest[eq+1:], " \t\r\n")
		if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			return s.fail(0, "malformed XML declaration")
		}
		q := rest[0]
		end := strings.IndexByte(rest[1:], q)
		if end < 0 {
			return s.fail(0, "malformed XML declaration")
		}
		val := rest[1 : 1+end]
		rest = rest[2+end:]
		if rest != "" && !isSpace(rest[0]) {
			return s.fail(0, "malformed XML declaration")
		}
		switch key {
		case "version":
			if len(seen) != 0 || val != "1.0" {
				return s.fail(0, "XML version %q not supported (only 1.0)", val)
			}
		case "encoding":
			if len(seen) != 1 || seen[0] != "version" {
				return s.fail(0, "malformed XML declaration")
			}
			if !strings.EqualFold(val, "utf-8") && !strings.EqualFold(val, "utf8") {
				return s.failErr(0, ErrNotUTF8, "encoding %q not accepted (UTF-8 only)", val)
			}
		case "standalone":
			if len(seen) == 0 || seen[len(seen)-1] == "standalone" || (val != "yes" && val != "no") {
				return s.fail(0, "malformed XML declaration")
			}
		default:
			return s.fail(0, "malformed XML declaration")
		}
		seen = append(seen, key)
	}
	if len(seen) == 0 || seen[0] != "version" {
		return s.fail(0, "XML declaration without version")
	}
	return nil
}

// fillUntil reads until find finds the end of the character data at the
// unread position (its offset there), the input ends, or enough is buffered
// for a chunk (chunked reader mode) or a token (MaxTokenBytes); it returns
// find's last answer, -1 when the end is not buffered.
func (s *Scanner) fillUntil(find func([]byte) int) (int, error) {
	lookahead := s.opt.MaxTokenBytes
	if s.chunk > 0 {
		lookahead = s.chunk + 64
	}
	for {
		j := find(s.buf[s.pos:])
		if j >= 0 || s.eof || s.avail() >= lookahead {
			return j, nil
		}
		if _, err := s.fill(); err != nil {
			return -1, err
		}
	}
}

// text returns the character data at the unread position, up to the next
// '<' or, in chunked reader mode, at most s.chunk bytes of it.
func (s *Scanner) text() (Token, error) {
	j, err := s.fillUntil(func(b []byte) int { return bytes.IndexByte(b, '<') })
	if err != nil {
		return Token{}, err
	}
	terminated := j >= 0
	if !terminated {
		if s.eof {
			// Text up to the end of the input: report what is wrong with
			// it first, as reader mode (which sees it in chunks) does.
			if off, err := checkChars(s.buf[s.pos:]); err != nil {
				return Token{}, s.wrapChar(off, err)
			}
			return Token{}, s.unexpectedEOF()
		}
		j = safeCut(s.buf[s.pos:], s.avail())
	}
	raw := s.buf[s.pos : s.pos+j]
	tok, n, err := s.decodeText(raw, false)
	if err != nil {
		return Token{}, err
	}
	s.pos += n
	return tok, nil
}

// safeCut returns a length ≤ n at which b may be cut between text chunks:
// not inside a UTF-8 sequence, a reference, or a \r\n pair.
func safeCut(b []byte, n int) int {
	cut := n
	// Only a reference that starts in the last 33 bytes can be cut (entity
	// refuses longer ones), so only that window is searched.
	lo := max(cut-33, 0)
	if k := bytes.LastIndexByte(b[lo:cut], '&'); k >= 0 && bytes.IndexByte(b[lo+k:cut], ';') < 0 {
		cut = lo + k
	}
	for cut > 0 && cut > n-utf8.UTFMax && b[cut-1] >= utf8.RuneSelf {
		// back off to the start of the last (possibly partial) sequence
		k := cut - 1
		for k > 0 && b[k]&0xC0 == 0x80 && k > cut-utf8.UTFMax {
			k--
		}
		if utf8.FullRune(b[k:cut]) {
			break
		}
		cut = k
	}
	if cut > 0 && b[cut-1] == '\r' {
		cut--
	}
	return cut
}

// decodeText decodes raw (text, or a CDATA section's content when cdata)
// into one CharData token of at most s.chunk bytes (unlimited when 0); it
// returns how many bytes of raw it consumed.
func (s *Scanner) decodeText(raw []byte, cdata bool) (Token, int, error) {
	// "]]>" may not appear in text; check across chunks too.
	if !cdata {
		if s.brackets > 0 && len(raw) > 0 {
			if (s.brackets >= 2 && raw[0] == '>') || (s.brackets == 1 && len(raw) > 1 && raw[0] == ']' && raw[1] == '>') {
				return Token{}, 0, s.fail(0, `"]]>" in text`)
			}
		}
	}
	// The first problem in document order is reported.
	off, cerr := checkChars(raw)
	if !cdata {
		if k := bytes.Index(raw, []byte("]]>")); k >= 0 && (cerr == nil || k < off) {
			return Token{}, 0, s.fail(k, `"]]>" in text`)
		}
	}
	if cerr != nil {
		return Token{}, 0, s.wrapChar(off, cerr)
	}
	amp := !cdata && bytes.IndexByte(raw, '&') >= 0
	cr := bytes.IndexByte(raw, '\r') >= 0
	var out []byte
	n := len(raw)
	if !amp && !cr {
		if s.chunk > 0 && n > s.chunk {
			n = runeCut(raw, s.chunk)
		}
		out = raw[:n]
	} else {
		out = s.data[:0]
		limit := s.chunk
		if limit == 0 {
			limit = len(raw)
		}
		k := 0
		for k < len(raw) && len(out) < limit {
			b := raw[k]
			switch {
			case b == '\r':
				if k+1 < len(raw) && raw[k+1] == '\n' {
					k++
				}
				out = append(out, '\n')
				k++
			case b == '&' && !cdata:
				r, m, err := entity(raw[k:])
				if err != nil {
					return Token{}, 0, s.fail(k, "%s", err.Error())
				}
				if len(out)+utf8.RuneLen(r) > limit {
					goto done
				}
				out = utf8.AppendRune(out, r)
				k += m
			default:
				// a run of plain bytes
				e := k + 1
				for e < len(raw) && raw[e] != '\r' && (cdata || raw[e] != '&') {
					e++
				}
				if room := limit - len(out); e-k > room {
					e = k + runeCut(raw[k:], room)
					if e == k {
						goto done
					}
				}
				out = append(out, raw[k:e]...)
				k = e
			}
		}
	done:
		s.data = out
		n = k
	}
	if !cdata {
		s.brackets = 0
		for k := n - 1; k >= 0 && raw[k] == ']' && s.brackets < 2; k-- {
			s.brackets++
		}
	}
	ref := amp && bytes.IndexByte(raw[:n], '&') >= 0
	return Token{Kind: CharData, Data: out, CDATA: cdata, Ref: ref}, n, nil
}

// runeCut returns the largest length ≤ n that does not split a UTF-8
// sequence of b.
func runeCut(b []byte, n int) int {
	if n >= len(b) {
		return len(b)
	}
	for n > 0 && b[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

// cdataChunk returns (the next chunk of) the open CDATA section.
func (s *Scanner) cdataChunk() (Token, error) {
	j, err := s.fillUntil(func(b []byte) int { return bytes.Index(b, []byte("]]>")) })
	if err != nil {
		return Token{}, err
	}
	terminated := j >= 0
	if !terminated {
		if s.eof {
			return Token{}, s.unexpectedEOF()
		}
		j = safeCutCDATA(s.buf[s.pos:], s.avail()-2)
	}
	raw := s.buf[s.pos : s.pos+j]
	tok, n, err := s.decodeText(raw, true)
	if err != nil {
		return Token{}, err
	}
	s.pos += n
	if terminated && n == len(raw) {
		s.pos += 3
		s.inCDATA = false
	}
	return tok, nil
}

func safeCutCDATA(b []byte, n int) int {
	if n <= 0 {
		return 0
	}
	cut := runeCut(b, n)
	if cut > 0 && b[cut-1] == '\r' {
		cut--
	}
	return cut
}

// entity decodes the reference at the start of b ("&...;"); it returns the
// character and the reference's length.
func entity(b []byte) (rune, int, error) {
	end := bytes.IndexByte(b[:min(len(b), 33)], ';')
	if end < 0 {
		return 0, 0, errors.New("unterminated or overlong entity reference")
	}
	ref := b[1:end]
	switch string(ref) {
	case "lt":
		return '<', end + 1, nil
	case "gt":
		return '>', end + 1, nil
	case "amp":
		return '&', end + 1, nil
	case "apos":
		return '\'', end + 1, nil
	case "quot":
		return '"', end + 1, nil
	}
	if len(ref) < 2 || ref[0] != '#' {
		return 0, 0, fmt.Errorf("entity &%s; not allowed (only the predefined ones)", ref)
	}
	digits, base := ref[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return 0, 0, errors.New("empty character reference")
	}
	var v rune
	for _, c := range digits {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, 0, fmt.Errorf("invalid character reference &%s;", ref)
		}
		v = v*rune(base) + d
		if v > 0x10FFFF {
			return 0, 0, fmt.Errorf("character reference &%s; out of range", ref)
		}
	}
	if !isChar(v) {
		return 0, 0, fmt.Errorf("character reference &%s; is not an XML character", ref)
	}
	return v, end + 1, nil
}

func isChar(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

var errBadChar = errors.New("character not allowed in XML")

// checkChars validates that b is UTF-8 made of XML characters; it returns
// the offset of the first offending byte. Eight ASCII bytes at a time.
func checkChars(b []byte) (int, error) {
	i := 0
	for {
		for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return 0, nil
		}
		// slow path for (at least) the next 8 bytes
		for e := min(i+8, len(b)); i < e; {
			c := b[i]
			switch {
			case c >= 0x20 && c < utf8.RuneSelf:
				i++
			case c == '\t' || c == '\n' || c == '\r':
				i++
			case c < 0x20:
				return i, errBadChar
			default:
				r, size := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && size <= 1 {
					return i, ErrNotUTF8
				}
				if r == 0xFFFE || r == 0xFFFF {
					return i, errBadChar
				}
				i += size
			}
		}
	}
}

// special reports whether the 8 bytes of w hold one < 0x20 or ≥ 0x80.
func special(w uint64) bool {
	const hi = 0x8080808080808080
	const lo = 0x2020202020202020
	// w&hi: a byte ≥ 0x80. For the others, (b - 0x20) borrows into bit 7
	// only when b < 0x20 (b < 0x80 guaranteed by masking first).
	if w&hi != 0 {
		return true
	}
	return ((w|hi)-lo)&hi != hi
}
