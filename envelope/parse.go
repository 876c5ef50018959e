package envelope

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"lienthong/envelope/xmlscan"
)

// Namespaces the parser recognises. Elements are matched by namespace URI and
// local name, never by prefix.
const (
	NamespaceEdXML   = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
	NamespaceHub     = "urn:lienthong:envelope:1"
	NamespaceXMLDSig = "http://www.w3.org/2000/09/xmldsig#"
	namespaceXML     = "http://www.w3.org/XML/1998/namespace"
)

// QD20Marker is the OrganizationInCharge value the axis writes on a To it added
// while converting an old organ code to its QĐ 20/2020 form.
const QD20Marker = "TLTVBQG_CDMDD_QD20"

// Limits bound what Parse accepts. A zero field takes its default.
type Limits struct {
	MaxBytes           int64 // whole envelope, as received; default 32 MiB
	MaxDepth           int   // element nesting; default 64
	MaxAttachments     int   // manifest References, and Attachments, each; default 1000
	MaxAttachmentBytes int64 // decoded size of one attachment; default: bounded by MaxBytes only
}

// Default limits.
const (
	DefaultMaxBytes       = 32 << 20
	DefaultMaxDepth       = 64
	DefaultMaxAttachments = 1000
)

// DefaultLimits returns the limits Parse applies to zero fields.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxDepth: DefaultMaxDepth, MaxAttachments: DefaultMaxAttachments}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = d.MaxAttachments
	}
	if l.MaxAttachmentBytes < 0 {
		l.MaxAttachmentBytes = 0
	}
	return l
}

// Parse detects the envelope in raw (an edXML document package, an edXML
// status package, or a hub envelope) and reads it into a Document in one
// streaming pass over envelope/xmlscan's tokens. Document.Raw is raw itself,
// never modified.
//
// Parse checks well-formedness (including namespace well-formedness: an
// unbound prefix is not XML), refuses DOCTYPE and entity declarations, accepts
// a UTF-8 byte-order mark and trailing whitespace, and refuses anything before
// the XML declaration. Attachments are base64-decoded on the fly to compute
// their size and SHA-256 and to sniff their type; they are not unzipped.
// Signatures are not verified here.
//
// Every rejection is an *Error; CodeOf gives its Code.
func Parse(raw []byte, lim Limits) (*Document, error) {
	return parse(raw, lim, nil)
}

// ParseRecorded is Parse keeping the tokens it read (Document.TakeTokens),
// so that the verification step verifies the signature over these very
// tokens (dsig.Verifier.VerifyTokens) instead of tokenizing Raw again:
// the metadata and the digested content are then one reading of Raw.
func ParseRecorded(raw []byte, lim Limits) (*Document, error) {
	tape := xmlscan.NewTape()
	doc, err := parse(raw, lim, tape)
	if err != nil {
		tape.Release()
		return nil, err
	}
	doc.tokens = tape
	return doc, nil
}

// parse is Parse, recording its tokens into tape when it is not nil.
func parse(raw []byte, lim Limits, tape *xmlscan.Tape) (*Document, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.MaxBytes {
		return nil, newErr(CodeTooLarge, "%d bytes is over the limit of %d", len(raw), lim.MaxBytes)
	}
	data := raw
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		data = data[3:]
		// The scanner would skip a BOM at its offset 0 too, so a second one
		// would pass here; ParseReader sees it as character data before the
		// root, and so must Parse.
		if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
			return nil, newErr(CodeNotXML, "not well-formed: offset 3: a second byte order mark, character data outside the root element")
		}
	}
	if !utf8.Valid(data) {
		return nil, newErr(CodeBadEncoding, "the document is not valid UTF-8")
	}
	p := parser{lim: lim, doc: &Document{Raw: raw, parsed: raw}, rawOff: len(raw) - len(data), keepBudget: keepDecodedMax, tape: tape}
	defer p.b64.release()
	p.stack = make([]frame, 0, 16)
	p.ns = make([]nsBinding, 0, 8)
	if err := p.scan(data); err != nil {
		return nil, err
	}
	return p.finish()
}

// finish checks what can only be checked at the end of the document and
// returns it.
func (p *parser) finish() (*Document, error) {
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

// errCharset is returned by the decoder's CharsetReader: any declared
// encoding other than UTF-8 is refused.
type errCharset struct{ name string }

func (e *errCharset) Error() string { return "declared encoding " + strconv.Quote(e.name) }

func newDecoder(b []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(charset string, _ io.Reader) (io.Reader, error) {
		return nil, &errCharset{charset}
	}
	return d
}

type kind uint8

// Element kinds: the parser's position in the envelope. A child's kind is a
// function of its parent's kind, its namespace and its local name.
const (
	kOther kind = iota
	kEdRoot
	kHubRoot
	kEnv
	kHdr
	kMsg
	kFrom
	kTo
	kCode
	kPromInfo
	kRF
	kTrace
	kBiz
	kBody
	kManifest
	kRef
	kAttEnc
	kAtt
	hHdr
	hFrom
	hTo
	hRF
	hPayload
	kForeign // an element directly inside a hub Payload
	kReplList
	kReplInfo // ReplacementInfoList/ReplacementInfo
	kSignature

	kFirstLeaf // kinds from here on collect their text
	kOrgID
	kOrgName
	kOrgInCharge
	kDocID
	kCodeNumber
	kCodeNotation
	kSubject
	kPromDate
	kDueDate
	kRFOrganID
	kRFCode
	kRFDate
	kRFDocID
	kStatusCode
	kDescription
	kTimestamp
	kBizDocID
	kBizType
	kReplDocID // ReplacementInfo/DocumentId
	kRefCID
	kRefCT
	kRefName
	kAttCID
	kAttCT
	kAttName
	kAttData // base64, streamed
	hCreated
)

const (
	nsOther = iota
	nsEd
	nsHub
	nsDSig
)

func nsID(uri string) int {
	switch uri {
	case NamespaceEdXML:
		return nsEd
	case NamespaceHub:
		return nsHub
	case NamespaceXMLDSig:
		return nsDSig
	}
	return nsOther
}

// childKind is the envelope grammar, by name and never by position.
func childKind(parent kind, ns int, local string) kind {
	if ns == nsEd {
		switch parent {
		case kEdRoot:
			switch local {
			case "edXMLEnvelope":
				return kEnv
			case "AttachmentEncoded":
				return kAttEnc
			}
		case kEnv:
			switch local {
			case "edXMLHeader":
				return kHdr
			case "edXMLBody":
				return kBody
			case "AttachmentEncoded":
				return kAttEnc
			}
		case kHdr:
			switch local {
			case "MessageHeader":
				return kMsg
			case "TraceHeaderList":
				return kTrace
			case "Bussiness":
				return kBiz
			}
		case kMsg:
			switch local {
			case "From":
				return kFrom
			case "To":
				return kTo
			case "DocumentId":
				return kDocID
			case "Code":
				return kCode
			case "Subject":
				return kSubject
			case "PromulgationInfo":
				return kPromInfo
			case "DueDate":
				return kDueDate
			case "ResponseFor":
				return kRF
			case "StatusCode":
				return kStatusCode
			case "Description":
				return kDescription
			case "Timestamp":
				return kTimestamp
			}
		case kFrom, kTo:
			switch local {
			case "OrganId":
				return kOrgID
			case "OrganName":
				return kOrgName
			case "OrganizationInCharge":
				return kOrgInCharge
			}
		case kCode:
			switch local {
			case "CodeNumber":
				return kCodeNumber
			case "CodeNotation":
				return kCodeNotation
			}
		case kPromInfo:
			if local == "PromulgationDate" {
				return kPromDate
			}
		case kRF:
			switch local {
			case "OrganId":
				return kRFOrganID
			case "Code":
				return kRFCode
			case "PromulgationDate":
				return kRFDate
			case "DocumentId":
				return kRFDocID
			}
		case kTrace:
			if local == "Bussiness" {
				return kBiz
			}
		case kBiz:
			switch local {
			case "DocumentId":
				return kBizDocID
			case "BussinessDocType":
				return kBizType
			case "ReplacementInfoList":
				return kReplList
			}
		case kReplList:
			if local == "ReplacementInfo" {
				return kReplInfo
			}
		case kReplInfo:
			if local == "DocumentId" {
				return kReplDocID
			}
		case kBody:
			if local == "edXMLManifest" {
				return kManifest
			}
			if local == "AttachmentEncoded" {
				return kAttEnc
			}
		case kManifest:
			if local == "Reference" {
				return kRef
			}
		case kRef:
			switch local {
			case "ContentId":
				return kRefCID
			case "ContentType":
				return kRefCT
			case "AttachmentName":
				return kRefName
			}
		case kAttEnc:
			if local == "Attachment" {
				return kAtt
			}
		case kAtt:
			switch local {
			case "ContentId":
				return kAttCID
			case "ContentType":
				return kAttCT
			case "AttachmentName":
				return kAttName
			case "ContentTransferEncoded":
				return kAttData
			}
		}
		if local == "Signature" && parent != kOther && parent != kSignature {
			return kSignature
		}
		return kOther
	}
	if ns == nsHub {
		switch parent {
		case kHubRoot:
			switch local {
			case "Header":
				return hHdr
			case "Payload":
				return hPayload
			}
		case hHdr:
			switch local {
			case "From":
				return hFrom
			case "To":
				return hTo
			case "DocumentId":
				return kDocID
			case "Subject":
				return kSubject
			case "ResponseFor":
				return hRF
			case "Created":
				return hCreated
			}
		case hFrom, hTo:
			switch local {
			case "OrganId":
				return kOrgID
			case "OrganName":
				return kOrgName
			}
		case hRF:
			switch local {
			case "OrganId":
				return kRFOrganID
			case "DocumentId":
				return kRFDocID
			}
		}
	}
	if parent == hPayload {
		return kForeign
	}
	return kOther
}

type frame struct {
	name xml.Name // raw (prefix, local), to match the end tag
	kind kind
	nsN  int // namespace bindings this element declared
}

type nsBinding struct{ prefix, uri string }

// organEntry is a From or To block being read.
type organEntry struct {
	code, name, inCharge string
}

type refEntry struct{ cid, ct, name string }

type attEntry struct {
	cid, ct, name string
	data          int // ContentTransferEncoded elements seen
	size          int64
	sum           string
	sniffed       string
	zipWarnings   []string
	// start, end: the ContentTransferEncoded text in the scanned input;
	// plain when it is the element's whole content and holds no markup or
	// reference (see attSpan).
	start, end int
	plain      bool
	impure     bool // reader mode: a comment, PI, CDATA section or reference in the text
	// kept is the decoded content when Parse kept it (keptOK).
	kept   []byte
	keptOK bool
}

type parser struct {
	lim Limits
	// keepBudget is how many decoded attachment bytes Parse may still keep
	// in the Document (keepDecodedMax in all); 0 for the other parsers.
	keepBudget int64
	// ParseSigned: ref is the received document, same the text of the
	// current attachment in ref.Raw and how much of it the signed
	// element's text has matched so far (see sameText).
	ref   *Document
	same  sameText
	stack []frame
	ns    []nsBinding
	text  []byte
	root  kind
	done  bool // the root element has ended
	doc   *Document

	// Set by scan: the input and the offsets of the current token in it;
	// rawOff is the input's offset in Document.Raw (a byte-order mark).
	data               []byte
	tokStart, tokAfter int
	rawOff             int
	reader             bool          // ParseReader: offsets are in the body read
	tape               *xmlscan.Tape // ParseRecorded: scan records its tokens here
	// sink, when set, receives each attachment's decoded content in pieces
	// (DecodeAttachments).
	sink func(i int, b []byte)

	cur       *organEntry
	from      *organEntry
	fromCount int
	to        []organEntry
	rf        ResponseFor
	status    *Status
	bizType   string
	bizSeen   bool
	replSeen  bool
	refs      []refEntry
	atts      []attEntry
	b64       b64Stream
	sigQCVN   bool
	sigDSig   bool
	headSeen  map[kind]bool // single-valued header fields already taken

	// hub envelope
	payloadSeen  bool
	payloadB64   bool
	payloadElems int
	payloadText  bool
	payloadNS    string
	created      string
}

func (p *parser) warn(format string, args ...any) {
	p.doc.Warnings = append(p.doc.Warnings, fmt.Sprintf(format, args...))
}

func (p *parser) lookup(prefix string) (string, bool) {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	switch prefix {
	case "":
		return "", true
	case "xml":
		return namespaceXML, true
	}
	return "", false
}

func (p *parser) start(t xml.StartElement) error {
	if p.done {
		return newErr(CodeNotXML, "content after the root element")
	}
	if len(p.stack) >= p.lim.MaxDepth {
		return newErr(CodeTooDeep, "nesting deeper than %d elements", p.lim.MaxDepth)
	}
	if strings.IndexByte(t.Name.Local, ':') >= 0 || t.Name.Space == "xmlns" {
		return newErr(CodeNotXML, "element name %q is not a valid qualified name", qname(t.Name))
	}
	nsN := 0
	for i, a := range t.Attr {
		for _, b := range t.Attr[:i] {
			if a.Name == b.Name {
				return newErr(CodeDuplicateAttr, "attribute %q repeated on <%s>", qname(a.Name), qname(t.Name))
			}
		}
		switch {
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				return newErr(CodeNotXML, "prefix %q bound to an empty namespace", a.Name.Local)
			}
			p.ns = append(p.ns, nsBinding{a.Name.Local, a.Value})
			nsN++
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			p.ns = append(p.ns, nsBinding{"", a.Value})
			nsN++
		}
	}
	for _, a := range t.Attr {
		if strings.IndexByte(a.Name.Local, ':') >= 0 {
			return newErr(CodeNotXML, "attribute name %q is not a valid qualified name", qname(a.Name))
		}
		if a.Name.Space != "" && a.Name.Space != "xmlns" {
			if _, ok := p.lookup(a.Name.Space); !ok {
				return newErr(CodeNotXML, "attribute %q uses the unbound prefix %q", qname(a.Name), a.Name.Space)
			}
		}
	}
	uri, ok := p.lookup(t.Name.Space)
	if !ok {
		return newErr(CodeNotXML, "element <%s> uses the unbound prefix %q", qname(t.Name), t.Name.Space)
	}
	ns := nsID(uri)
	parent := kOther
	if len(p.stack) == 0 {
		switch {
		case ns == nsEd && t.Name.Local == "edXML":
			p.root, p.doc.Format = kEdRoot, FormatEdXML
		case ns == nsHub && t.Name.Local == "Envelope":
			p.root, p.doc.Format = kHubRoot, FormatHub
			if v := attr(t, "version"); v != "1" {
				return newErr(CodeUnknownEnvelope, "hub envelope version %q is not supported (want \"1\")", v)
			}
		default:
			return newErr(CodeUnknownEnvelope, "root element {%s}%s is neither edXML nor the hub envelope", uri, t.Name.Local)
		}
		p.stack = append(p.stack, frame{t.Name, p.root, nsN})
		p.text = p.text[:0]
		return nil
	}
	parent = p.stack[len(p.stack)-1].kind
	k := childKind(parent, ns, t.Name.Local)
	if ns == nsDSig && t.Name.Local == "Signature" {
		p.sigDSig = true
	}
	p.stack = append(p.stack, frame{t.Name, k, nsN})
	p.text = p.text[:0]
	return p.open(k, t, uri)
}

// open runs when an element of kind k starts.
func (p *parser) open(k kind, t xml.StartElement, uri string) error {
	switch k {
	case kFrom, kTo, hFrom, hTo:
		p.cur = &organEntry{}
	case kRF, hRF:
		p.rf = ResponseFor{}
	case kSignature:
		p.sigQCVN = true
	case kReplList:
		p.replSeen = true
	case kRef:
		if len(p.refs) >= p.lim.MaxAttachments {
			return newErr(CodeTooLarge, "more than %d manifest references", p.lim.MaxAttachments)
		}
		p.refs = append(p.refs, refEntry{})
	case kAtt:
		if len(p.atts) >= p.lim.MaxAttachments {
			return newErr(CodeTooLarge, "more than %d attachments", p.lim.MaxAttachments)
		}
		p.atts = append(p.atts, attEntry{})
	case kAttData:
		a := &p.atts[len(p.atts)-1]
		a.data++
		if a.data > 1 {
			return newErr(CodeManifest, "attachment %d has more than one ContentTransferEncoded", len(p.atts))
		}
		p.b64.reset(p.lim.MaxAttachmentBytes)
		a.start = p.tokAfter
		if p.sink != nil {
			i := len(p.atts) - 1
			p.b64.sink = func(b []byte) { p.sink(i, b) }
		}
		p.keepAttachment()
		p.sameAttachment(len(p.atts) - 1)
	case kStatusCode:
		if p.status == nil {
			p.status = &Status{}
		}
	case hPayload:
		if p.payloadSeen {
			return newErr(CodeUnknownEnvelope, "hub envelope with more than one Payload")
		}
		p.payloadSeen = true
		p.doc.PayloadType = strings.TrimSpace(attr(t, "contentType"))
		switch enc := attr(t, "encoding"); enc {
		case "":
		case "base64":
			p.payloadB64 = true
			p.b64.reset(p.lim.MaxAttachmentBytes)
		default:
			return newErr(CodeUnknownEnvelope, "hub Payload encoding %q is not supported (want \"base64\" or none)", enc)
		}
	case kForeign:
		p.payloadElems++
		p.payloadNS = uri
	}
	return nil
}

func (p *parser) chars(t xml.CharData) error {
	if len(p.stack) == 0 {
		if !isSpace(t) {
			return newErr(CodeNotXML, "text outside the root element")
		}
		return nil
	}
	switch k := p.stack[len(p.stack)-1].kind; {
	case k == kAttData:
		if p.same.on {
			if p.same.match(t) {
				return nil
			}
			p.same.on = false
			p.b64.write(p.same.matched()) // what was skipped, then on as usual
		}
		p.b64.write(t)
	case k == hPayload:
		if p.payloadB64 {
			p.b64.write(t)
		} else if !isSpace(t) {
			p.payloadText = true
		}
	case k > kFirstLeaf:
		p.text = append(p.text, t...)
	}
	return nil
}

func (p *parser) end(t xml.EndElement) error {
	if len(p.stack) == 0 {
		return newErr(CodeNotXML, "end tag </%s> without a start tag", qname(t.Name))
	}
	top := p.stack[len(p.stack)-1]
	if top.name != t.Name {
		return newErr(CodeNotXML, "end tag </%s> does not match <%s>", qname(t.Name), qname(top.name))
	}
	p.stack = p.stack[:len(p.stack)-1]
	p.ns = p.ns[:len(p.ns)-top.nsN]
	if len(p.stack) == 0 {
		p.done = true
	}
	var s string
	if top.kind > kFirstLeaf && top.kind != kAttData {
		s = strings.TrimSpace(string(p.text))
	}
	parent := kOther
	if len(p.stack) > 0 {
		parent = p.stack[len(p.stack)-1].kind
	}
	return p.close(top.kind, parent, s)
}

// first stores s into *dst unless a previous element of the same kind already
// set a value (single-valued fields: the first one wins, later ones are
// reported).
func (p *parser) first(k kind, dst *string, s, what string) {
	if p.headSeen == nil {
		p.headSeen = make(map[kind]bool, 8)
	}
	if p.headSeen[k] {
		if s != "" && s != *dst {
			p.warn("header: repeated %s %q ignored", what, s)
		}
		return
	}
	p.headSeen[k] = true
	*dst = s
}

// close runs when an element of kind k ends; s is its trimmed text.
func (p *parser) close(k, parent kind, s string) error {
	d := p.doc
	switch k {
	case kOrgID:
		p.cur.code = s
	case kOrgName:
		p.cur.name = s
	case kOrgInCharge:
		p.cur.inCharge = s
	case kFrom, hFrom:
		p.fromCount++
		if p.fromCount == 1 {
			p.from = p.cur
		} else {
			p.warn("header: repeated From %q ignored", p.cur.code)
		}
	case kTo, hTo:
		p.to = append(p.to, *p.cur)
	case kDocID:
		p.first(k, &d.DocumentID, s, "DocumentId")
	case kCodeNumber:
		p.first(k, &d.CodeNumber, s, "CodeNumber")
	case kCodeNotation:
		p.first(k, &d.CodeNotation, s, "CodeNotation")
	case kSubject:
		p.first(k, &d.Subject, s, "Subject")
	case kPromDate:
		p.first(k, &d.PromulgationDate, s, "PromulgationDate")
	case kDueDate:
		p.first(k, &d.DueDate, s, "DueDate")
	case kRFOrganID:
		p.rf.OrganID = s
	case kRFCode:
		p.rf.Code = s
	case kRFDate:
		p.rf.PromulgationDate = s
	case kRFDocID:
		p.rf.DocumentID = s
	case kRF, hRF:
		if p.rf != (ResponseFor{}) { // empty, or all children empty: absent
			d.ResponseFor = append(d.ResponseFor, p.rf)
		}
	case kStatusCode:
		p.first(k, &p.status.Code, s, "StatusCode")
	case kDescription, kTimestamp:
		if p.status == nil {
			p.status = &Status{}
		}
		if k == kDescription {
			p.first(k, &p.status.Description, s, "Description")
		} else {
			p.first(k, &p.status.Timestamp, s, "Timestamp")
		}
	case kBizDocID:
		p.first(k, &d.BusinessDocumentID, s, "Bussiness/DocumentId")
	case kReplDocID:
		if s != "" && !containsString(d.ReplacedDocumentIDs, s) {
			d.ReplacedDocumentIDs = append(d.ReplacedDocumentIDs, s)
		}
	case kBizType:
		if !p.bizSeen {
			p.bizSeen, p.bizType = true, s
		}
	case kRefCID:
		p.refs[len(p.refs)-1].cid = s
	case kRefCT:
		p.refs[len(p.refs)-1].ct = s
	case kRefName:
		p.refs[len(p.refs)-1].name = s
	case kAttCID:
		p.atts[len(p.atts)-1].cid = s
	case kAttCT:
		p.atts[len(p.atts)-1].ct = s
	case kAttName:
		p.atts[len(p.atts)-1].name = s
	case kAttData:
		a := &p.atts[len(p.atts)-1]
		if r, ok := p.sameResult(); ok {
			a.size, a.sum, a.sniffed, a.zipWarnings = r.size, r.sum, r.sniffed, r.zipWarnings
			break
		}
		size, sum, err := p.b64.finish()
		if err != nil {
			return p.b64Err(fmt.Sprintf("attachment %d", len(p.atts)), err)
		}
		a.size, a.sum = size, sum
		a.end = p.tokStart
		if p.data != nil {
			a.plain = p.plainText(a.start, p.tokStart)
		} else if p.reader {
			a.plain = !a.impure && a.start <= a.end
		}
		a.sniffed = sniff(p.b64.head)
		if a.sniffed == "application/zip" {
			a.zipWarnings = zipWarnings(stripCID(a.cid), p.b64.head, p.b64.tail, size)
		}
		if p.b64.keep {
			a.kept, a.keptOK = p.b64.kept, true
			p.keepBudget -= int64(len(a.kept))
		}
	case hPayload:
		if p.payloadB64 {
			size, sum, err := p.b64.finish()
			if err != nil {
				return p.b64Err("hub payload", err)
			}
			d.Attachments = append(d.Attachments, Attachment{ContentID: "payload", ContentType: d.PayloadType,
				Sniffed: sniff(p.b64.head), Size: size, SHA256: sum})
		}
	case hCreated:
		p.first(k, &p.created, s, "Created")
	}
	return nil
}

func (p *parser) b64Err(what string, err error) error {
	if p.b64.big {
		return &Error{Code: CodeTooLarge, Msg: what + " is too large", Err: err}
	}
	return &Error{Code: CodeBadBase64, Msg: what + " is not valid base64", Err: err}
}

// checkOrgan applies ValidateOrganCode to one organ of the envelope.
func (p *parser) checkOrgan(role, code string) error {
	if prob := organCodeProblem(code); prob != "" {
		return newErr(CodeBadOrganCode, "%s organ code %q: %s", role, code, prob)
	}
	if !IsCanonicalOrganCode(code) {
		p.warn("organ: %s code %q is not canonical (NNN.NN.NN.XNN)", role, code)
	}
	return nil
}

func (p *parser) fromOrgan() error {
	if p.from == nil || p.from.code == "" {
		return newErr(CodeMissingFrom, "no From/OrganId")
	}
	if err := p.checkOrgan("From", p.from.code); err != nil {
		return err
	}
	p.doc.From = Organ{Code: p.from.code, Name: p.from.name}
	return nil
}

func (p *parser) toOrgans() error {
	d := p.doc
	for i, t := range p.to {
		if t.code == "" {
			return newErr(CodeBadOrganCode, "To #%d has no OrganId", i+1)
		}
		if err := p.checkOrgan("To", t.code); err != nil {
			return err
		}
		if t.inCharge == QD20Marker {
			p.warn("to: %q carries the axis code-conversion marker %s; an old-code duplicate may also be listed (de-duplicate through the directory)", t.code, QD20Marker)
		}
		dup := false
		for _, o := range d.To {
			if o.Code == t.code {
				dup = true
				break
			}
		}
		if dup {
			p.warn("to: duplicate recipient %q dropped", t.code)
			continue
		}
		d.To = append(d.To, Organ{Code: t.code, Name: t.name})
	}
	return nil
}

func (p *parser) signatureWarning() {
	if p.sigQCVN {
		p.warn("signature: placeholder (not in the xmldsig namespace)")
	}
}

// StatusCodes are the edXML status codes (edxml.md §8.2).
var statusCodes = []string{"01", "02", "03", "04", "05", "06", "13", "15", "16"}

func (p *parser) finishEdXML() error {
	d := p.doc
	if p.status != nil && p.headSeen[kStatusCode] {
		return p.finishStatus()
	}
	if p.status != nil {
		// Description or Timestamp without StatusCode: a document package
		// with stray fields; they mean nothing here.
		p.status = nil
	}
	if err := p.fromOrgan(); err != nil {
		return err
	}
	if len(p.to) == 0 {
		return newErr(CodeMissingTo, "no To in a document package")
	}
	if err := p.toOrgans(); err != nil {
		return err
	}
	if d.DocumentID == "" {
		return newErr(CodeMissingDocID, "no MessageHeader/DocumentId")
	}
	if p.bizType != "" {
		n, err := strconv.Atoi(p.bizType)
		if err != nil || n < BusinessNew || n > BusinessReplacement {
			return newErr(CodeBadBusiness, "BussinessDocType %q is not 0, 1, 2 or 3", p.bizType)
		}
		d.BusinessDocType = n
	}
	switch d.BusinessDocType {
	case BusinessRevocation:
		if len(d.ResponseFor) == 0 {
			return newErr(CodeBadBusiness, "a revocation (type 1) needs MessageHeader/ResponseFor naming the revoked document")
		}
	case BusinessUpdate:
		if d.BusinessDocumentID == "" {
			return newErr(CodeBadBusiness, "an update (type 2) needs Bussiness/DocumentId naming the updated document")
		}
	case BusinessReplacement:
		if !p.replSeen {
			p.warn("business: replacement (type 3) without ReplacementInfoList")
		}
	}
	if err := p.attachments(); err != nil {
		return err
	}
	p.signatureWarning()
	return nil
}

func (p *parser) finishStatus() error {
	d := p.doc
	d.Format = FormatEdXMLStatus
	if err := p.fromOrgan(); err != nil {
		return err
	}
	st := p.status
	if !containsString(statusCodes, st.Code) {
		return newErr(CodeBadStatus, "StatusCode %q is not one of %s", st.Code, strings.Join(statusCodes, " "))
	}
	var rf *ResponseFor
	for i := range d.ResponseFor {
		if d.ResponseFor[i].OrganID != "" && d.ResponseFor[i].DocumentID != "" {
			rf = &d.ResponseFor[i]
			break
		}
	}
	if rf == nil {
		return newErr(CodeBadStatus, "a status package needs ResponseFor with OrganId and DocumentId")
	}
	if len(d.ResponseFor) > 1 {
		p.warn("status: %d ResponseFor entries; the first complete one is used", len(d.ResponseFor))
	}
	if err := p.checkOrgan("ResponseFor", rf.OrganID); err != nil {
		return err
	}
	if len(p.to) > 0 || len(p.refs) > 0 || len(p.atts) > 0 {
		p.warn("status: To, manifest and attachments of a status package are ignored")
	}
	d.To = []Organ{{Code: rf.OrganID}}
	if d.DocumentID != "" && d.DocumentID != rf.DocumentID {
		p.warn("status: MessageHeader/DocumentId %q ignored; the status is about %q", d.DocumentID, rf.DocumentID)
	}
	d.DocumentID = rf.DocumentID
	d.Status = st
	p.signatureWarning()
	return nil
}

func stripCID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "cid:") {
		s = strings.TrimSpace(s[4:])
	}
	return strings.Trim(s, "<>")
}

// attachments cross-checks the manifest with the attachments and fills
// Document.Attachments in attachment order.
func (p *parser) attachments() error {
	refIDs := make([]string, len(p.refs))
	used := make([]bool, len(p.refs))
	for i, r := range p.refs {
		id := stripCID(r.cid)
		if id == "" {
			return newErr(CodeManifest, "manifest Reference #%d has no ContentId", i+1)
		}
		if containsString(refIDs[:i], id) {
			return newErr(CodeManifest, "manifest lists ContentId %q twice", id)
		}
		refIDs[i] = id
	}
	d := p.doc
	for i, a := range p.atts {
		id := stripCID(a.cid)
		if id == "" {
			return newErr(CodeManifest, "Attachment #%d has no ContentId", i+1)
		}
		for _, o := range d.Attachments {
			if o.ContentID == id {
				return newErr(CodeManifest, "two Attachments with ContentId %q", id)
			}
		}
		j := indexString(refIDs, id)
		if j < 0 {
			return newErr(CodeManifest, "Attachment %q is not in the manifest", id)
		}
		used[j] = true
		r := p.refs[j]
		if a.data == 0 {
			p.warn("attachment %s: no ContentTransferEncoded (empty)", id)
		}
		out := Attachment{ContentID: id, Name: a.name, ContentType: a.ct, Sniffed: a.sniffed, Size: a.size, SHA256: a.sum}
		if out.Name == "" {
			out.Name = r.name
		}
		if out.ContentType == "" {
			out.ContentType = r.ct
		} else if r.ct != "" && !strings.EqualFold(r.ct, a.ct) {
			p.warn("attachment %s: manifest ContentType %q, attachment ContentType %q", id, r.ct, a.ct)
		}
		if a.sum == "" {
			out.SHA256 = emptySHA256
		}
		if ct := strings.ToLower(out.ContentType); out.Sniffed != "" && (ct == "application/pdf" || ct == "application/zip") && ct != out.Sniffed {
			p.warn("attachment %s: declared %q but the content is %s", id, out.ContentType, out.Sniffed)
		}
		p.doc.Warnings = append(p.doc.Warnings, a.zipWarnings...)
		d.Attachments = append(d.Attachments, out)
	}
	d.spans, d.bodySpans = p.spans(), p.bodySpans()
	if d.spans != nil {
		dec := &decodedAtts{raw: d.Raw, atts: make([]attDecoded, len(p.atts))}
		for i, a := range p.atts {
			dec.atts[i] = attDecoded{size: a.size, sum: a.sum, sniffed: a.sniffed, zipWarnings: a.zipWarnings,
				data: a.kept, kept: a.keptOK}
			if a.data == 0 { // no content: the empty attachment
				dec.atts[i].sum, dec.atts[i].kept = emptySHA256, true
			}
		}
		d.decoded = dec
	}
	for j, u := range used {
		if !u {
			return newErr(CodeManifest, "manifest Reference %q has no Attachment", refIDs[j])
		}
	}
	return nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (p *parser) finishHub() error {
	d := p.doc
	if err := p.fromOrgan(); err != nil {
		return err
	}
	if len(p.to) == 0 {
		return newErr(CodeMissingTo, "no To in the hub envelope")
	}
	if err := p.toOrgans(); err != nil {
		return err
	}
	if d.DocumentID == "" {
		return newErr(CodeMissingDocID, "no Header/DocumentId")
	}
	switch {
	case !p.payloadSeen:
		return newErr(CodeUnknownEnvelope, "hub envelope without Payload")
	case d.PayloadType == "":
		return newErr(CodeUnknownEnvelope, "hub Payload without contentType")
	case p.payloadB64 && p.payloadElems > 0:
		return newErr(CodeUnknownEnvelope, "hub Payload with encoding=\"base64\" holds elements")
	case !p.payloadB64 && (p.payloadElems != 1 || p.payloadText):
		return newErr(CodeUnknownEnvelope, "an inline hub Payload must hold exactly one element and no text")
	case !p.payloadB64 && (p.payloadNS == "" || p.payloadNS == NamespaceHub):
		return newErr(CodeUnknownEnvelope, "the inline payload's root element must be in its own namespace")
	}
	if p.created == "" {
		p.warn("hub: no Header/Created")
	} else if _, err := time.Parse(time.RFC3339Nano, p.created); err != nil {
		p.warn("hub: Header/Created %q is not an xs:dateTime with a time zone", p.created)
	}
	if p.sigQCVN {
		p.warn("signature: placeholder (not in the xmldsig namespace)")
	}
	return nil
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool { return indexString(list, s) >= 0 }

func indexString(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
