package envelope

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable rejection code. API clients branch on it;
// never change the text of an existing code.
type Code string

// Rejection codes of the envelope stage.
const (
	CodeNotXML          Code = "not_xml"          // not well-formed XML, or stray bytes before it
	CodeBadEncoding     Code = "bad_encoding"     // declared encoding other than UTF-8, or invalid UTF-8
	CodeUnknownEnvelope Code = "unknown_envelope" // well-formed XML, but not edXML nor the hub envelope
	CodeMissingFrom     Code = "missing_from"     // no sender organ
	CodeMissingTo       Code = "missing_to"       // no recipient (document packages)
	CodeMissingDocID    Code = "missing_document_id"
	CodeBadOrganCode    Code = "bad_organ_code"      // an organ code that is not an organ code at all
	CodeTooLarge        Code = "too_large"           // over the size limit
	CodeTooDeep         Code = "too_deep"            // nesting deeper than the limit
	CodeDuplicateAttr   Code = "duplicate_attribute" // an attribute repeated on one element (parsers disagree on which wins)
	CodeBadBase64       Code = "bad_base64"          // attachment content is not valid base64
	CodeManifest        Code = "manifest_mismatch"   // manifest Reference without Attachment, or the reverse
	CodeBadStatus       Code = "bad_status"          // status package with an unknown code or no ResponseFor
	CodeBadBusiness     Code = "bad_business_type"   // BussinessDocType outside 0–3, or its required parts missing
)

// Error is a typed rejection: the rule that was broken and a human message.
type Error struct {
	Code Code
	Msg  string
	Err  error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("envelope: %s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("envelope: %s: %s", e.Code, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: X}) match any *Error with code X.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code && t.Msg == ""
	}
	return false
}

func newErr(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the rejection code of err, or "" when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
