// Package verify is the verification step of the accept path
// (envelope.Open → envelope.Verify → ledger accept): it chooses the trust
// domain of a submission by the channel it came through, runs the XML-DSig
// verifier (envelope/dsig) under that domain's policy, binds the signer's
// certificate to the organ the document claims to come from, checks that the
// metadata the hub uses is the metadata the signature covers, and returns the
// Report kept beside the document. It does no I/O of its own; the directory
// is reached through the Directory interface.
package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/beevik/etree"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/xmlscan"
)

// Rejection codes of this step, beside dsig's.
const (
	// CodeSignerMismatch: the signer certificate is bound to another organ
	// than the document's sender (or not to the sender under its bindings).
	CodeSignerMismatch = "signer_organ_mismatch"
	// CodeSignerNotBound: the directory binds no certificate to the sender and
	// the certificate carries no organ code; policy require.
	CodeSignerNotBound = "signer_not_bound"
	// CodeSignedMetadata: the metadata read from the received tree differs
	// from the metadata in the signed content (signature wrapping, parser
	// differential).
	CodeSignedMetadata = "signed_metadata_mismatch"
	// CodeUntrustedChannel: no trust domain is configured for the channel.
	CodeUntrustedChannel = "untrusted_channel"
)

// Channel names of the edges, as intake.Submission.Channel carries them.
const (
	ChannelAPI     = "api"
	ChannelAxis    = "axis"
	ChannelPartner = "partner"
)

// Default trust domain names.
const (
	DomainAgency  = "agency"
	DomainAxis    = "axis"
	DomainPartner = "partner"
)

// DefaultDomains maps each edge to its trust domain: NA agencies submit
// through the API, the national axis through its poller, partner
// parliaments through their adapter.
var DefaultDomains = map[string]string{ChannelAPI: DomainAgency, ChannelAxis: DomainAxis, ChannelPartner: DomainPartner}

// Binding is what the directory says about an organ's signing certificates.
type Binding struct {
	Code string
	// OldCodes are earlier codes of the organ (a certificate carrying one is
	// still the organ's).
	OldCodes []string
	// CertFingerprints are the hex SHA-256 fingerprints of the signing
	// certificates bound to the organ. When non-empty, the signer must be one
	// of them.
	CertFingerprints []string
	// Delivery is the organ's channel in the directory ("partner" selects
	// the partner domain whatever the edge).
	Delivery string
}

// Directory looks up an organ's binding by code (or old code).
type Directory interface {
	Binding(ctx context.Context, organ string) (Binding, error)
}

// DirectoryFunc adapts a function to Directory.
type DirectoryFunc func(ctx context.Context, organ string) (Binding, error)

// Binding calls f.
func (f DirectoryFunc) Binding(ctx context.Context, organ string) (Binding, error) {
	return f(ctx, organ)
}

// Config wires a Verifier.
type Config struct {
	Trust *trust.Store
	// Domains maps a channel to a trust domain name; nil means DefaultDomains.
	Domains map[string]string
	// Directory gives the signer-to-organ bindings. Nil: signatures are
	// checked, bindings are not (offline use without a directory file).
	Directory Directory
	// Now is the hub's clock; nil means time.Now.
	Now func() time.Time
	// Limits are applied when re-reading the signed content.
	Limits envelope.Limits
	// Attachments, when set, verifies the signatures carried by the
	// attachments (detached CMS, PAdES) of a document whose envelope passed.
	Attachments AttachmentVerifier
	// TreeVerify verifies a document in memory on a tree of the whole
	// document (dsig.Verify, the signed metadata read from the verified
	// element) instead of over its bytes (dsig.VerifyBytes, the default):
	// the reference path of the differential tests, and a fallback.
	TreeVerify bool
}

// AttachmentVerifier checks the signatures of a document's attachments
// under trust domain d at the hub's time at, one verdict per attachment. A
// verdict "invalid" refuses the document with the verdict's code.
type AttachmentVerifier interface {
	VerifyAttachments(ctx context.Context, doc *envelope.Document, d *trust.Domain, at time.Time) ([]Attachment, error)
}

// StreamAttachmentVerifier is an AttachmentVerifier that also checks the
// attachments of a body above the blob threshold, which is not in memory:
// doc was read from it by envelope.ParseReader (with limits lim), open reads
// its size bytes anew. The verdicts must be those VerifyAttachments gives
// for the same bytes in memory.
type StreamAttachmentVerifier interface {
	VerifyStreamAttachments(ctx context.Context, doc *envelope.Document, open Opener, size int64, lim envelope.Limits,
		d *trust.Domain, at time.Time) ([]Attachment, error)
}

// EvidenceSource is implemented by a trust.RevocationChecker that can say
// which CRL or OCSP responses it used for a chain; the evidence is kept in
// the report so that the verdict can be re-checked later.
type EvidenceSource interface {
	RevocationEvidence(ctx context.Context, chain []*x509.Certificate, at time.Time) ([]Evidence, error)
}

// Verifier implements the accept path's verification step. It is safe for
// concurrent use.
type Verifier struct {
	cfg Config
	ds  *dsig.Verifier
}

// New returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Trust == nil {
		return nil, errors.New("verify: no trust store")
	}
	if cfg.Domains == nil {
		cfg.Domains = DefaultDomains
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, ds: &dsig.Verifier{Trust: cfg.Trust, Now: cfg.Now}}, nil
}

// Domain returns the trust domain name for a submission through channel by
// an organ whose directory entry is b.
func (v *Verifier) Domain(channel string, b Binding) string {
	if b.Delivery == ChannelPartner {
		if d, ok := v.cfg.Domains[ChannelPartner]; ok {
			return d
		}
	}
	return v.cfg.Domains[channel]
}

// Verify checks doc as submitted through channel and returns its report.
//
// A refusal is a *dsig.VerifyError (its Code is the stable rejection code)
// together with the report saying why; infrastructure failures (directory
// or revocation checker unavailable) are plain errors.
func (v *Verifier) Verify(ctx context.Context, doc *envelope.Document, channel string) (*Report, error) {
	tape := doc.TakeTokens() // released whatever the outcome
	defer tape.Release()
	var b Binding
	if v.cfg.Directory != nil {
		var err error
		if b, err = v.cfg.Directory.Binding(ctx, doc.From.Code); err != nil {
			return nil, fmt.Errorf("verify: directory: %w", err)
		}
	}
	domain := v.Domain(channel, b)
	rep, err := v.verifyTokens(ctx, doc, tape, domain, b, v.cfg.Directory != nil)
	if rep != nil {
		rep.Channel = channel
	}
	return rep, err
}

// VerifyIn is Verify with the trust domain chosen by the caller (hubctl
// verify). checkBinding says whether b is authoritative (a directory was
// given). doc must be what envelope.Parse returned for doc.Raw: the
// signature is checked over doc.Raw, and doc's metadata is taken as what it
// covers. A doc read by envelope.ParseRecorded is verified over the tokens
// that read took (dsig.Verifier.VerifyTokens; VerifyIn takes and releases
// them), so Raw is tokenized once.
func (v *Verifier) VerifyIn(ctx context.Context, doc *envelope.Document, domain string, b Binding, checkBinding bool) (*Report, error) {
	tape := doc.TakeTokens()
	defer tape.Release()
	return v.verifyTokens(ctx, doc, tape, domain, b, checkBinding)
}

// verifyTokens is VerifyIn with doc's tokens (nil: none) taken by the caller.
func (v *Verifier) verifyTokens(ctx context.Context, doc *envelope.Document, tape *xmlscan.Tape, domain string, b Binding, checkBinding bool) (*Report, error) {
	return v.verifyIn(ctx, doc, domain, b, checkBinding, nil, func(opts dsig.Options) (*dsig.Report, signedContent, error) {
		var (
			dr  *dsig.Report
			el  *etree.Element
			err error
		)
		if v.cfg.TreeVerify {
			dr, el, err = v.ds.Verify(ctx, doc.Raw, domain, opts)
		} else {
			dr, el, err = v.ds.VerifyTokens(ctx, doc.Raw, tape, domain, opts)
		}
		switch {
		case el != nil: // verified on a tree (an embedded signed document)
			return dr, func() (*envelope.Document, error) { return signedDocument(el, v.cfg.Limits, doc) }, err
		case err == nil && dr != nil && dr.Outcome == dsig.OutcomeValid:
			// Verified over doc.Raw itself: the signed content is doc.Raw
			// without its ds:Signature element, read by the same tokenizer
			// (envelope/xmlscan) as envelope.Parse read doc from it — with
			// ParseRecorded, the very tokens Parse read; the parser reads
			// no metadata inside a Signature element. As on the streaming
			// path (the metadata of the digested pass), the signed
			// metadata is then doc's own, provided doc was read from
			// exactly doc.Raw; otherwise (Raw replaced after Parse) it is
			// read from doc.Raw again and must be the same.
			if doc.ParsedFrom(doc.Raw) {
				return dr, func() (*envelope.Document, error) { return doc, nil }, nil
			}
			return dr, func() (*envelope.Document, error) { return envelope.Parse(doc.Raw, v.cfg.Limits) }, nil
		}
		return dr, nil, err
	})
}

// signedContent reads the content a valid signature covers as an envelope.
type signedContent func() (*envelope.Document, error)

// streamBody is a body above the blob threshold (VerifyStream): open reads
// its size bytes anew.
type streamBody struct {
	open Opener
	size int64
}

// verifyIn is VerifyIn with the signature check supplied: over the bytes in
// memory (VerifyIn; body nil) or streamed from a spool (VerifyStream,
// stream.go; body is the spool). check returns a nil signedContent when no
// signature was verified.
func (v *Verifier) verifyIn(ctx context.Context, doc *envelope.Document, domain string, b Binding, checkBinding bool,
	body *streamBody, check func(dsig.Options) (*dsig.Report, signedContent, error)) (*Report, error) {
	now := v.cfg.Now()
	if _, ok := v.cfg.Trust.Domain(domain); !ok || domain == "" {
		rep := &Report{Outcome: OutcomeInvalid, Code: CodeUntrustedChannel, Domain: domain, VerifiedAt: now.UTC(),
			Signatures: []Signature{}, Attachments: []Attachment{},
			Reason: fmt.Sprintf("no trust domain %q is configured", domain)}
		return rep, &dsig.VerifyError{Code: CodeUntrustedChannel, Reason: rep.Reason}
	}
	loc := Location(doc.Format)
	dr, el, err := check(dsig.Options{Location: loc, Embedded: Embedded(doc.Format)})
	if dr == nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := fromDsig(dr, loc)
	rep.Organ = doc.From.Code
	d, _ := v.cfg.Trust.Domain(domain)
	if err != nil {
		var ve *dsig.VerifyError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("verify: %w", err)
		}
		for i := range rep.Signatures {
			if rep.Signatures[i].Code == dsig.CodeRevoked {
				rep.Signatures[i].Revocation.Status = "revoked"
			}
		}
		return rep, err
	}
	// Revocation evidence of every verified signature (the envelope's and an
	// embedded document's own).
	chains := map[int][]*x509.Certificate{}
	if el != nil {
		chains[0] = dr.Chain
	}
	if dr.Embedded != nil && dr.Embedded.Outcome == OutcomeValid {
		chains[len(rep.Signatures)-1] = dr.Embedded.Chain
	}
	for i, chain := range chains {
		if err := v.revocationEvidence(ctx, d, &rep.Signatures[i], chain, now); err != nil {
			return nil, err
		}
	}
	if el == nil { // absent or placeholder, policy record
		return v.attachments(ctx, rep, doc, body, d, now)
	}
	sig := &rep.Signatures[0]
	refuse := func(code, format string, args ...any) (*Report, error) {
		ve := &dsig.VerifyError{Code: code, Reason: fmt.Sprintf(format, args...)}
		rep.Outcome, rep.Code, rep.Reason = OutcomeInvalid, ve.Code, ve.Reason
		sig.Verdict, sig.Code, sig.Reason = OutcomeInvalid, ve.Code, ve.Reason
		return rep, ve
	}

	// Read only what the signature covers: the metadata the hub uses (from
	// the received bytes) must be the metadata of the verified element.
	signed, err := el()
	if err != nil {
		return refuse(CodeSignedMetadata, "the signed content does not read as the same envelope: %v", err)
	}
	if diff := metadataDiff(doc, signed); diff != "" {
		return refuse(CodeSignedMetadata, "%s differs between the received document and its signed content", diff)
	}

	// Signer-to-organ binding.
	leaf := dr.Signer
	fp := Fingerprint(leaf)
	subjectOrgan := leaf.Subject.SerialNumber
	codes := append([]string{doc.From.Code, b.Code}, b.OldCodes...)
	switch {
	case !checkBinding:
		rep.Warnings = append(rep.Warnings, "no directory: signer-to-organ binding not checked")
		if subjectOrgan != "" {
			sig.Organ, sig.Binding = subjectOrgan, "subject_serial_number"
			if !slices.Contains(codes, subjectOrgan) {
				return refuse(CodeSignerMismatch, "signer certificate carries organ code %s, document is from %s", subjectOrgan, doc.From.Code)
			}
		}
	case len(b.CertFingerprints) > 0:
		if !slices.Contains(b.CertFingerprints, fp) {
			return refuse(CodeSignerMismatch, "signer certificate %s (%s) is not bound to %s", fp, leaf.Subject, doc.From.Code)
		}
		sig.Organ, sig.Binding = doc.From.Code, "cert_fingerprint"
	case subjectOrgan != "":
		if !slices.Contains(codes, subjectOrgan) {
			return refuse(CodeSignerMismatch, "signer certificate carries organ code %s, document is from %s", subjectOrgan, doc.From.Code)
		}
		sig.Organ, sig.Binding = doc.From.Code, "subject_serial_number"
	case d.Policy == trust.PolicyRequire:
		return refuse(CodeSignerNotBound, "no signing certificate is bound to %s and the signer certificate carries no organ code", doc.From.Code)
	default:
		rep.Warnings = append(rep.Warnings, "signer certificate is not bound to the sender organ (policy record)")
	}
	return v.attachments(ctx, rep, doc, body, d, now)
}

// revocationEvidence records in sig how the revocation of chain was
// checked (the check itself ran in dsig).
func (v *Verifier) revocationEvidence(ctx context.Context, d *trust.Domain, sig *Signature, chain []*x509.Certificate, now time.Time) error {
	if d.Revocation == nil {
		return nil
	}
	sig.Revocation.Status = "good"
	if es, ok := d.Revocation.(EvidenceSource); ok {
		ev, err := es.RevocationEvidence(ctx, chain, now)
		if err != nil {
			return fmt.Errorf("verify: revocation evidence: %w", err)
		}
		sig.Revocation.Evidence = ev
	} else if ec, ok := d.Revocation.(trust.EvidenceChecker); ok {
		var err error
		if sig.Revocation, err = revocationOf(ctx, ec, chain, now); err != nil {
			return err
		}
	}
	return nil
}

// attachments runs the attachment verifier, if any, and refuses the
// document when an attachment's signature is invalid.
func (v *Verifier) attachments(ctx context.Context, rep *Report, doc *envelope.Document, body *streamBody, d *trust.Domain, now time.Time) (*Report, error) {
	if v.cfg.Attachments == nil {
		return rep, nil
	}
	var (
		atts []Attachment
		err  error
	)
	switch sv, ok := v.cfg.Attachments.(StreamAttachmentVerifier); {
	case body == nil:
		atts, err = v.cfg.Attachments.VerifyAttachments(ctx, doc, d, now)
	case ok: // a streamed body (stream.go)
		atts, err = sv.VerifyStreamAttachments(ctx, doc, body.open, body.size, v.streamLimits(body.size), d, now)
	default:
		return notCheckedAttachments(rep, doc), nil
	}
	if err != nil {
		var ve *dsig.VerifyError
		if errors.As(err, &ve) {
			rep.Outcome, rep.Code, rep.Reason = OutcomeInvalid, ve.Code, ve.Reason
			return rep, err
		}
		return nil, fmt.Errorf("verify: attachments: %w", err)
	}
	rep.Attachments = append(rep.Attachments, atts...)
	for _, a := range atts {
		if a.Verdict == OutcomeInvalid {
			ve := &dsig.VerifyError{Code: a.Code, Reason: fmt.Sprintf("attachment %s: %s", a.Name, a.Reason)}
			if ve.Code == "" {
				ve.Code = dsig.CodeInvalid
			}
			rep.Outcome, rep.Code, rep.Reason = OutcomeInvalid, ve.Code, ve.Reason
			return rep, ve
		}
	}
	return rep, nil
}

// Location is where a document of format f carries its signature.
func Location(f envelope.Format) dsig.Location {
	if f == envelope.FormatHub {
		return dsig.RootChild
	}
	return dsig.EdXMLHeader
}

// Embedded is the document a document of format f may carry with its own
// signature: an Akoma Ntoso record inline in a hub envelope's Payload, signed
// by its author in akomaNtoso/*/meta/proprietary. Nil for other formats.
func Embedded(f envelope.Format) *dsig.Embedded {
	if f != envelope.FormatHub {
		return nil
	}
	return &dsig.Embedded{
		Parent:   dsig.Location{Namespace: envelope.NamespaceHub, Path: []string{"Envelope", "Payload"}},
		Location: dsig.AKNPayloadProprietary,
	}
}

// signedDocument reads the verified element (the signed content, signature
// removed) as an envelope, straight from the tree: no re-serialisation and
// no second parse of the bytes. An attachment whose text in the tree is the
// very text the received document's Parse decoded is not decoded again
// (envelope.ParseSigned); metadataDiff still compares every field.
func signedDocument(el *etree.Element, lim envelope.Limits, received *envelope.Document) (*envelope.Document, error) {
	return envelope.ParseSigned(el, lim, received)
}

// metadataDiff names the first metadata field that differs, or "".
func metadataDiff(a, b *envelope.Document) string {
	switch {
	case a.Format != b.Format:
		return "format"
	case a.From != b.From:
		return "From"
	case !slices.Equal(a.To, b.To):
		return "To"
	case a.DocumentID != b.DocumentID:
		return "DocumentId"
	case a.CodeNumber != b.CodeNumber || a.CodeNotation != b.CodeNotation:
		return "Code"
	case a.Subject != b.Subject:
		return "Subject"
	case a.PromulgationDate != b.PromulgationDate || a.DueDate != b.DueDate:
		return "PromulgationInfo"
	case a.BusinessDocType != b.BusinessDocType || a.BusinessDocumentID != b.BusinessDocumentID:
		return "Bussiness"
	case !slices.Equal(a.ResponseFor, b.ResponseFor):
		return "ResponseFor"
	case (a.Status == nil) != (b.Status == nil) || (a.Status != nil && *a.Status != *b.Status):
		return "Status"
	case !slices.Equal(a.Attachments, b.Attachments):
		return "attachments"
	case a.PayloadType != b.PayloadType:
		return "payload type"
	}
	return ""
}

// Check is Verify with the signature of the accept path's verification step
// (intake.Verifier): the report is returned as any, and is non-nil whenever
// the document was looked at.
func (v *Verifier) Check(ctx context.Context, doc *envelope.Document, channel string) (any, error) {
	rep, err := v.Verify(ctx, doc, channel)
	if rep == nil {
		return nil, err
	}
	return rep, err
}

// VerificationOutcome returns r.Outcome, the "outcome" field of r's JSON,
// so that the ledger need not read the serialised report back for it.
func (r *Report) VerificationOutcome() string {
	if r == nil {
		return ""
	}
	return r.Outcome
}

// Summary is the short form of the report kept in the document's metadata
// (the full report is stored beside it).
func (r *Report) Summary() map[string]any {
	m := map[string]any{"outcome": r.Outcome, "domain": r.Domain, "signatures": len(r.Signatures)}
	if r.Code != "" {
		m["code"] = r.Code
	}
	return m
}
