package envelope

import (
	"unsafe"

	"lienthong/envelope/xmlscan"
)

// Format names the kind of envelope a document arrived in.
type Format string

// The formats the hub understands.
const (
	FormatEdXML       Format = "edxml"        // edXML document package (QCVN 102:2016)
	FormatEdXMLStatus Format = "edxml-status" // edXML status package (01–06, 13, 15, 16)
	FormatHub         Format = "hub"          // Lienthong hub envelope (schemas/hub-envelope.xsd)
)

// Business document types (edXML TraceHeaderList/Bussiness/BussinessDocType).
const (
	BusinessNew         = 0
	BusinessRevocation  = 1
	BusinessUpdate      = 2
	BusinessReplacement = 3
)

// Organ is an organisation block (From, To) as it appears in the envelope.
type Organ struct {
	Code string // OrganId, as written (trimmed)
	Name string // OrganName
}

// ResponseFor points at an earlier document (replies, revocations, statuses).
type ResponseFor struct {
	OrganID          string
	Code             string
	PromulgationDate string
	DocumentID       string
}

// Attachment is one entry of the attachment manifest. The hub never rewrites
// attachments: Size and SHA256 describe the decoded bytes as received.
type Attachment struct {
	ContentID   string // without the "cid:" prefix
	Name        string
	ContentType string // as declared by the attachment (or manifest) element
	Sniffed     string // "application/pdf", "application/zip" or "" when unknown
	Size        int64  // decoded size in bytes
	SHA256      string // lowercase hex digest of the decoded bytes
}

// Status is the status part of an edXML status package.
type Status struct {
	Code        string // two-digit code, leading zero kept ("01")
	Description string
	Timestamp   string // as written (yyyy/MM/dd HH:mm:ss)
}

// Document is the hub's view of one submitted envelope. Raw holds the bytes
// exactly as received; everything else is derived from them and never used to
// re-create them.
type Document struct {
	Raw    []byte
	Format Format

	From             Organ
	To               []Organ // de-duplicated by code, in document order
	DocumentID       string
	CodeNumber       string
	CodeNotation     string
	Subject          string
	PromulgationDate string // yyyy/MM/dd as written
	DueDate          string
	BusinessDocType  int
	// BusinessDocumentID is Bussiness/DocumentId: the document an update
	// (type 2) refers to.
	BusinessDocumentID string
	// ReplacedDocumentIDs lists ReplacementInfoList/ReplacementInfo/DocumentId:
	// the documents a replacement (type 3) replaces, in document order.
	ReplacedDocumentIDs []string
	ResponseFor         []ResponseFor
	Attachments         []Attachment
	Status              *Status // set for FormatEdXMLStatus

	// PayloadType is the hub envelope's payload content type (FormatHub only).
	PayloadType string
	// Warnings lists tolerated irregularities (non-canonical organ codes,
	// disagreeing content types, placeholder signatures …), for the report.
	Warnings []string

	// spans locates each attachment's base64 text in Raw (set by Parse when
	// every one is plain text), so that EachAttachmentOf need not read the
	// document again.
	spans []attSpan
	// bodySpans, set by ParseReader, locates each attachment's base64 text
	// in the body it read; a span whose start is -1 is not plain text
	// (OpenAttachment).
	bodySpans []attSpan
	// decoded is, beside spans (same length, same order), what Parse
	// decoded from each span: ParseSigned reuses it for a signed element
	// whose attachment text is the same, and EachAttachmentOf hands out the
	// kept content instead of decoding it again.
	decoded *decodedAtts
	// parsed is the slice Parse read the document from (Raw as Parse got
	// it; ParsedFrom).
	parsed []byte
	// tokens, set by ParseRecorded, are the tokens Parse read from Raw, for
	// the verification step (TakeTokens).
	tokens *xmlscan.Tape
}

// ParsedFrom reports whether d is what Parse (or ParseRecorded) returned
// for exactly raw: the same bytes in memory, not a copy of them or other
// bytes put in Raw since.
func (d *Document) ParsedFrom(raw []byte) bool {
	return d.parsed != nil && len(d.parsed) == len(raw) && unsafe.SliceData(d.parsed) == unsafe.SliceData(raw)
}

// TakeTokens returns the tokens ParseRecorded read d.Raw as and forgets
// them: the caller owns the tape and may Release it. Nil when d was not
// read by ParseRecorded or its tokens were taken already.
func (d *Document) TakeTokens() *xmlscan.Tape {
	t := d.tokens
	d.tokens = nil
	return t
}

// decodedAtts is what Parse decoded from the attachments' spans.
type decodedAtts struct {
	raw  []byte       // Raw as Parse read it (kept content is used only while Raw is this slice)
	atts []attDecoded // beside spans
}

// attDecoded is what Parse computed from one attachment's base64 text.
type attDecoded struct {
	size        int64
	sum         string // hex SHA-256 of the decoded bytes
	sniffed     string
	zipWarnings []string
	// data is the decoded content when Parse kept it (kept: small
	// documents, see keepDecodedMax); nil otherwise.
	data []byte
	kept bool
}
