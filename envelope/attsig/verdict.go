package attsig

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"lienthong/envelope/trust"
)

// Kinds of attachment signature.
const (
	KindCMSDetached = "cms-detached"
	KindPAdES       = "pades"
)

// Outcomes of a verdict.
const (
	OutcomeValid    = "valid"
	OutcomeInvalid  = "invalid"
	OutcomeUnsigned = "unsigned" // the attachment carries no signature at all
	// OutcomeNotChecked: the attachment is over the size the hub scans for
	// signatures (Limits.MaxPDFBytes); its signatures were not looked at.
	// The document is not refused for it: its own signature covers the bytes.
	OutcomeNotChecked = "not_checked"
)

// Stable codes of invalid verdicts. Where a code means the same as one of
// envelope/dsig (unknown_signer, certificate_expired, …) it has the same
// text, so that a report reads the same for envelope and attachments.
// Never change the text of an existing code.
const (
	CodeTooLarge        = "too_large"                     // the signature or the PDF is over the size limit
	CodeMalformed       = "cms_malformed"                 // not a parsable CMS SignedData, or missing required attributes
	CodeNotDetached     = "cms_not_detached"              // the CMS embeds content; a detached signature is required
	CodeSignerCount     = "cms_signer_count"              // not exactly one SignerInfo
	CodeNoCertificate   = "no_certificate"                // the signer's certificate is not in the CMS
	CodeSHA1            = "weak_algorithm_sha1"           // SHA-1 digest or signature algorithm
	CodeAlgorithm       = "algorithm_not_allowed"         // any other digest or signature algorithm outside the allow-list
	CodeContentMismatch = "content_mismatch"              // messageDigest ≠ digest of the content: the attachment (or a signed PDF range) was altered
	CodeInvalid         = "signature_invalid"             // the signature value does not verify with the signer's key
	CodeSigningTime     = "signing_time_outside_validity" // the claimed signingTime lies outside the signer's validity
	CodeSigningCert     = "signing_certificate_mismatch"  // the ESS signingCertificate(V2) attribute names another certificate
	CodeUnknownSigner   = "unknown_signer"                // chain does not reach an anchor of the trust domain
	CodeExpired         = "certificate_expired"
	CodeNotYetValid     = "certificate_not_yet_valid"
	CodeKeyUsage        = "bad_key_usage"
	CodeWeakKey         = "weak_key"
	CodeRevoked         = "certificate_revoked"
	CodeRevocationUnkn  = "revocation_unknown" // hard-fail domain and the revocation status could not be established
	CodeOrphan          = "detached_signature_orphan"
	CodePDFMalformed    = "pdf_signature_malformed"     // /ByteRange or /Contents not understood, or the hole is not the Contents string
	CodePDFByteRange    = "pdf_byterange_incomplete"    // the ByteRange does not cover the whole file except the Contents hole
	CodePDFSubFilter    = "pdf_subfilter_not_supported" // adbe.pkcs7.sha1, adbe.x509.rsa_sha1, ETSI.RFC3161 …
	CodePDFTooMany      = "pdf_too_many_signatures"
)

// Verdict is the result for one signature of one attachment (or for an
// unsigned attachment).
type Verdict struct {
	ContentID string
	Name      string
	// SignatureContentID names the ".p7s" attachment (cms-detached).
	SignatureContentID string
	Kind               string // cms-detached | pades | "" when unsigned
	// Index numbers the signature dictionaries of a PDF from 1 in file order.
	Index int

	Outcome string
	Code    string
	Reason  string

	Domain     string
	VerifiedAt time.Time // the hub's clock, used for every validity check

	// PAdES only.
	SubFilter string
	ByteRange []int64

	DigestAlgorithm    string // OID
	SignatureAlgorithm string // OID
	// ClaimedSigningTime is the signer's signingTime attribute, if any. It is
	// reported, never used to decide validity.
	ClaimedSigningTime *time.Time

	Signer     *x509.Certificate
	Chain      []*x509.Certificate // leaf first, anchor last
	Revocation *trust.RevocationResult
}

// Valid reports whether the verdict is valid.
func (v *Verdict) Valid() bool { return v.Outcome == OutcomeValid }

type verdictJSON struct {
	ContentID          string                  `json:"content_id"`
	Name               string                  `json:"name,omitempty"`
	SignatureContentID string                  `json:"signature_content_id,omitempty"`
	Kind               string                  `json:"kind,omitempty"`
	Index              int                     `json:"index,omitempty"`
	Outcome            string                  `json:"outcome"`
	Code               string                  `json:"code,omitempty"`
	Reason             string                  `json:"reason,omitempty"`
	Domain             string                  `json:"domain,omitempty"`
	VerifiedAt         time.Time               `json:"verified_at"`
	SubFilter          string                  `json:"sub_filter,omitempty"`
	ByteRange          []int64                 `json:"byte_range,omitempty"`
	DigestAlgorithm    string                  `json:"digest_algorithm,omitempty"`
	SignatureAlgorithm string                  `json:"signature_algorithm,omitempty"`
	ClaimedSigningTime *time.Time              `json:"claimed_signing_time,omitempty"`
	SignerSubject      string                  `json:"signer_subject,omitempty"`
	SignerIssuer       string                  `json:"signer_issuer,omitempty"`
	SignerSerial       string                  `json:"signer_serial,omitempty"`
	Signer             []byte                  `json:"signer,omitempty"` // DER
	Chain              [][]byte                `json:"chain,omitempty"`  // DER, leaf first
	Revocation         *trust.RevocationResult `json:"revocation,omitempty"`
}

// MarshalJSON writes certificates as base64 DER plus the signer's subject,
// issuer and serial as strings.
func (v Verdict) MarshalJSON() ([]byte, error) {
	w := verdictJSON{ContentID: v.ContentID, Name: v.Name, SignatureContentID: v.SignatureContentID, Kind: v.Kind,
		Index: v.Index, Outcome: v.Outcome, Code: v.Code, Reason: v.Reason, Domain: v.Domain, VerifiedAt: v.VerifiedAt,
		SubFilter: v.SubFilter, ByteRange: v.ByteRange, DigestAlgorithm: v.DigestAlgorithm,
		SignatureAlgorithm: v.SignatureAlgorithm, ClaimedSigningTime: v.ClaimedSigningTime, Revocation: v.Revocation}
	if v.Signer != nil {
		w.SignerSubject, w.SignerIssuer = v.Signer.Subject.String(), v.Signer.Issuer.String()
		w.SignerSerial, w.Signer = fmt.Sprintf("%x", v.Signer.SerialNumber), v.Signer.Raw
	}
	for _, c := range v.Chain {
		w.Chain = append(w.Chain, c.Raw)
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (v *Verdict) UnmarshalJSON(b []byte) error {
	var w verdictJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*v = Verdict{ContentID: w.ContentID, Name: w.Name, SignatureContentID: w.SignatureContentID, Kind: w.Kind,
		Index: w.Index, Outcome: w.Outcome, Code: w.Code, Reason: w.Reason, Domain: w.Domain, VerifiedAt: w.VerifiedAt,
		SubFilter: w.SubFilter, ByteRange: w.ByteRange, DigestAlgorithm: w.DigestAlgorithm,
		SignatureAlgorithm: w.SignatureAlgorithm, ClaimedSigningTime: w.ClaimedSigningTime, Revocation: w.Revocation}
	if len(w.Signer) > 0 {
		c, err := x509.ParseCertificate(w.Signer)
		if err != nil {
			return fmt.Errorf("attsig: verdict signer: %w", err)
		}
		v.Signer = c
	}
	for _, der := range w.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("attsig: verdict chain: %w", err)
		}
		v.Chain = append(v.Chain, c)
	}
	return nil
}

// Error is a typed rejection of one signature.
type Error struct {
	Code   string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("attsig: %s: %s: %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("attsig: %s: %s", e.Code, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

func aerr(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...), Err: cause}
}

// chainCode maps the errors of trust.Domain.VerifyChain to codes.
func chainCode(err error) string {
	switch {
	case errors.Is(err, trust.ErrExpired):
		return CodeExpired
	case errors.Is(err, trust.ErrNotYetValid):
		return CodeNotYetValid
	case errors.Is(err, trust.ErrKeyUsage):
		return CodeKeyUsage
	case errors.Is(err, trust.ErrWeakKey):
		return CodeWeakKey
	}
	return CodeUnknownSigner
}
