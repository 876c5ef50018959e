package evidence

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"
)

// vietnam is the time zone of edXML timestamps (UTC+7, no daylight saving).
var vietnam = time.FixedZone("ICT", 7*3600)

// StatusReceived is what the edXML status 01 ("Đã đến") of a delivery says.
type StatusReceived struct {
	Recipient, RecipientName string    // who reports: the organ the document reached
	Sender                   string    // the original sender, the status's addressee
	Code, PromulgationDate   string    // the original's Code (number/notation) and date, as written
	DocumentID               string    // the original's edXML DocumentId
	At                       time.Time // when the hub delivered it
}

// EdXMLStatusReceived builds the edXML status package with StatusCode 01
// (QCVN 102:2016; /work/shared/reference/edxml.md §8.1) that matches a
// "delivered" receipt of an edXML document: From the recipient, ResponseFor
// the original document, addressed to its sender. The hub derives it from
// the receipt; it is unsigned, and proven only through the receipt.
func EdXMLStatusReceived(s StatusReceived) []byte {
	esc := func(v string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(v))
		return b.String()
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">` + "\n")
	b.WriteString(`  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">` + "\n")
	b.WriteString("    <edXML:edXMLHeader>\n      <edXML:MessageHeader>\n")
	fmt.Fprintf(&b, "        <edXML:From>\n          <edXML:OrganId>%s</edXML:OrganId>\n", esc(s.Recipient))
	fmt.Fprintf(&b, "          <edXML:OrganName>%s</edXML:OrganName>\n", esc(s.RecipientName))
	fmt.Fprintf(&b, "          <edXML:OrganizationInCharge>%s</edXML:OrganizationInCharge>\n", esc(s.RecipientName))
	b.WriteString("          <edXML:OrganAdd/><edXML:Email/><edXML:Telephone/><edXML:Fax/><edXML:Website/>\n        </edXML:From>\n")
	fmt.Fprintf(&b, "        <edXML:ResponseFor>\n          <edXML:OrganId>%s</edXML:OrganId>\n", esc(s.Sender))
	fmt.Fprintf(&b, "          <edXML:Code>%s</edXML:Code>\n", esc(s.Code))
	fmt.Fprintf(&b, "          <edXML:PromulgationDate>%s</edXML:PromulgationDate>\n", esc(s.PromulgationDate))
	fmt.Fprintf(&b, "          <edXML:DocumentId>%s</edXML:DocumentId>\n        </edXML:ResponseFor>\n", esc(s.DocumentID))
	b.WriteString("        <edXML:StaffInfo><edXML:Department>Lienthong</edXML:Department><edXML:Staff/><edXML:Mobile/><edXML:Email/></edXML:StaffInfo>\n")
	b.WriteString("        <edXML:StatusCode>01</edXML:StatusCode>\n")
	b.WriteString("        <edXML:Description>Đã đến - Trục liên thông đã chuyển văn bản đến đơn vị nhận / delivered to the recipient by the hub</edXML:Description>\n")
	fmt.Fprintf(&b, "        <edXML:Timestamp>%s</edXML:Timestamp>\n", s.At.In(vietnam).Format("2006/01/02 15:04:05"))
	b.WriteString("      </edXML:MessageHeader>\n    </edXML:edXMLHeader>\n  </edXML:edXMLEnvelope>\n</edXML>\n")
	return b.Bytes()
}
