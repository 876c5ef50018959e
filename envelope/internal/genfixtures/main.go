// Command genfixtures writes the synthetic edXML fixtures of testdata/edxml
// (edxml.md §14) and the hub envelope samples of testdata/hub, with their
// README. Every organ, person and attachment in them is made up.
//
//	go generate ./envelope   (runs: go run ./internal/genfixtures)
package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lienthong/envelope"
)

const ns = "http://www.mic.gov.vn/TBT/QCVN_102_2016"

// Synthetic organs: C (National Assembly bodies), G and H codes chosen outside
// the ranges in use (G9x, H9x).
var (
	orgC01 = organ{"000.00.00.C01", "Văn phòng Thử nghiệm Quốc hội (giả lập)", "Quốc hội (giả lập)"}
	orgC02 = organ{"000.00.00.C02", "Ủy ban Thử nghiệm Số Hai (giả lập)", "Quốc hội (giả lập)"}
	orgG91 = organ{"000.00.00.G91", "Bộ Thử nghiệm Liên thông (giả lập)", "Chính phủ (giả lập)"}
)

type organ struct{ code, name, inCharge string }

type attachment struct {
	id       string // without cid:
	refCID   string // written ContentId in the manifest (default "cid:"+id)
	attCID   string // written ContentId in the attachment (default "cid:"+id)
	name     string
	ct       string // attachment ContentType
	refCT    string // manifest ContentType (default ct)
	data     []byte
	b64      string // written instead of base64(data) when set
	wrap     bool   // MIME line wrapping (76, CRLF)
	noRef    bool
	noAtt    bool
	refAttrs string // extra attributes on Reference (with their xmlns)
}

type rf struct{ organID, code, date, docID string }

type doc struct {
	decl        string // XML declaration (default UTF-8)
	from        *organ
	to          []organ
	docID       string
	number      string
	notation    string
	subject     string
	content     string
	date        string
	due         string
	priority    int
	docType     string
	responseFor []rf
	rawRF       string // extra raw ResponseFor XML
	vpcpOrder   bool
	bizType     string
	bizDocID    string
	bizReason   string
	bizExtra    string
	bizFirst    bool
	traceAttrs  string
	traces      string // raw TraceHeader elements (default one hop from the sender)
	signature   string // "placeholder" (default), "dsig", "none"
	extraHeader string // raw XML appended inside edXMLHeader after the signature
	extraMsg    string // raw XML appended inside MessageHeader
	prefixedAtt bool
	atts        []attachment
	crlf        bool
}

func x(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func organXML(tag string, o organ) string {
	return fmt.Sprintf(`        <edXML:%[1]s>
          <edXML:OrganId>%[2]s</edXML:OrganId>
          <edXML:OrganizationInCharge>%[3]s</edXML:OrganizationInCharge>
          <edXML:OrganName>%[4]s</edXML:OrganName>
          <edXML:OrganAdd>Số 1 Phố Thử Nghiệm, Quận Mẫu, Hà Nội</edXML:OrganAdd>
          <edXML:Email>vanthu@example.invalid</edXML:Email>
          <edXML:Telephone>0240000000</edXML:Telephone>
          <edXML:Fax>0240000001</edXML:Fax>
          <edXML:Website>example.invalid</edXML:Website>
        </edXML:%[1]s>
`, tag, x(o.code), x(o.inCharge), x(o.name))
}

func rfXML(r rf) string {
	return fmt.Sprintf(`        <edXML:ResponseFor>
          <edXML:OrganId>%s</edXML:OrganId>
          <edXML:Code>%s</edXML:Code>
          <edXML:PromulgationDate>%s</edXML:PromulgationDate>
          <edXML:DocumentId>%s</edXML:DocumentId>
        </edXML:ResponseFor>
`, x(r.organID), x(r.code), x(r.date), x(r.docID))
}

const placeholderSig = `      <Signature>
        <SignedInfo>
          <CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
          <SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>
          <Reference URI="">
            <Transforms>
              <Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
              <Transform Algorithm="http://www.w3.org/TR/xml-exc-c14n#"/>
            </Transforms>
            <DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>
            <DigestValue>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</DigestValue>
          </Reference>
        </SignedInfo>
        <SignatureValue>UExBQ0VIT0xERVI=</SignatureValue>
        <KeyInfo><X509Data><X509SubjectName>CN=Thu Nghiem (gia lap)</X509SubjectName><X509Certificate>TUlJRlBMQUNFSE9MREVS</X509Certificate></X509Data></KeyInfo>
      </Signature>
`

const dsigSig = `      <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
        <SignedInfo>
          <CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
          <Reference URI="">
            <Transforms>
              <Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
              <Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
            </Transforms>
            <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <DigestValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</DigestValue>
          </Reference>
        </SignedInfo>
        <SignatureValue>UExBQ0VIT0xERVI=</SignatureValue>
        <KeyInfo><X509Data><X509Certificate>TUlJRlBMQUNFSE9MREVS</X509Certificate></X509Data></KeyInfo>
        <Object>
          <SignatureProperties>
            <SignatureProperty Target="#sig">
              <SigningTime xmlns="http://example.invalid/signing-time">2026-03-02T09:15:00+07:00</SigningTime>
            </SignatureProperty>
          </SignatureProperties>
        </Object>
      </Signature>
`

func (d doc) render() []byte {
	if d.from == nil {
		f := orgC01
		d.from = &f
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&d.number, "15")
	def(&d.notation, "VPTN-TH")
	def(&d.date, "2026/03/02")
	def(&d.due, "2026/03/16")
	def(&d.subject, "V/v thử nghiệm trao đổi văn bản điện tử qua Lienthong")
	def(&d.content, "Đề nghị các đơn vị phối hợp kiểm tra việc nhận văn bản điện tử.")
	def(&d.docType, "1")
	def(&d.bizType, "0")
	def(&d.bizReason, "Văn bản điện tử mới")
	def(&d.signature, "placeholder")
	def(&d.decl, `<?xml version="1.0" encoding="UTF-8"?>`)
	if d.docID == "" {
		d.docID = d.from.code + "," + d.date + "," + d.number + "/" + d.notation
	}
	if d.traces == "" {
		d.traces = `        <edXML:TraceHeader>
          <edXML:OrganId>` + x(d.from.code) + `</edXML:OrganId>
          <edXML:Timestamp>2026/03/02 08:30:00</edXML:Timestamp>
        </edXML:TraceHeader>
`
	}

	parts := map[string]string{}
	var tos strings.Builder
	for _, o := range d.to {
		tos.WriteString(organXML("To", o))
	}
	parts["From"] = organXML("From", *d.from)
	parts["To"] = tos.String()
	if d.docID != "-" {
		parts["DocumentId"] = "        <edXML:DocumentId>" + x(d.docID) + "</edXML:DocumentId>\n"
	}
	parts["Code"] = "        <edXML:Code>\n          <edXML:CodeNumber>" + x(d.number) + "</edXML:CodeNumber>\n          <edXML:CodeNotation>" + x(d.notation) + "</edXML:CodeNotation>\n        </edXML:Code>\n"
	parts["PromulgationInfo"] = "        <edXML:PromulgationInfo>\n          <edXML:Place>Hà Nội</edXML:Place>\n          <edXML:PromulgationDate>" + d.date + "</edXML:PromulgationDate>\n        </edXML:PromulgationInfo>\n"
	parts["DocumentType"] = "        <edXML:DocumentType>\n          <edXML:Type>" + d.docType + "</edXML:Type>\n          <edXML:TypeDetail>0</edXML:TypeDetail>\n          <edXML:TypeName>Công văn</edXML:TypeName>\n        </edXML:DocumentType>\n"
	parts["Subject"] = "        <edXML:Subject>" + x(d.subject) + "</edXML:Subject>\n"
	parts["Content"] = "        <edXML:Content>" + x(d.content) + "</edXML:Content>\n"
	parts["SignerInfo"] = "        <edXML:SignerInfo>\n          <edXML:Competence>TL. CHỦ NHIỆM</edXML:Competence>\n          <edXML:Position>Vụ trưởng Vụ Thử nghiệm</edXML:Position>\n          <edXML:FullName>Nguyễn Văn Thử</edXML:FullName>\n        </edXML:SignerInfo>\n"
	parts["DueDate"] = "        <edXML:DueDate>" + d.due + "</edXML:DueDate>\n"
	parts["OtherInfo"] = fmt.Sprintf("        <edXML:OtherInfo>\n          <edXML:Priority>%d</edXML:Priority>\n          <edXML:SphereOfPromulgation>Liên thông văn bản quốc gia</edXML:SphereOfPromulgation>\n          <edXML:TyperNotation>NVT</edXML:TyperNotation>\n          <edXML:PromulgationAmount>1</edXML:PromulgationAmount>\n          <edXML:PageAmount>1</edXML:PageAmount>\n          <edXML:Direction>false</edXML:Direction>\n          <edXML:Appendixes><edXML:Appendix>Phụ lục thử nghiệm</edXML:Appendix></edXML:Appendixes>\n        </edXML:OtherInfo>\n", d.priority)
	var rfs strings.Builder
	for _, r := range d.responseFor {
		rfs.WriteString(rfXML(r))
	}
	rfs.WriteString(d.rawRF)
	parts["ResponseFor"] = rfs.String()
	parts["SteeringType"] = "        <edXML:SteeringType>1</edXML:SteeringType>\n"
	parts["ToPlaces"] = "        <edXML:ToPlaces>\n          <edXML:Place>Như trên; Lưu: VT, Vụ Thử nghiệm.</edXML:Place>\n        </edXML:ToPlaces>\n"

	order := []string{"From", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
		"SignerInfo", "DueDate", "OtherInfo", "ResponseFor", "SteeringType", "ToPlaces"}
	if d.vpcpOrder {
		order = []string{"From", "To", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
			"SignerInfo", "DueDate", "ToPlaces", "OtherInfo", "ResponseFor", "SteeringType", "DocumentId"}
	}

	var b strings.Builder
	b.WriteString(d.decl + "\n")
	b.WriteString(`<edXML xmlns="` + ns + `">` + "\n")
	b.WriteString(`  <edXML:edXMLEnvelope xmlns:edXML="` + ns + `">` + "\n")
	b.WriteString("    <edXML:edXMLHeader>\n      <edXML:MessageHeader>\n")
	for _, p := range order {
		b.WriteString(parts[p])
	}
	b.WriteString(d.extraMsg)
	b.WriteString("      </edXML:MessageHeader>\n")
	b.WriteString("      <edXML:TraceHeaderList" + d.traceAttrs + ">\n")
	biz := "        <edXML:Bussiness>\n"
	if d.bizDocID != "" {
		biz += "          <edXML:DocumentId>" + x(d.bizDocID) + "</edXML:DocumentId>\n"
	}
	biz += "          <edXML:BussinessDocType>" + d.bizType + "</edXML:BussinessDocType>\n" +
		"          <edXML:BussinessDocReason>" + x(d.bizReason) + "</edXML:BussinessDocReason>\n" +
		"          <edXML:Paper>0</edXML:Paper>\n" + d.bizExtra +
		"          <edXML:StaffInfo>\n            <edXML:Department>Phòng Văn thư (giả lập)</edXML:Department>\n            <edXML:Staff>Trần Thị Mẫu</edXML:Staff>\n            <edXML:Email>vanthu@example.invalid</edXML:Email>\n            <edXML:Mobile>0900000000</edXML:Mobile>\n          </edXML:StaffInfo>\n" +
		"        </edXML:Bussiness>\n"
	if d.bizFirst {
		b.WriteString(biz + d.traces)
	} else {
		b.WriteString(d.traces + biz)
	}
	b.WriteString("      </edXML:TraceHeaderList>\n")
	switch d.signature {
	case "placeholder":
		b.WriteString(placeholderSig)
	case "dsig":
		b.WriteString(dsigSig)
	}
	b.WriteString(d.extraHeader)
	b.WriteString("    </edXML:edXMLHeader>\n    <edXML:edXMLBody>\n      <edXML:edXMLManifest version=\"1.0\">\n")
	for _, a := range d.atts {
		if a.noRef {
			continue
		}
		cid, ct := a.refCID, a.refCT
		if cid == "" {
			cid = "cid:" + a.id
		}
		if ct == "" {
			ct = a.ct
		}
		fmt.Fprintf(&b, "        <edXML:Reference%s>\n          <edXML:ContentId>%s</edXML:ContentId>\n          <edXML:ContentType>%s</edXML:ContentType>\n          <edXML:Description>%s</edXML:Description>\n          <edXML:AttachmentName>%s</edXML:AttachmentName>\n        </edXML:Reference>\n",
			a.refAttrs, x(cid), x(ct), x(a.name), x(a.name))
	}
	b.WriteString("      </edXML:edXMLManifest>\n    </edXML:edXMLBody>\n  </edXML:edXMLEnvelope>\n")
	pfx := ""
	if d.prefixedAtt {
		pfx = "edXML:"
	}
	b.WriteString("  <" + pfx + "AttachmentEncoded")
	if d.prefixedAtt {
		b.WriteString(` xmlns:edXML="` + ns + `"`)
	}
	b.WriteString(">\n")
	for _, a := range d.atts {
		if a.noAtt {
			continue
		}
		cid := a.attCID
		if cid == "" {
			cid = "cid:" + a.id
		}
		enc := a.b64
		if enc == "" {
			enc = base64.StdEncoding.EncodeToString(a.data)
			if a.wrap {
				enc = wrap76(enc)
			}
		}
		fmt.Fprintf(&b, "    <%[1]sAttachment>\n      <%[1]sContentId>%[2]s</%[1]sContentId>\n      <%[1]sAttachmentName>%[3]s</%[1]sAttachmentName>\n      <%[1]sDescription>%[3]s</%[1]sDescription>\n      <%[1]sContentType>%[4]s</%[1]sContentType>\n      <edXML:ContentTransferEncoded xmlns:edXML=\"%[5]s\">%[6]s</edXML:ContentTransferEncoded>\n    </%[1]sAttachment>\n",
			pfx, x(cid), x(a.name), x(a.ct), ns, enc)
	}
	b.WriteString("  </" + pfx + "AttachmentEncoded>\n</edXML>\n")
	out := b.String()
	if d.crlf {
		out = strings.ReplaceAll(out, "\n", "\r\n")
	}
	return []byte(out)
}

func wrap76(s string) string {
	var b strings.Builder
	b.WriteString("\r\n")
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// status renders a status package (edxml.md §8.1).
func status(from organ, code, desc string, r *rf) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="` + ns + `">
  <edXML:edXMLEnvelope xmlns:edXML="` + ns + `">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>` + x(from.code) + `</edXML:OrganId>
          <edXML:OrganName>` + x(from.name) + `</edXML:OrganName>
          <edXML:OrganizationInCharge>` + x(from.inCharge) + `</edXML:OrganizationInCharge>
          <edXML:OrganAdd/><edXML:Email/><edXML:Telephone/><edXML:Fax/><edXML:Website/>
        </edXML:From>
`)
	if r != nil {
		b.WriteString(`        <edXML:ResponseFor>
          <edXML:OrganId>` + x(r.organID) + `</edXML:OrganId>
          <edXML:Code>` + x(r.code) + `</edXML:Code>
          <edXML:DocumentId>` + x(r.docID) + `</edXML:DocumentId>
          <edXML:PromulgationDate>` + x(r.date) + `</edXML:PromulgationDate>
        </edXML:ResponseFor>
`)
	}
	b.WriteString(`        <edXML:StaffInfo>
          <edXML:Department>Văn thư văn phòng (giả lập)</edXML:Department><edXML:Staff>Lê Văn Mẫu</edXML:Staff>
          <edXML:Mobile>0900000001</edXML:Mobile><edXML:Email>vanthu2@example.invalid</edXML:Email>
        </edXML:StaffInfo>
        <edXML:StatusCode>` + code + `</edXML:StatusCode>
        <edXML:Description>` + x(desc) + `</edXML:Description>
        <edXML:Timestamp>2026/03/02 10:05:11</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>
`)
	return []byte(b.String())
}

// miniPDF is a minimal one-page PDF.
func miniPDF(note string) []byte {
	return []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
		"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n% " + note + "\ntrailer<</Root 1 0 R>>\n%%EOF\n")
}

var fixedTime = time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)

// zipOf builds a deterministic zip with one stored or deflated entry.
func zipOf(name string, content []byte, deflate bool) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Modified: fixedTime}
	if deflate {
		h.Method = zip.Deflate
	}
	w, err := zw.CreateHeader(h)
	if err != nil {
		log.Fatal(err)
	}
	w.Write(content)
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

const origDocID = "000.00.00.C01,2026/02/20,9/VPTN-TH"

var origRF = rf{organID: "000.00.00.C01", code: "9/VPTN-TH", date: "2026/02/20", docID: origDocID}

func pdfAtt() attachment {
	return attachment{id: "201", name: "15_VPTN-TH.pdf", ct: "application/pdf", data: miniPDF("van ban thu nghiem")}
}

type fixture struct {
	file    string
	item    string // edxml.md §14 item
	outcome string
	body    []byte
}

func fixtures() []fixture {
	var fs []fixture
	add := func(file, item, outcome string, body []byte) {
		fs = append(fs, fixture{file, item, outcome, body})
	}
	base := func() doc { return doc{to: []organ{orgC02}, atts: []attachment{pdfAtt()}} }

	// Documents.
	add("new-1-recipient-pdf.edxml", "1", "accepted: 1 To, 1 PDF attachment; warning: placeholder signature", base().render())
	d := base()
	d.to = []organ{orgC02, orgG91}
	d.atts = []attachment{{id: "202", name: "3f2b8c1e-5d4a-4e7b-9c61-0a1b2c3d4e5f.zip", ct: "application/zip",
		data: zipOf("3f2b8c1e-5d4a-4e7b-9c61-0a1b2c3d4e5f.txt", []byte("Nội dung tệp văn bản thử nghiệm (giả lập).\n"), true)}}
	add("new-2-recipients-zip.edxml", "2", "accepted: 2 To, 1 zip attachment (sniffed application/zip)", d.render())

	d = base()
	d.bizType, d.bizReason = "1", "Thu hồi văn bản điện tử"
	d.number, d.subject = "16", "V/v thu hồi Công văn số 9/VPTN-TH"
	d.responseFor = []rf{origRF}
	add("revocation.edxml", "3", "accepted: BusinessDocType 1, ResponseFor = the revoked document", d.render())

	d = base()
	d.bizType, d.bizReason, d.bizDocID = "2", "Cập nhật văn bản điện tử", origDocID
	d.number = "17"
	d.bizExtra = `          <edXML:BussinessDocumentInfo>
            <edXML:DocumentInfo>1</edXML:DocumentInfo>
            <edXML:DocumentReceiver>1</edXML:DocumentReceiver>
            <edXML:ReceiverList>
              <edXML:Receiver><edXML:OrganId>000.00.00.C02</edXML:OrganId><edXML:ReceiverType>0</edXML:ReceiverType></edXML:Receiver>
              <edXML:Receiver><edXML:OrganId>000.00.00.G91</edXML:OrganId><edXML:ReceiverType>1</edXML:ReceiverType></edXML:Receiver>
            </edXML:ReceiverList>
          </edXML:BussinessDocumentInfo>
`
	add("update.edxml", "4", "accepted: BusinessDocType 2, BusinessDocumentID set", d.render())

	d = base()
	d.bizType, d.bizReason, d.number = "3", "Thay thế văn bản điện tử", "18"
	d.bizExtra = `          <edXML:ReplacementInfoList>
            <edXML:ReplacementInfo>
              <edXML:DocumentId>` + origDocID + `</edXML:DocumentId>
              <edXML:OrganIdList><edXML:OrganId>000.00.00.C02</edXML:OrganId><edXML:OrganId>000.00.00.G91</edXML:OrganId></edXML:OrganIdList>
            </edXML:ReplacementInfo>
          </edXML:ReplacementInfoList>
`
	add("replacement.edxml", "5", "accepted: BusinessDocType 3", d.render())

	d = base()
	d.number = "19"
	d.responseFor = []rf{origRF, {organID: "000.00.00.G91", code: "120/BTN-VP", date: "2026/02/25", docID: "000.00.00.G91,2026/02/25,120/BTN-VP"}}
	add("reply-2-responsefor.edxml", "6", "accepted: 2 ResponseFor entries, BusinessDocType 0", d.render())

	for p := 0; p <= 4; p++ {
		d = base()
		d.priority = p
		d.number = fmt.Sprint(20 + p)
		outcome := fmt.Sprintf("accepted: Priority %d", p)
		if p == 4 {
			d.docType = "71"
			outcome += ", DocumentType/Type 71"
		}
		add(fmt.Sprintf("priority-%d.edxml", p), "7", outcome, d.render())
	}

	// Status packages: 13 is sent by the original sender to the receiver.
	descs := map[string]string{
		"01": "Văn thư - Phòng Văn thư - Lưu trữ: Đã đến - Phần mềm QLVB đã nhận nhưng văn thư chưa xử lý",
		"02": "Văn thư: Từ chối không tiếp nhận văn bản điện tử (sai địa chỉ nhận)",
		"03": "Văn thư: Tiếp nhận văn bản điện tử, vào sổ văn bản đến của đơn vị",
		"04": "Lãnh đạo: Phân công xử lý",
		"05": "Đang xử lý văn bản đến",
		"06": "Văn thư: Ban hành văn bản đến, hoàn thành xử lý",
		"13": "Văn thư yêu cầu lấy lại văn bản điện tử: gửi nhầm đơn vị",
		"15": "Văn thư đồng ý yêu cầu cập nhật, lấy lại",
		"16": "Văn thư từ chối yêu cầu cập nhật, lấy lại",
	}
	for _, c := range []string{"01", "02", "03", "04", "05", "06", "13", "15", "16"} {
		from, r := orgC02, origRF // receiver reports to the original sender
		outcome := "accepted: status " + c + ", From C02, To = ResponseFor/OrganId C01"
		if c == "13" {
			from, r = orgC01, rf{organID: "000.00.00.C02", code: origRF.code, date: origRF.date, docID: origDocID}
			outcome = "accepted: status 13, From C01 (original sender), To = ResponseFor/OrganId C02"
		}
		add("status-"+c+".edxml", "8", outcome, status(from, c, descs[c], &r))
	}
	add("status-unknown-original.edxml", "9", "accepted by Parse (DocumentID = the unknown original's id); parking or refusing it is intake policy",
		status(orgC02, "01", descs["01"], &rf{organID: "000.00.00.C01", code: "404/VPTN-TH", date: "2026/01/01", docID: "000.00.00.C01,2026/01/01,404/VPTN-TH"}))

	// Tolerance cases.
	d = base()
	d.prefixedAtt = true
	add("tolerate-prefixed-attachment.edxml", "10", "accepted: prefixed edXML:AttachmentEncoded/edXML:Attachment", d.render())

	d = base()
	d.signature = "dsig"
	add("tolerate-xmldsig-signature.edxml", "11", "accepted: xmldsig# Signature with SigningTime; no placeholder warning", d.render())

	d = base()
	d.signature = "none"
	add("tolerate-no-signature.edxml", "12", "accepted: no Signature, no signature warning", d.render())
	add("tolerate-placeholder-signature.edxml", "12", "accepted; warning: placeholder signature", base().render())

	d = base()
	d.bizFirst = true
	d.signature = "none"
	d.traces = `        <edXML:TraceHeader>
          <edXML:OrganId>000.00.00.C01</edXML:OrganId>
          <edXML:Timestamp>2026/03/02 08:30:00</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:TraceHeader>
          <edXML:OrganId>02.29.W00</edXML:OrganId>
          <edXML:Timestamp>2026/03/02 08:30:02</edXML:Timestamp>
        </edXML:TraceHeader>
`
	add("tolerate-bussiness-before-traceheader.edxml", "13", "accepted: Bussiness before TraceHeader, axis hop 02.29.W00, no Signature", d.render())
	d = base()
	d.vpcpOrder = true
	add("tolerate-vpcp-element-order.edxml", "13", "accepted: VPCP hand-written order (DocumentId last)", d.render())

	d = base()
	d.rawRF = "        <edXML:ResponseFor/>\n        <edXML:ResponseFor>\n          <edXML:OrganId></edXML:OrganId>\n          <edXML:Code/>\n          <edXML:PromulgationDate> </edXML:PromulgationDate>\n          <edXML:DocumentId></edXML:DocumentId>\n        </edXML:ResponseFor>\n"
	add("tolerate-empty-responsefor.edxml", "14", "accepted: no ResponseFor in the model", d.render())

	d = base()
	a := pdfAtt()
	a.attCID = "201"
	b := attachment{id: "202", refCID: "202", name: "phu-luc.pdf", ct: "application/pdf", data: miniPDF("phu luc")}
	d.atts = []attachment{a, b}
	add("tolerate-cid-one-side.edxml", "15", "accepted: ContentId without cid: on one side; IDs 201, 202", d.render())

	d = base()
	d.to = []organ{
		{"G91", "Bộ Thử nghiệm Liên thông (giả lập)", "Chính phủ (giả lập)"},
		{"000.00.00.G91", "Bộ Thử nghiệm Liên thông (giả lập)", "TLTVBQG_CDMDD_QD20"},
		orgC02,
		orgC02,
	}
	add("tolerate-duplicate-to-qd20.edxml", "16", "accepted: To = G91, 000.00.00.G91, 000.00.00.C02 (exact duplicate dropped); warnings: QĐ20 marker, non-canonical G91, duplicate", d.render())

	d = base()
	d.traces = `        <edXML:TraceHeader>
          <edXML:Timestamp>2026/03/02 08:30:00</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:TraceHeader>
          <edXML:OrganId>null</edXML:OrganId>
          <edXML:Timestamp>2026/03/02 08:30:01</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:TraceHeader>
          <edXML:OrganId></edXML:OrganId>
          <edXML:Timestamp>2026/03/02 08:30:02</edXML:Timestamp>
        </edXML:TraceHeader>
`
	add("tolerate-traceheader-null.edxml", "17", "accepted: TraceHeader without OrganId, empty, and \"null\"", d.render())

	d = base()
	d.atts = []attachment{{id: "203", name: "BAOCAO.PDF", ct: "application/zip", refCT: "application/pdf",
		data: zipOf("5a0c7e42-9b1d-4f3e-8a2b-6c7d8e9f0a1b.PDF", miniPDF("bao cao"), true)}}
	add("tolerate-contenttype-disagreement.edxml", "18", "accepted: ContentType application/zip, sniffed application/zip; warning: manifest says application/pdf", d.render())

	d = base()
	d.atts = []attachment{
		{id: "204", name: "to-trinh.doc", ct: "application/doc", data: []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 synthetic OLE header only")},
		{id: "205", name: "du-thao.docx", ct: "application/docx", data: zipOf("word/document.xml", []byte("<w:document/>"), true)},
	}
	add("tolerate-nonstandard-content-types.edxml", "19", "accepted: application/doc (sniffed none), application/docx (sniffed zip), no warning", d.render())

	d = base()
	d.from = &organ{"H95.DN.001", "Doanh nghiệp Thử nghiệm (giả lập)", "UBND Tỉnh Mẫu Thử (giả lập)"}
	d.to = []organ{{"020100000000", "Công ty Mẫu (giả lập)", ""}, {"G91", "Bộ Thử nghiệm (mã cũ)", ""}}
	add("tolerate-noncanonical-organ-codes.edxml", "20", "accepted: From H95.DN.001, To 020100000000 and G91; warnings: 3 non-canonical codes", d.render())

	d = base()
	d.traceAttrs = ` id="TraceHeaderList" version="1.0" mustUnderstand="1" actor="http://schemas.xmlsoap.org/soap/actor/next"`
	d.signature = "none"
	d.extraHeader = "      <edXML:DigitalSignature/>\n"
	a = pdfAtt()
	a.refAttrs = ` xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:201" xlink:role="XLinkRole" xlink:type="simple"`
	d.atts = []attachment{a}
	add("tolerate-dotnet-attributes.edxml", "21", "accepted: .NET TraceHeaderList attributes, DigitalSignature, declared xlink attributes", d.render())

	d = base()
	d.crlf = true
	d.subject = "V/v đề nghị góp ý dự thảo Luật Thử nghiệm (sửa đổi) — “bản giả lập”"
	d.content = "Kính gửi: Ủy ban Thử nghiệm Số Hai. Đề nghị quý cơ quan nghiên cứu, góp ý bằng văn bản trước ngày 16/3/2026."
	d.bizReason = "Văn bản điện tử mới – gửi lần đầu"
	a = pdfAtt()
	a.name, a.wrap = "Tờ trình số 15 — bản ký số.pdf", true
	a.data = bytes.Repeat(miniPDF("to trinh"), 3)
	d.atts = []attachment{a}
	body := append([]byte("\xef\xbb\xbf"), d.render()...)
	body = append(body, "\r\n\r\n"...)
	add("tolerate-bom-trailing-newline-vietnamese.edxml", "22", "accepted: UTF-8 BOM, CRLF, trailing newlines, MIME-wrapped base64, Vietnamese free text; Raw keeps the BOM", body)

	d = base()
	d.atts = []attachment{{id: "206", name: "traversal.zip", ct: "application/zip",
		data: zipOf("../../etc/cron.d/thu-nghiem", []byte("synthetic"), false)}}
	add("warn-zip-path-traversal.edxml", "27", "accepted by Parse (it never unzips); warning: zip entry outside the archive", d.render())
	d = base()
	d.atts = []attachment{{id: "207", name: "bomb.zip", ct: "application/zip",
		data: zipOf("zeros.txt", make([]byte, 1<<20), true)}}
	add("warn-zip-bomb.edxml", "27", "accepted by Parse (it never unzips); warning: compression ratio", d.render())

	// Rejections.
	add("reject-stray-bytes.edxml", "23", "not_xml", append([]byte("1212"), base().render()...))
	d = base()
	a = pdfAtt()
	a.refAttrs = ` xlink:href=""`
	d.atts = []attachment{a}
	add("reject-unbound-xlink.edxml", "24", "not_xml", d.render())
	d = base()
	d.decl = `<?xml version="1.0" encoding="ISO-8859-1"?>`
	d.subject = "V/v thu nghiem (ASCII only)"
	d.content = "ASCII only"
	add("reject-encoding-iso-8859-1.edxml", "25", "bad_encoding", toASCII(d.render()))
	add("reject-invalid-utf8.edxml", "25", "bad_encoding", bytes.Replace(base().render(), []byte("V/v thử"), []byte("V/v th\xfd"), 1))
	d = base()
	d.atts = []attachment{pdfAtt(), {id: "208", name: "thieu.pdf", ct: "application/pdf", data: miniPDF("x"), noAtt: true}}
	add("reject-reference-without-attachment.edxml", "26", "manifest_mismatch", d.render())
	d = base()
	d.atts = []attachment{pdfAtt(), {id: "209", name: "thua.pdf", ct: "application/pdf", data: miniPDF("x"), noRef: true}}
	add("reject-attachment-without-reference.edxml", "26", "manifest_mismatch", d.render())
	d = base()
	a = pdfAtt()
	a.b64 = "JVBERi0xLjQK*** not base64 ***"
	d.atts = []attachment{a}
	add("reject-bad-base64.edxml", "27", "bad_base64", d.render())
	d = base()
	d.from = &organ{"", "Đơn vị không mã", ""}
	add("reject-no-from.edxml", "28", "missing_from", d.render())
	d = base()
	d.to = nil
	add("reject-no-to.edxml", "28", "missing_to", d.render())
	d = base()
	d.docID = "-"
	add("reject-no-document-id.edxml", "28", "missing_document_id", d.render())
	d = base()
	d.to = []organ{{"000.00.00 C02", "Mã có khoảng trắng", ""}}
	add("reject-bad-organ-code.edxml", "20", "bad_organ_code", d.render())
	d = base()
	d.extraMsg = "        <edXML:Deep>" + strings.Repeat("<edXML:L>", 80) + strings.Repeat("</edXML:L>", 80) + "</edXML:Deep>\n"
	add("reject-too-deep.edxml", "29", "too_deep (default MaxDepth 64)", d.render())
	d = base()
	d.bizType = "7"
	add("reject-bad-business-type.edxml", "—", "bad_business_type", d.render())
	d = base()
	d.bizType = "1"
	add("reject-revocation-without-responsefor.edxml", "3", "bad_business_type", d.render())
	d = base()
	d.bizType = "2"
	add("reject-update-without-documentid.edxml", "4", "bad_business_type", d.render())
	add("reject-status-unknown-code.edxml", "8", "bad_status", status(orgC02, "07", "Mã trạng thái không tồn tại", &origRF))
	add("reject-status-no-responsefor.edxml", "8", "bad_status", status(orgC02, "03", descs["03"], nil))
	add("reject-doctype-entities.edxml", "—", "not_xml (DOCTYPE/entity declarations: XXE and billion laughs)",
		[]byte(strings.Replace(string(base().render()), "<edXML ", "<!DOCTYPE edXML [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\n<edXML ", 1)))
	add("reject-unknown-envelope-2803.edxml", "—", "unknown_envelope (old SOAP 2803 format)", []byte(`<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:edXML="http://www.e-doc.vn/Schema/">
  <SOAP-ENV:Header><edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.00.C01</edXML:OrganId></edXML:From></edXML:MessageHeader></SOAP-ENV:Header>
  <SOAP-ENV:Body/>
</SOAP-ENV:Envelope>
`))
	return fs
}

// toASCII replaces non-ASCII letters with '?', so that the ISO-8859-1 fixture
// is valid UTF-8 too and only its declaration is wrong.
func toASCII(b []byte) []byte {
	var out []byte
	for _, r := range string(b) {
		if r < 0x80 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

func main() {
	edDir := flag.String("edxml", "../testdata/edxml", "edXML fixture directory")
	hubDir := flag.String("hub", "../testdata/hub", "hub envelope fixture directory")
	flag.Parse()

	fs := fixtures()
	var readme strings.Builder
	readme.WriteString(`# testdata/edxml

Synthetic edXML (QCVN 102:2016) packages for the envelope parser, written from the skeletons of
` + "`/work/shared/reference/edxml.md`" + ` (§4.1, §8.1) and its list of test vectors (§14). Every organ, person and
attachment is made up: organ codes use the National Assembly letter C (` + "`000.00.00.C01`, `000.00.00.C02`" + `) and
G/H codes outside the ranges in use (` + "`G91`, `H95`" + `); attachments are a tiny PDF and small zips built with
Go's archive/zip.

Regenerate with ` + "`go generate ./envelope`" + ` (command ` + "`envelope/internal/genfixtures`" + `). The expected outcomes
below are asserted by ` + "`envelope/parse_test.go`" + ` (TestFixtures), which fails if a file here has no expectation.

Oversized packages (§14 item 29) are tested with a small ` + "`Limits.MaxBytes`" + ` rather than a 32 MiB file.
Zip bombs and path traversal (item 27) are the unzip stage's to refuse: Parse never unzips, it only
warns about what the zip's central directory (kept from the last 16 KiB of the decoded attachment)
announces: entry names outside the archive and an overall compression ratio of 100:1 or more.

| file | §14 | expected outcome |
|---|---|---|
`)
	for _, f := range fs {
		if err := os.WriteFile(filepath.Join(*edDir, f.file), f.body, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(&readme, "| `%s` | %s | %s |\n", f.file, f.item, f.outcome)
	}
	if err := os.WriteFile(filepath.Join(*edDir, "README.md"), []byte(readme.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	h := envelope.HubHeader{
		From:        envelope.Organ{Code: "000.00.00.C01", Name: "Văn phòng Thử nghiệm Quốc hội (giả lập)"},
		To:          []envelope.Organ{{Code: "000.00.00.C02", Name: "Ủy ban Thử nghiệm Số Hai (giả lập)"}},
		DocumentID:  "000.00.00.C01,2026/03/02,30/VPTN-AKN",
		Subject:     "Bản ghi Akoma Ntoso thử nghiệm (giả lập)",
		ResponseFor: origDocID,
		Created:     fixedTime,
	}
	akn := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0">
    <doc name="thu-nghiem">
      <meta>
        <identification source="#lienthong">
          <FRBRWork><FRBRthis value="/akn/vn/doc/2026-03-02/30/!main"/><FRBRuri value="/akn/vn/doc/2026-03-02/30"/><FRBRdate date="2026-03-02" name="Generation"/><FRBRauthor href="#lienthong"/><FRBRcountry value="vn"/></FRBRWork>
        </identification>
      </meta>
      <mainBody><p>Văn bản thử nghiệm (giả lập).</p></mainBody>
    </doc>
  </akomaNtoso>`)
	out, err := envelope.BuildHubEnvelope(h, "application/akn+xml", akn, true)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*hubDir, "akn-inline.xml"), out, 0o644); err != nil {
		log.Fatal(err)
	}
	h.DocumentID, h.Subject, h.ResponseFor = "000.00.00.C01,2026/03/02,31/VPTN-TH", "Tệp PDF thử nghiệm (giả lập)", ""
	out, err = envelope.BuildHubEnvelope(h, "application/pdf", miniPDF("hub payload"), false)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*hubDir, "pdf-base64.xml"), out, 0o644); err != nil {
		log.Fatal(err)
	}
}
