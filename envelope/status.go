package envelope

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// StatusPackage is what a hub-written edXML status package says. The hub
// writes one only for an authenticated organ that reports a status through
// the JSON route of the API; the bytes it returns are then stored and
// forwarded as received, like any package.
type StatusPackage struct {
	From        Organ       // the organ that reports
	ResponseFor ResponseFor // OrganId = the addressee, DocumentId = the original
	Code        string      // 01 … 06, 13, 15, 16
	Description string
	Staff       string    // StaffInfo/Staff, optional
	Department  string    // StaffInfo/Department, optional
	At          time.Time // Timestamp, written in Vietnam time (yyyy/MM/dd HH:mm:ss)
}

// IsStatusCode reports whether code is one of the edXML status codes.
func IsStatusCode(code string) bool { return slices.Contains(statusCodes, code) }

// BuildStatus writes p as an edXML status package in the element order of
// the official samples (edxml.md §8.1). It checks what Parse would refuse.
func BuildStatus(p StatusPackage) ([]byte, error) {
	if !IsStatusCode(p.Code) {
		return nil, newErr(CodeBadStatus, "StatusCode %q is not one of %v", p.Code, statusCodes)
	}
	for role, code := range map[string]string{"From": p.From.Code, "ResponseFor": p.ResponseFor.OrganID} {
		if _, err := ValidateOrganCode(code); err != nil {
			return nil, fmt.Errorf("status %s: %w", role, err)
		}
	}
	if p.ResponseFor.DocumentID == "" {
		return nil, newErr(CodeBadStatus, "a status package needs ResponseFor/DocumentId")
	}
	for _, s := range []string{p.From.Name, p.ResponseFor.DocumentID, p.ResponseFor.Code, p.ResponseFor.PromulgationDate,
		p.Description, p.Staff, p.Department} {
		if !xmlText(s) {
			return nil, newErr(CodeBadEncoding, "text %q is not valid UTF-8 or holds characters XML cannot carry", s)
		}
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	var b bytes.Buffer
	e := func(s string) string {
		var x bytes.Buffer
		_ = xml.EscapeText(&x, []byte(s))
		return x.String()
	}
	el := func(indent, name, val string) {
		fmt.Fprintf(&b, "%s<edXML:%s>%s</edXML:%s>\n", indent, name, e(val), name)
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<edXML xmlns="` + NamespaceEdXML + `">` + "\n")
	b.WriteString(`  <edXML:edXMLEnvelope xmlns:edXML="` + NamespaceEdXML + `">` + "\n")
	b.WriteString("    <edXML:edXMLHeader>\n      <edXML:MessageHeader>\n        <edXML:From>\n")
	el("          ", "OrganId", p.From.Code)
	el("          ", "OrganName", p.From.Name)
	b.WriteString("        </edXML:From>\n        <edXML:ResponseFor>\n")
	el("          ", "OrganId", p.ResponseFor.OrganID)
	if p.ResponseFor.Code != "" {
		el("          ", "Code", p.ResponseFor.Code)
	}
	if p.ResponseFor.PromulgationDate != "" {
		el("          ", "PromulgationDate", p.ResponseFor.PromulgationDate)
	}
	el("          ", "DocumentId", p.ResponseFor.DocumentID)
	b.WriteString("        </edXML:ResponseFor>\n        <edXML:StaffInfo>\n")
	el("          ", "Department", p.Department)
	el("          ", "Staff", p.Staff)
	b.WriteString("        </edXML:StaffInfo>\n")
	el("        ", "StatusCode", p.Code)
	el("        ", "Description", p.Description)
	el("        ", "Timestamp", p.At.In(time.FixedZone("ICT", 7*3600)).Format("2006/01/02 15:04:05"))
	b.WriteString("      </edXML:MessageHeader>\n    </edXML:edXMLHeader>\n  </edXML:edXMLEnvelope>\n</edXML>\n")
	return b.Bytes(), nil
}

// xmlText reports whether s is valid UTF-8 made of XML 1.0 characters, so
// that it can be written without being altered.
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9, r == 0xA, r == 0xD, r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}
