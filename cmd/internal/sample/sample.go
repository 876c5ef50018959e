// Package sample writes small, valid edXML document packages with synthetic
// content: the demo document of `hubd dev`, `hubctl new`, and test fixtures
// made at test time. Nothing here is a real organ's or person's data.
package sample

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Doc describes a document package to write.
type Doc struct {
	From       string
	FromName   string
	To         []string
	DocumentID string // default: <From>,<yyyy/MM/dd>,<Number>/<Notation>
	Number     string // default "1"
	Notation   string // default "VPQH-DEMO"
	Subject    string
	Date       time.Time
	Attachment []byte // default: a tiny PDF
	// Pad adds an attachment padding so that the package reaches about this
	// many bytes (for benchmarks).
	Pad int
	// Sign, when set, is called with the (padded) attachment and returns a
	// detached CMS signature over it, added as a second attachment named
	// after it with ".p7s" (for benchmarks of attachment signatures).
	Sign func(attachment []byte) ([]byte, error)
}

// EdXML renders d as an edXML package (QCVN 102:2016, VNPT element order).
func EdXML(d Doc) []byte {
	b, err := EdXMLSigned(d)
	if err != nil {
		panic(err) // without d.Sign there is no error
	}
	return b
}

// EdXMLSigned is EdXML, returning the error of d.Sign.
func EdXMLSigned(d Doc) ([]byte, error) {
	if d.Number == "" {
		d.Number = "1"
	}
	if d.Notation == "" {
		d.Notation = "VPQH-DEMO"
	}
	if d.Date.IsZero() {
		d.Date = time.Now()
	}
	if d.Subject == "" {
		d.Subject = "V/v thử nghiệm hệ thống Lienthong (văn bản mẫu)"
	}
	if d.FromName == "" {
		d.FromName = "Đơn vị mẫu (DEMO)"
	}
	if d.DocumentID == "" {
		d.DocumentID = fmt.Sprintf("%s,%s,%s/%s", d.From, d.Date.Format("2006/01/02"), d.Number, d.Notation)
	}
	att := d.Attachment
	if att == nil {
		att = MiniPDF("Văn bản mẫu / sample document")
	}
	if d.Pad > 0 {
		for len(att)*4/3 < d.Pad-2000 {
			att = append(att, []byte("\n% padding to reach the requested size: Lienthong benchmark document\n")...)
		}
	}
	var sig string
	if d.Sign != nil {
		s, err := d.Sign(att)
		if err != nil {
			return nil, fmt.Errorf("sample: signing the attachment: %w", err)
		}
		sig = base64.StdEncoding.EncodeToString(s)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{"D": d, "Date": d.Date.Format("2006/01/02"),
		"Stamp": d.Date.Format("2006/01/02 15:04:05"), "B64": base64.StdEncoding.EncodeToString(att), "Sig": sig}); err != nil {
		panic(err) // the template is fixed; only a programming error gets here
	}
	return buf.Bytes(), nil
}

// MiniPDF returns a minimal, valid one-page PDF carrying text (ASCII only is rendered).
func MiniPDF(text string) []byte {
	return []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
		"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 100]>>endobj\n% " + text + "\ntrailer<</Root 1 0 R>>\n%%EOF\n")
}

var tmpl = template.Must(template.New("edxml").Funcs(template.FuncMap{"x": escape}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>{{x .D.From}}</edXML:OrganId>
          <edXML:OrganizationInCharge>Quốc hội (DEMO)</edXML:OrganizationInCharge>
          <edXML:OrganName>{{x .D.FromName}}</edXML:OrganName>
        </edXML:From>
{{- range .D.To}}
        <edXML:To>
          <edXML:OrganId>{{x .}}</edXML:OrganId>
          <edXML:OrganName>Đơn vị nhận {{x .}} (DEMO)</edXML:OrganName>
        </edXML:To>
{{- end}}
        <edXML:DocumentId>{{x .D.DocumentID}}</edXML:DocumentId>
        <edXML:Code>
          <edXML:CodeNumber>{{x .D.Number}}</edXML:CodeNumber>
          <edXML:CodeNotation>{{x .D.Notation}}</edXML:CodeNotation>
        </edXML:Code>
        <edXML:PromulgationInfo>
          <edXML:Place>Hà Nội</edXML:Place>
          <edXML:PromulgationDate>{{.Date}}</edXML:PromulgationDate>
        </edXML:PromulgationInfo>
        <edXML:DocumentType>
          <edXML:Type>1</edXML:Type>
          <edXML:TypeDetail>0</edXML:TypeDetail>
          <edXML:TypeName>Công văn</edXML:TypeName>
        </edXML:DocumentType>
        <edXML:Subject>{{x .D.Subject}}</edXML:Subject>
        <edXML:Content>Nội dung văn bản mẫu, dữ liệu tổng hợp (synthetic).</edXML:Content>
        <edXML:SignerInfo>
          <edXML:Competence>TL. CHỦ NHIỆM (DEMO)</edXML:Competence>
          <edXML:Position>Chánh Văn phòng (DEMO)</edXML:Position>
          <edXML:FullName>Nguyễn Văn Mẫu</edXML:FullName>
        </edXML:SignerInfo>
        <edXML:OtherInfo>
          <edXML:Priority>0</edXML:Priority>
        </edXML:OtherInfo>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader>
          <edXML:OrganId>{{x .D.From}}</edXML:OrganId>
          <edXML:Timestamp>{{.Stamp}}</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:Bussiness>
          <edXML:BussinessDocType>0</edXML:BussinessDocType>
          <edXML:BussinessDocReason>Văn bản điện tử mới</edXML:BussinessDocReason>
          <edXML:Paper>0</edXML:Paper>
        </edXML:Bussiness>
      </edXML:TraceHeaderList>
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference>
          <edXML:ContentId>cid:1</edXML:ContentId>
          <edXML:ContentType>application/pdf</edXML:ContentType>
          <edXML:Description>van-ban-mau.pdf</edXML:Description>
          <edXML:AttachmentName>van-ban-mau.pdf</edXML:AttachmentName>
        </edXML:Reference>
{{- if .Sig}}
        <edXML:Reference>
          <edXML:ContentId>cid:2</edXML:ContentId>
          <edXML:ContentType>application/pkcs7-signature</edXML:ContentType>
          <edXML:AttachmentName>van-ban-mau.pdf.p7s</edXML:AttachmentName>
        </edXML:Reference>
{{- end}}
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:1</ContentId>
      <AttachmentName>van-ban-mau.pdf</AttachmentName>
      <Description>van-ban-mau.pdf</Description>
      <ContentType>application/pdf</ContentType>
      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">{{.B64}}</edXML:ContentTransferEncoded>
    </Attachment>
{{- if .Sig}}
    <Attachment>
      <ContentId>cid:2</ContentId>
      <AttachmentName>van-ban-mau.pdf.p7s</AttachmentName>
      <ContentType>application/pkcs7-signature</ContentType>
      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">{{.Sig}}</edXML:ContentTransferEncoded>
    </Attachment>
{{- end}}
  </AttachmentEncoded>
</edXML>
`))

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
