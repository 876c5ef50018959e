package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HubHeader is the routing header of a hub envelope (schemas/hub-envelope.xsd).
type HubHeader struct {
	From       Organ
	To         []Organ
	DocumentID string
	Subject    string // optional
	// ResponseFor is the DocumentId of the document this one answers
	// (optional).
	ResponseFor string
	Created     time.Time // required; written in UTC
}

// BuildHubEnvelope writes an unsigned hub envelope in its canonical shape:
// prefix "lt" for the hub namespace (so that an inline payload's unprefixed,
// no-namespace elements keep their meaning), the Header fields in schema
// order, and the Payload. With inlineXML the payload must be one XML element
// in its own namespace (an XML declaration and a BOM in front of it are
// dropped); otherwise it is written as base64 with encoding="base64".
//
// The result is checked with Parse before it is returned, so it is always an
// envelope the hub accepts. Signing is done by another step on these bytes.
func BuildHubEnvelope(h HubHeader, payloadContentType string, payload []byte, inlineXML bool) ([]byte, error) {
	if h.From.Code == "" {
		return nil, newErr(CodeMissingFrom, "hub header without From")
	}
	if len(h.To) == 0 {
		return nil, newErr(CodeMissingTo, "hub header without To")
	}
	if h.DocumentID == "" {
		return nil, newErr(CodeMissingDocID, "hub header without DocumentId")
	}
	for _, o := range append([]Organ{h.From}, h.To...) {
		if _, err := ValidateOrganCode(o.Code); err != nil {
			return nil, err
		}
	}
	if h.Created.IsZero() {
		return nil, errors.New("envelope: BuildHubEnvelope: Created is required")
	}
	ct := strings.TrimSpace(payloadContentType)
	if ct == "" || strings.ContainsAny(ct, "\"<>&\r\n\t") {
		return nil, fmt.Errorf("envelope: BuildHubEnvelope: bad payload content type %q", payloadContentType)
	}

	var b bytes.Buffer
	b.Grow(len(payload)*4/3 + 1024)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<lt:Envelope xmlns:lt="` + NamespaceHub + `" version="1">` + "\n")
	b.WriteString("  <lt:Header>\n")
	organ := func(el string, o Organ) {
		b.WriteString("    <lt:" + el + "><lt:OrganId>")
		escape(&b, o.Code)
		b.WriteString("</lt:OrganId>")
		if o.Name != "" {
			b.WriteString("<lt:OrganName>")
			escape(&b, o.Name)
			b.WriteString("</lt:OrganName>")
		}
		b.WriteString("</lt:" + el + ">\n")
	}
	leaf := func(el, s string) {
		b.WriteString("    <lt:" + el + ">")
		escape(&b, s)
		b.WriteString("</lt:" + el + ">\n")
	}
	organ("From", h.From)
	for _, o := range h.To {
		organ("To", o)
	}
	leaf("DocumentId", h.DocumentID)
	if h.Subject != "" {
		leaf("Subject", h.Subject)
	}
	if h.ResponseFor != "" {
		b.WriteString("    <lt:ResponseFor><lt:DocumentId>")
		escape(&b, h.ResponseFor)
		b.WriteString("</lt:DocumentId></lt:ResponseFor>\n")
	}
	leaf("Created", h.Created.UTC().Format(time.RFC3339Nano))
	b.WriteString("  </lt:Header>\n")
	b.WriteString(`  <lt:Payload contentType="`)
	escape(&b, ct)
	if inlineXML {
		b.WriteString(`">` + "\n")
		b.Write(trimXMLDecl(payload))
		b.WriteString("\n  </lt:Payload>\n")
	} else {
		b.WriteString(`" encoding="base64">`)
		enc := base64.NewEncoder(base64.StdEncoding, &b)
		enc.Write(payload)
		enc.Close()
		b.WriteString("</lt:Payload>\n")
	}
	b.WriteString("</lt:Envelope>\n")

	out := b.Bytes()
	lim := DefaultLimits()
	if n := int64(len(out)); n > lim.MaxBytes {
		lim.MaxBytes = n
	}
	if _, err := Parse(out, lim); err != nil {
		return nil, fmt.Errorf("envelope: BuildHubEnvelope: %w", err)
	}
	return out, nil
}

// trimXMLDecl drops a BOM, an XML declaration and surrounding whitespace.
func trimXMLDecl(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(b, []byte("<?xml")) && len(b) > 5 && (b[5] == ' ' || b[5] == '\t' || b[5] == '\r' || b[5] == '\n') {
		if i := bytes.Index(b, []byte("?>")); i >= 0 {
			b = b[i+2:]
		}
	}
	return bytes.TrimSpace(b)
}

func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s))
}
