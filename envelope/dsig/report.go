package dsig

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"
)

// Outcomes of a verification.
const (
	OutcomeValid       = "valid"       // one ds:Signature, verified, chain valid
	OutcomeInvalid     = "invalid"     // a signature (or the document) was rejected; see Code
	OutcomeAbsent      = "absent"      // no signature at all
	OutcomePlaceholder = "placeholder" // only a Signature outside the XML-DSig namespace (VNPT edXML)
)

// Report is the verification record kept beside the document: what was
// checked, when, against which trust domain, and with what result.
type Report struct {
	Outcome string
	// Code and Reason repeat the *VerifyError, when there is one.
	Code   string
	Reason string

	Domain     string
	Policy     string
	VerifiedAt time.Time // the hub's clock, used for every validity check

	Algorithm   string // SignatureMethod URI
	Digest      string // DigestMethod URI
	DigestValue string // base64, as signed
	C14N        string // CanonicalizationMethod URI of SignedInfo
	Reference   string // the Reference URI ("" or "#id")

	Signer *x509.Certificate   // the validated leaf
	Chain  []*x509.Certificate // leaf first, trust anchor last

	// Location is where the signature sat, when Options.Embedded applied.
	Location string
	// Embedded is the verdict on the embedded document's own signature
	// (Options.Embedded), when it carries one; EmbeddedRefused says the
	// document was refused for that signature alone (this report's own
	// signature, if any, verified).
	Embedded        *Report
	EmbeddedRefused bool

	Warnings []string
}

// reportJSON is the wire form: certificates as base64 DER.
type reportJSON struct {
	Outcome       string    `json:"outcome"`
	Code          string    `json:"code,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Domain        string    `json:"domain"`
	Policy        string    `json:"policy,omitempty"`
	VerifiedAt    time.Time `json:"verified_at"`
	Algorithm     string    `json:"algorithm,omitempty"`
	Digest        string    `json:"digest,omitempty"`
	DigestValue   string    `json:"digest_value,omitempty"`
	C14N          string    `json:"c14n,omitempty"`
	Reference     *string   `json:"reference,omitempty"`
	SignerSubject string    `json:"signer_subject,omitempty"`
	SignerIssuer  string    `json:"signer_issuer,omitempty"`
	SignerSerial  string    `json:"signer_serial,omitempty"` // hexadecimal
	Signer        []byte    `json:"signer,omitempty"`
	Chain         [][]byte  `json:"chain,omitempty"`
	Warnings      []string  `json:"warnings,omitempty"`
	Location      string    `json:"location,omitempty"`
	Embedded      *Report   `json:"embedded,omitempty"`
	EmbRefused    bool      `json:"embedded_refused,omitempty"`
}

// MarshalJSON writes the report with certificates as base64 DER and the
// signer's subject, issuer and serial as strings.
func (r Report) MarshalJSON() ([]byte, error) {
	w := reportJSON{
		Outcome: r.Outcome, Code: r.Code, Reason: r.Reason, Domain: r.Domain, Policy: r.Policy,
		VerifiedAt: r.VerifiedAt, Algorithm: r.Algorithm, Digest: r.Digest, DigestValue: r.DigestValue,
		C14N: r.C14N, Warnings: r.Warnings, Location: r.Location, Embedded: r.Embedded, EmbRefused: r.EmbeddedRefused,
	}
	if r.Outcome == OutcomeValid || r.Algorithm != "" {
		ref := r.Reference
		w.Reference = &ref
	}
	if r.Signer != nil {
		w.SignerSubject = r.Signer.Subject.String()
		w.SignerIssuer = r.Signer.Issuer.String()
		w.SignerSerial = fmt.Sprintf("%x", r.Signer.SerialNumber)
		w.Signer = r.Signer.Raw
	}
	for _, c := range r.Chain {
		w.Chain = append(w.Chain, c.Raw)
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote, re-parsing the certificates.
func (r *Report) UnmarshalJSON(b []byte) error {
	var w reportJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Report{
		Outcome: w.Outcome, Code: w.Code, Reason: w.Reason, Domain: w.Domain, Policy: w.Policy,
		VerifiedAt: w.VerifiedAt, Algorithm: w.Algorithm, Digest: w.Digest, DigestValue: w.DigestValue,
		C14N: w.C14N, Warnings: w.Warnings, Location: w.Location, Embedded: w.Embedded, EmbeddedRefused: w.EmbRefused,
	}
	if w.Reference != nil {
		r.Reference = *w.Reference
	}
	if len(w.Signer) > 0 {
		c, err := x509.ParseCertificate(w.Signer)
		if err != nil {
			return fmt.Errorf("dsig: report signer: %w", err)
		}
		r.Signer = c
	}
	for _, der := range w.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("dsig: report chain: %w", err)
		}
		r.Chain = append(r.Chain, c)
	}
	return nil
}
