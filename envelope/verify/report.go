package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"lienthong/envelope/dsig"
)

// Outcomes of a document's verification. The first four are dsig's.
const (
	OutcomeValid       = dsig.OutcomeValid
	OutcomeInvalid     = dsig.OutcomeInvalid
	OutcomeAbsent      = dsig.OutcomeAbsent
	OutcomePlaceholder = dsig.OutcomePlaceholder
	OutcomeNotChecked  = "not_checked" // no trust configuration; or an attachment too large to scan (attsig.OutcomeNotChecked)
)

// Report is the verification record kept beside a document and served at
// GET /v1/documents/{id}/verification. It is a list of verdicts, one per
// signature found, plus room for the verdicts of signatures carried by the
// attachments (CMS, PAdES), which other verifiers append.
type Report struct {
	Outcome string `json:"outcome"`
	// Code and Reason say why the document was refused (Outcome invalid).
	Code       string    `json:"code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	Domain     string    `json:"domain,omitempty"`
	Policy     string    `json:"policy,omitempty"`
	VerifiedAt time.Time `json:"verified_at"`
	// Organ is the sender the document claims (From), as read from the
	// signed content when there is a signature.
	Organ       string       `json:"organ,omitempty"`
	Signatures  []Signature  `json:"signatures"`
	Attachments []Attachment `json:"attachments"`
	Warnings    []string     `json:"warnings,omitempty"`
}

// Signature is the verdict on one signature.
type Signature struct {
	// Kind: "xmldsig" (the envelope's enveloped signature); attachment
	// verifiers use "cms" and "pades" in Attachment.Signatures.
	Kind string `json:"kind"`
	// Role says whose signature an XML-DSig one is: "envelope" (the
	// sender's, over the whole document) or "payload" (the own signature of
	// an Akoma Ntoso payload, its author's: reported, not bound to an organ).
	Role     string `json:"role,omitempty"`
	Location string `json:"location,omitempty"`
	Verdict  string `json:"verdict"` // valid, invalid, placeholder
	Code     string `json:"code,omitempty"`
	Reason   string `json:"reason,omitempty"`

	Signer *Cert  `json:"signer,omitempty"`
	Chain  []Cert `json:"chain,omitempty"` // leaf first, anchor last
	// Organ is the organ the signer certificate is bound to, and Binding how
	// ("cert_fingerprint" or "subject_serial_number"); empty when unbound.
	Organ   string `json:"organ,omitempty"`
	Binding string `json:"binding,omitempty"`

	Algorithms Algorithms `json:"algorithms"`
	// Revocation is the evidence the revocation check used (CRL, OCSP), kept
	// so that the verdict can be re-checked after the certificate expires.
	Revocation Revocation `json:"revocation"`
}

// Algorithms are the algorithms a signature used.
type Algorithms struct {
	Signature     string  `json:"signature,omitempty"`
	Digest        string  `json:"digest,omitempty"`
	C14N          string  `json:"c14n,omitempty"`
	Reference     *string `json:"reference,omitempty"`
	DigestValue   string  `json:"digest_value,omitempty"`
	SignedContent string  `json:"signed_content,omitempty"` // what the reference covers: "whole_document"
}

// Revocation records how revocation was checked for a chain.
type Revocation struct {
	// Status: "not_checked" (no checker configured for the domain), "good",
	// "revoked" or "unknown".
	Status   string     `json:"status"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Mode is the domain's failure mode (hard, soft); SoftFail says an
	// unknown status was accepted; CheckedAt is the hub's clock.
	Mode      string    `json:"mode,omitempty"`
	SoftFail  bool      `json:"soft_fail,omitempty"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// Evidence is one CRL or OCSP response used for a verdict (DER kept as is).
// SHA256 is the digest of DER as the revocation checker computed it
// (trust.Evidence.SHA256), part of the record; a store refers to the bytes by
// DERRef, which Report.Stored computes itself.
type Evidence struct {
	Kind       string    `json:"kind"` // "crl" or "ocsp"
	Source     string    `json:"source,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	DER        []byte    `json:"der,omitempty"`
	// DERRef stands for DER in a stored report (Report.Stored): the hex
	// SHA-256 of the bytes, kept once by the store. Never set in a report
	// served or re-checked.
	DERRef string `json:"der_ref,omitempty"`
	// What the lookup was about and what it said (see trust.Evidence).
	Subject          string     `json:"subject,omitempty"`
	Serial           string     `json:"serial,omitempty"`
	Status           string     `json:"status,omitempty"` // good, revoked, unknown
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason int        `json:"revocation_reason,omitempty"`
	ProducedAt       time.Time  `json:"produced_at,omitzero"`
	FetchedAt        time.Time  `json:"fetched_at,omitzero"`
	SHA256           string     `json:"sha256,omitempty"`
	Error            string     `json:"error,omitempty"`
}

// Attachment is the verdict on the signatures of one attachment.
type Attachment struct {
	ContentID  string      `json:"content_id"`
	Name       string      `json:"name,omitempty"`
	Verdict    string      `json:"verdict"` // valid, invalid, absent
	Code       string      `json:"code,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Signatures []Signature `json:"signatures,omitempty"`
}

// Cert describes a certificate of a chain; DER is the certificate itself.
type Cert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // hexadecimal
	SHA256    string    `json:"sha256"` // fingerprint of DER, hexadecimal
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DER       []byte    `json:"der,omitempty"` // always set, but in a stored report
	// DERRef stands for DER in a stored report (Report.Stored), as Evidence.DERRef.
	DERRef string `json:"der_ref,omitempty"`
}

// CertOf describes c.
func CertOf(c *x509.Certificate) Cert {
	certDescs.RLock()
	d, ok := certDescs.m[c]
	certDescs.RUnlock()
	if ok {
		return d
	}
	s := sha256.Sum256(c.Raw)
	d = Cert{Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: fmt.Sprintf("%x", c.SerialNumber),
		SHA256: hex.EncodeToString(s[:]), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DER: c.Raw}
	certDescs.Lock()
	if certDescs.m == nil || len(certDescs.m) >= maxCertDescs {
		certDescs.m = make(map[*x509.Certificate]Cert)
	}
	certDescs.m[c] = d
	certDescs.Unlock()
	return d
}

// maxCertDescs bounds certDescs; when it is full it starts again empty.
const maxCertDescs = 1024

// certDescs caches CertOf by certificate: the verifier hands out the same
// parsed certificates for the same signers and chains (dsig's and trust's
// caches), and describing one (distinguished names, fingerprint) costs more
// than the rest of the report. A parsed certificate is never modified.
var certDescs struct {
	sync.RWMutex
	m map[*x509.Certificate]Cert
}

// Fingerprint is the hex SHA-256 of c's DER, the form the directory's
// cert_fingerprints use.
func Fingerprint(c *x509.Certificate) string {
	return CertOf(c).SHA256
}

// fromDsig turns dsig's report into a document report with one signature
// entry (when a signature was looked at).
func fromDsig(r *dsig.Report, loc dsig.Location) *Report {
	out := fromDsigEnvelope(r, loc)
	if e := r.Embedded; e != nil {
		s := sigEntry(e, e.Location)
		s.Role = "payload"
		if e.Outcome == OutcomeValid {
			s.Algorithms.SignedContent = "embedded_document"
		}
		out.Signatures = append(out.Signatures, s)
	}
	return out
}

// fromDsigEnvelope is fromDsig without the embedded document's signature.
func fromDsigEnvelope(r *dsig.Report, loc dsig.Location) *Report {
	out := &Report{Outcome: r.Outcome, Code: r.Code, Reason: r.Reason, Domain: r.Domain, Policy: r.Policy,
		VerifiedAt: r.VerifiedAt.UTC(), Signatures: []Signature{}, Attachments: []Attachment{}, Warnings: r.Warnings}
	switch {
	case r.Outcome == OutcomeAbsent:
		return out
	case r.Outcome == OutcomePlaceholder:
		out.Signatures = append(out.Signatures, Signature{Kind: "xmldsig", Location: loc.String(), Verdict: OutcomePlaceholder,
			Reason: "Signature element outside the XML-DSig namespace; not verifiable", Revocation: Revocation{Status: "not_checked"}})
		return out
	case r.Outcome == OutcomeInvalid && r.Algorithm == "" && r.Signer == nil && !isSignatureCode(r.Code):
		return out // the document itself was refused before any signature work
	}
	if !(r.EmbeddedRefused && r.Algorithm == "" && r.Signer == nil) { // else: no envelope signature
		s := sigEntry(r, loc.String())
		if r.EmbeddedRefused { // the envelope signature verified; the payload's refused the document
			s.Verdict, s.Code, s.Reason = OutcomeValid, "", ""
			s.Algorithms.SignedContent = "whole_document"
		}
		if r.Embedded != nil {
			s.Role = "envelope"
		}
		out.Signatures = append(out.Signatures, s)
	}
	return out
}

// sigEntry is the report entry of the signature r describes.
func sigEntry(r *dsig.Report, loc string) Signature {
	s := Signature{Kind: "xmldsig", Location: loc, Verdict: r.Outcome, Code: r.Code, Reason: r.Reason,
		Algorithms: Algorithms{Signature: r.Algorithm, Digest: r.Digest, C14N: r.C14N, DigestValue: r.DigestValue},
		Revocation: Revocation{Status: "not_checked"}}
	if r.Algorithm != "" {
		ref := r.Reference
		s.Algorithms.Reference = &ref
	}
	if r.Outcome == OutcomeValid {
		s.Algorithms.SignedContent = "whole_document"
	}
	if r.Signer != nil {
		c := CertOf(r.Signer)
		s.Signer = &c
	}
	for _, c := range r.Chain {
		s.Chain = append(s.Chain, CertOf(c))
	}
	return s
}

// isSignatureCode reports whether code is about a signature that is present
// (rather than about the document as XML, or a missing signature).
func isSignatureCode(code string) bool {
	switch code {
	case "", dsig.CodeNotXML, dsig.CodeBadEncoding, dsig.CodeDoctype, dsig.CodeDuplicateAttr, dsig.CodeTooDeep,
		dsig.CodeMissing, dsig.CodePlaceholder:
		return false
	}
	return true
}
