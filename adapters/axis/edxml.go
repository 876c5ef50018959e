package axis

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"lienthong/envelope"
)

// Packages the hub writes itself (never a re-serialisation of received
// bytes): status packages it reports on behalf of an NA recipient (01 "đã
// đến" when a document from the axis reached the recipient's system), and the
// edXML wrapper that carries a hub envelope to an axis organ. Both use the
// VNPT element order of edxml.md §4.1 and §8.1, so that SDK clients parse them.

// StatusCodes are the edXML status codes (edxml.md §8.2).
var StatusCodes = []string{"01", "02", "03", "04", "05", "06", "13", "15", "16"}

// EdXMLTimeLayout is edXML's timestamp layout (yyyy/MM/dd HH:mm:ss, Vietnam time).
const EdXMLTimeLayout = "2006/01/02 15:04:05"

// StatusPackage describes a status package to build.
type StatusPackage struct {
	From        envelope.Organ       // who reports the status (the receiver, or the sender for 13)
	ResponseFor envelope.ResponseFor // the original document; OrganID is the addressee
	Department  string               // StaffInfo/Department
	Staff       string               // StaffInfo/Staff
	Code        string               // two-digit status code
	Description string
	Time        time.Time
}

// BuildStatus renders p as an edXML status package.
func BuildStatus(p StatusPackage) ([]byte, error) {
	if !slices.Contains(StatusCodes, p.Code) {
		return nil, fmt.Errorf("axis: status code %q is not one of %s", p.Code, strings.Join(StatusCodes, " "))
	}
	if p.From.Code == "" || p.ResponseFor.OrganID == "" || p.ResponseFor.DocumentID == "" {
		return nil, fmt.Errorf("axis: a status package needs From, ResponseFor/OrganId and ResponseFor/DocumentId")
	}
	var buf bytes.Buffer
	err := statusTmpl.Execute(&buf, map[string]any{"P": p, "Stamp": p.Time.In(AxisZone).Format(EdXMLTimeLayout)})
	if err != nil {
		return nil, fmt.Errorf("axis: build status: %w", err)
	}
	return buf.Bytes(), nil
}

// Wrapper describes an edXML package the hub writes around a document that
// is not edXML (a signed hub envelope), for an axis recipient.
type Wrapper struct {
	From             envelope.Organ
	To               envelope.Organ
	DocumentID       string
	CodeNumber       string
	CodeNotation     string
	Subject          string
	PromulgationDate string // yyyy/MM/dd
	Hop              string // the hub's TraceHeader OrganId
	Time             time.Time
	Original         []byte // the original bytes, carried untouched as the only attachment
	Name             string // attachment name, e.g. "<id>.xml"
}

// WrapDocument renders w: an edXML document package (BussinessDocType 0)
// whose one attachment (ContentId cid:original, ContentType application/xml)
// is the base64 of w.Original. The original stays byte-identical inside the
// wrapper, so its own signature still verifies after base64 decoding.
func WrapDocument(w Wrapper) ([]byte, error) {
	if w.From.Code == "" || w.To.Code == "" || w.DocumentID == "" || len(w.Original) == 0 {
		return nil, fmt.Errorf("axis: a wrapper needs From, To, DocumentId and the original bytes")
	}
	if w.PromulgationDate == "" {
		w.PromulgationDate = w.Time.In(AxisZone).Format("2006/01/02")
	}
	if w.Name == "" {
		w.Name = "original.xml"
	}
	var buf bytes.Buffer
	err := wrapTmpl.Execute(&buf, map[string]any{"W": w, "Stamp": w.Time.In(AxisZone).Format(EdXMLTimeLayout),
		"B64": base64.StdEncoding.EncodeToString(w.Original)})
	if err != nil {
		return nil, fmt.Errorf("axis: wrap document: %w", err)
	}
	return buf.Bytes(), nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

var funcs = template.FuncMap{"x": xmlEscape}

var statusTmpl = template.Must(template.New("status").Funcs(funcs).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>{{x .P.From.Code}}</edXML:OrganId>
          <edXML:OrganName>{{x .P.From.Name}}</edXML:OrganName>
          <edXML:OrganizationInCharge>{{x .P.From.Name}}</edXML:OrganizationInCharge>
          <edXML:OrganAdd/><edXML:Email/><edXML:Telephone/><edXML:Fax/><edXML:Website/>
        </edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>{{x .P.ResponseFor.OrganID}}</edXML:OrganId>
          <edXML:Code>{{x .P.ResponseFor.Code}}</edXML:Code>
          <edXML:PromulgationDate>{{x .P.ResponseFor.PromulgationDate}}</edXML:PromulgationDate>
          <edXML:DocumentId>{{x .P.ResponseFor.DocumentID}}</edXML:DocumentId>
        </edXML:ResponseFor>
        <edXML:StaffInfo>
          <edXML:Department>{{x .P.Department}}</edXML:Department><edXML:Staff>{{x .P.Staff}}</edXML:Staff>
          <edXML:Mobile/><edXML:Email/>
        </edXML:StaffInfo>
        <edXML:StatusCode>{{.P.Code}}</edXML:StatusCode>
        <edXML:Description>{{x .P.Description}}</edXML:Description>
        <edXML:Timestamp>{{.Stamp}}</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>
`))

var wrapTmpl = template.Must(template.New("wrap").Funcs(funcs).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>{{x .W.From.Code}}</edXML:OrganId>
          <edXML:OrganizationInCharge>{{x .W.From.Name}}</edXML:OrganizationInCharge>
          <edXML:OrganName>{{x .W.From.Name}}</edXML:OrganName>
        </edXML:From>
        <edXML:To>
          <edXML:OrganId>{{x .W.To.Code}}</edXML:OrganId>
          <edXML:OrganName>{{x .W.To.Name}}</edXML:OrganName>
        </edXML:To>
        <edXML:DocumentId>{{x .W.DocumentID}}</edXML:DocumentId>
        <edXML:Code>
          <edXML:CodeNumber>{{x .W.CodeNumber}}</edXML:CodeNumber>
          <edXML:CodeNotation>{{x .W.CodeNotation}}</edXML:CodeNotation>
        </edXML:Code>
        <edXML:PromulgationInfo>
          <edXML:Place/>
          <edXML:PromulgationDate>{{x .W.PromulgationDate}}</edXML:PromulgationDate>
        </edXML:PromulgationInfo>
        <edXML:Subject>{{x .W.Subject}}</edXML:Subject>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader>
          <edXML:OrganId>{{x .W.From.Code}}</edXML:OrganId>
          <edXML:Timestamp>{{.Stamp}}</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:TraceHeader>
          <edXML:OrganId>{{x .W.Hop}}</edXML:OrganId>
          <edXML:Timestamp>{{.Stamp}}</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:Bussiness>
          <edXML:BussinessDocType>0</edXML:BussinessDocType>
          <edXML:BussinessDocReason>Văn bản điện tử mới (bao gói phong bì Lienthong / Lienthong envelope wrapped)</edXML:BussinessDocReason>
          <edXML:Paper>0</edXML:Paper>
        </edXML:Bussiness>
      </edXML:TraceHeaderList>
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference>
          <edXML:ContentId>cid:original</edXML:ContentId>
          <edXML:ContentType>application/xml</edXML:ContentType>
          <edXML:Description>{{x .W.Name}}</edXML:Description>
          <edXML:AttachmentName>{{x .W.Name}}</edXML:AttachmentName>
        </edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:original</ContentId>
      <AttachmentName>{{x .W.Name}}</AttachmentName>
      <Description>{{x .W.Name}}</Description>
      <ContentType>application/xml</ContentType>
      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">{{.B64}}</edXML:ContentTransferEncoded>
    </Attachment>
  </AttachmentEncoded>
</edXML>
`))
