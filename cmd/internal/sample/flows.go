package sample

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"text/template"
	"time"
)

// Business describes a document package of any business type (0 new,
// 1 revocation, 2 update, 3 replacement) with an optional DueDate.
type Business struct {
	From       string
	To         []string
	DocumentID string
	Type       int    // BussinessDocType
	Target     string // the original's DocumentId (ResponseFor for 1, Bussiness/DocumentId for 2, ReplacementInfo for 3)
	DueDate    string // yyyy/MM/dd, optional
	Subject    string
	Date       time.Time
}

// BusinessEdXML renders b as an edXML package.
func BusinessEdXML(b Business) []byte {
	if b.Date.IsZero() {
		b.Date = time.Now()
	}
	if b.Subject == "" {
		b.Subject = fmt.Sprintf("V/v thử nghiệm nghiệp vụ loại %d (văn bản mẫu)", b.Type)
	}
	var buf bytes.Buffer
	if err := bizTmpl.Execute(&buf, map[string]any{"B": b, "Date": b.Date.Format("2006/01/02"),
		"Stamp": b.Date.Format("2006/01/02 15:04:05"),
		"B64":   base64.StdEncoding.EncodeToString(MiniPDF("business " + b.DocumentID))}); err != nil {
		panic(err) // the template is fixed
	}
	return buf.Bytes()
}

// Status describes an edXML status package.
type Status struct {
	From        string // who reports (the recipient; the original's sender for 13)
	Addressee   string // ResponseFor/OrganId
	DocumentID  string // ResponseFor/DocumentId: the original
	Code        string // 01 … 16
	Description string
	Date        time.Time
}

// StatusEdXML renders s as an edXML status package (edxml.md §8.1).
func StatusEdXML(s Status) []byte {
	if s.Date.IsZero() {
		s.Date = time.Now()
	}
	if s.Description == "" {
		s.Description = "Trạng thái " + s.Code + " (mẫu / sample)"
	}
	var buf bytes.Buffer
	if err := statusTmpl.Execute(&buf, map[string]any{"S": s, "Stamp": s.Date.Format("2006/01/02 15:04:05")}); err != nil {
		panic(err) // the template is fixed
	}
	return buf.Bytes()
}

var bizTmpl = template.Must(template.New("biz").Funcs(template.FuncMap{"x": escape}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>{{x .B.From}}</edXML:OrganId><edXML:OrganName>Đơn vị gửi (DEMO)</edXML:OrganName></edXML:From>
{{- range .B.To}}
        <edXML:To><edXML:OrganId>{{x .}}</edXML:OrganId><edXML:OrganName>Đơn vị nhận {{x .}} (DEMO)</edXML:OrganName></edXML:To>
{{- end}}
        <edXML:DocumentId>{{x .B.DocumentID}}</edXML:DocumentId>
        <edXML:Code><edXML:CodeNumber>1</edXML:CodeNumber><edXML:CodeNotation>DEMO</edXML:CodeNotation></edXML:Code>
        <edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place><edXML:PromulgationDate>{{.Date}}</edXML:PromulgationDate></edXML:PromulgationInfo>
        <edXML:Subject>{{x .B.Subject}}</edXML:Subject>
{{- if .B.DueDate}}
        <edXML:DueDate>{{x .B.DueDate}}</edXML:DueDate>
{{- end}}
{{- if eq .B.Type 1}}
        <edXML:ResponseFor><edXML:OrganId>{{x .B.From}}</edXML:OrganId><edXML:DocumentId>{{x .B.Target}}</edXML:DocumentId></edXML:ResponseFor>
{{- end}}
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader><edXML:OrganId>{{x .B.From}}</edXML:OrganId><edXML:Timestamp>{{.Stamp}}</edXML:Timestamp></edXML:TraceHeader>
        <edXML:Bussiness>
{{- if eq .B.Type 2}}
          <edXML:DocumentId>{{x .B.Target}}</edXML:DocumentId>
{{- end}}
          <edXML:BussinessDocType>{{.B.Type}}</edXML:BussinessDocType>
          <edXML:BussinessDocReason>Nghiệp vụ mẫu</edXML:BussinessDocReason>
          <edXML:Paper>0</edXML:Paper>
{{- if eq .B.Type 3}}
          <edXML:ReplacementInfoList><edXML:ReplacementInfo><edXML:DocumentId>{{x .B.Target}}</edXML:DocumentId></edXML:ReplacementInfo></edXML:ReplacementInfoList>
{{- end}}
        </edXML:Bussiness>
      </edXML:TraceHeaderList>
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId><edXML:ContentType>application/pdf</edXML:ContentType><edXML:AttachmentName>mau.pdf</edXML:AttachmentName></edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:1</ContentId><AttachmentName>mau.pdf</AttachmentName><ContentType>application/pdf</ContentType>
      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">{{.B64}}</edXML:ContentTransferEncoded>
    </Attachment>
  </AttachmentEncoded>
</edXML>
`))

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{"x": escape}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>{{x .S.From}}</edXML:OrganId><edXML:OrganName>Đơn vị báo trạng thái (DEMO)</edXML:OrganName></edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>{{x .S.Addressee}}</edXML:OrganId>
          <edXML:DocumentId>{{x .S.DocumentID}}</edXML:DocumentId>
        </edXML:ResponseFor>
        <edXML:StaffInfo><edXML:Department>Văn thư (DEMO)</edXML:Department><edXML:Staff>Nguyễn Văn Mẫu</edXML:Staff></edXML:StaffInfo>
        <edXML:StatusCode>{{x .S.Code}}</edXML:StatusCode>
        <edXML:Description>{{x .S.Description}}</edXML:Description>
        <edXML:Timestamp>{{.Stamp}}</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>
`))
