package dsig

import (
	"errors"
	"fmt"
)

// Stable rejection codes. API clients and the security log branch on them;
// never change the text of an existing code.
const (
	// The document itself (checked before any signature work).
	CodeNotXML           = "not_xml"             // not well-formed XML
	CodeBadEncoding      = "bad_encoding"        // invalid UTF-8 or a declared encoding other than UTF-8
	CodeDoctype          = "doctype_not_allowed" // a DOCTYPE declaration
	CodeDuplicateAttr    = "duplicate_attribute" // an attribute repeated on one element
	CodeTooDeep          = "too_deep"            // nesting deeper than the limit
	CodeCommentInjection = "comment_injection"   // a comment splits a text node (SAML-2018 class)

	// Presence and placement.
	CodeMissing     = "signature_missing"     // no signature, policy require
	CodePlaceholder = "signature_placeholder" // only a non-XML-DSig (VNPT placeholder) Signature, policy require
	CodeMultiple    = "multiple_signatures"   // more than one ds:Signature anywhere
	CodeMisplaced   = "signature_misplaced"   // the ds:Signature is not where the document type puts it

	// SignedInfo and references.
	CodeMalformed     = "malformed_signature"          // wrong shape: SignedInfo, SignatureValue, KeyInfo, Object, base64
	CodeNotWholeDoc   = "reference_not_whole_document" // Reference is not URI="" nor #<root id>, or more than one
	CodeDuplicateID   = "duplicate_id"                 // the referenced id is carried by more than one element
	CodeSHA1          = "weak_algorithm_sha1"
	CodeMD5           = "weak_algorithm_md5"
	CodeHMAC          = "hmac_not_allowed"
	CodeAlgorithm     = "algorithm_not_allowed" // any other algorithm or transform outside the allow-list
	CodeNoCertificate = "no_certificate"        // no X509Certificate in KeyInfo/X509Data

	// The signer's certificate.
	CodeUnknownSigner = "unknown_signer" // chain does not reach an anchor of the trust domain
	CodeExpired       = "certificate_expired"
	CodeNotYetValid   = "certificate_not_yet_valid"
	CodeKeyUsage      = "bad_key_usage" // no digitalSignature/nonRepudiation, or an EKU not accepted
	CodeWeakKey       = "weak_key"      // RSA < 2048 bits, or a curve other than P-256/384/521
	CodeRevoked       = "certificate_revoked"
	// CodeRevocationUnknown: the domain is hard-fail and no CRL or OCSP
	// response established the signer's status.
	CodeRevocationUnknown = "revocation_unknown"

	// Cryptography.
	CodeInvalid        = "signature_invalid" // the signature value does not verify with the signer's key (e.g. a swapped certificate)
	CodeDigestMismatch = "digest_mismatch"   // a Reference digest does not match: the signed content was altered
)

// Sentinels to branch on with errors.Is.
var (
	// ErrSignatureInvalid matches every *VerifyError about a signature that
	// is present but not acceptable: all codes except signature_missing,
	// signature_placeholder and the document codes (not_xml, bad_encoding,
	// doctype_not_allowed, duplicate_attribute, too_deep).
	ErrSignatureInvalid = errors.New("signature invalid")
	// ErrSignatureMissing matches signature_missing and signature_placeholder.
	ErrSignatureMissing = errors.New("signature missing")
	// ErrUnknownDomain: the requested trust domain is not configured (a hub
	// configuration error, not the sender's fault).
	ErrUnknownDomain = errors.New("unknown trust domain")
)

// VerifyError is a typed rejection: a stable Code, a human Reason and the
// underlying cause, if any.
type VerifyError struct {
	Code   string
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dsig: %s: %s: %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("dsig: %s: %s", e.Code, e.Reason)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Is matches ErrSignatureInvalid or ErrSignatureMissing by code, and another
// *VerifyError with the same Code and an empty Reason.
func (e *VerifyError) Is(target error) bool {
	switch target {
	case ErrSignatureMissing:
		return e.Code == CodeMissing || e.Code == CodePlaceholder
	case ErrSignatureInvalid:
		switch e.Code {
		case CodeMissing, CodePlaceholder, CodeNotXML, CodeBadEncoding, CodeDoctype, CodeDuplicateAttr, CodeTooDeep:
			return false
		}
		return true
	}
	var t *VerifyError
	if errors.As(target, &t) {
		return t.Code == e.Code && t.Reason == ""
	}
	return false
}

// CodeOf returns the code of err, or "" when err is not a *VerifyError.
func CodeOf(err error) string {
	var e *VerifyError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func verr(code string, cause error, format string, args ...any) *VerifyError {
	return &VerifyError{Code: code, Reason: fmt.Sprintf(format, args...), Err: cause}
}
