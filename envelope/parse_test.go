package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const fixtureDir = "../testdata/edxml"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	c01 = "000.00.00.C01"
	c02 = "000.00.00.C02"
	g91 = "000.00.00.G91"

	origID   = "000.00.00.C01,2026/02/20,9/VPTN-TH"
	pdfCID   = "201:application/pdf:application/pdf"
	sigWarn  = "signature: placeholder (not in the xmldsig namespace)"
	stdDocID = "000.00.00.C01,2026/03/02,15/VPTN-TH"
)

// want is the expected outcome of one fixture.
type want struct {
	code    Code // rejection, or "" when accepted
	format  Format
	from    string
	to      []string
	docID   string
	biz     int
	nRF     int
	status  string
	atts    []string // ContentID:ContentType:Sniffed
	warn    []string // substrings that must appear among the warnings
	noWarns bool     // no warning at all
}

func doc1(w want) want {
	if w.format == "" {
		w.format = FormatEdXML
	}
	if w.from == "" {
		w.from = c01
	}
	if w.to == nil {
		w.to = []string{c02}
	}
	if w.docID == "" {
		w.docID = stdDocID
	}
	if w.atts == nil {
		w.atts = []string{pdfCID}
	}
	return w
}

func st(code string, from, to string) want {
	return want{format: FormatEdXMLStatus, from: from, to: []string{to}, docID: origID, nRF: 1, status: code, atts: []string{}, noWarns: true}
}

var fixtureWants = map[string]want{
	"new-1-recipient-pdf.edxml":  doc1(want{warn: []string{sigWarn}}),
	"new-2-recipients-zip.edxml": doc1(want{to: []string{c02, g91}, atts: []string{"202:application/zip:application/zip"}}),
	"revocation.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,16/VPTN-TH", biz: 1, nRF: 1}),
	"update.edxml":               doc1(want{docID: "000.00.00.C01,2026/03/02,17/VPTN-TH", biz: 2}),
	"replacement.edxml":          doc1(want{docID: "000.00.00.C01,2026/03/02,18/VPTN-TH", biz: 3}),
	"reply-2-responsefor.edxml":  doc1(want{docID: "000.00.00.C01,2026/03/02,19/VPTN-TH", nRF: 2}),
	"priority-0.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,20/VPTN-TH"}),
	"priority-1.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,21/VPTN-TH"}),
	"priority-2.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,22/VPTN-TH"}),
	"priority-3.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,23/VPTN-TH"}),
	"priority-4.edxml":           doc1(want{docID: "000.00.00.C01,2026/03/02,24/VPTN-TH"}),

	"status-01.edxml": st("01", c02, c01),
	"status-02.edxml": st("02", c02, c01),
	"status-03.edxml": st("03", c02, c01),
	"status-04.edxml": st("04", c02, c01),
	"status-05.edxml": st("05", c02, c01),
	"status-06.edxml": st("06", c02, c01),
	"status-13.edxml": st("13", c01, c02),
	"status-15.edxml": st("15", c02, c01),
	"status-16.edxml": st("16", c02, c01),
	"status-unknown-original.edxml": func() want {
		w := st("01", c02, c01)
		w.docID = "000.00.00.C01,2026/01/01,404/VPTN-TH"
		return w
	}(),

	"tolerate-prefixed-attachment.edxml":          doc1(want{warn: []string{sigWarn}}),
	"tolerate-xmldsig-signature.edxml":            doc1(want{noWarns: true}),
	"tolerate-no-signature.edxml":                 doc1(want{noWarns: true}),
	"tolerate-placeholder-signature.edxml":        doc1(want{warn: []string{sigWarn}}),
	"tolerate-bussiness-before-traceheader.edxml": doc1(want{noWarns: true}),
	"tolerate-vpcp-element-order.edxml":           doc1(want{}),
	"tolerate-empty-responsefor.edxml":            doc1(want{nRF: 0}),
	"tolerate-cid-one-side.edxml":                 doc1(want{atts: []string{pdfCID, "202:application/pdf:application/pdf"}}),
	"tolerate-duplicate-to-qd20.edxml": doc1(want{to: []string{"G91", g91, c02},
		warn: []string{QD20Marker, `"G91" is not canonical`, `duplicate recipient "000.00.00.C02"`}}),
	"tolerate-traceheader-null.edxml": doc1(want{}),
	"tolerate-contenttype-disagreement.edxml": doc1(want{atts: []string{"203:application/zip:application/zip"},
		warn: []string{`manifest ContentType "application/pdf"`}}),
	"tolerate-nonstandard-content-types.edxml": doc1(want{atts: []string{"204:application/doc:", "205:application/docx:application/zip"}}),
	"tolerate-noncanonical-organ-codes.edxml": doc1(want{from: "H95.DN.001", to: []string{"020100000000", "G91"},
		docID: "H95.DN.001,2026/03/02,15/VPTN-TH", warn: []string{`"H95.DN.001" is not canonical`, `"020100000000" is not canonical`, `"G91" is not canonical`}}),
	"tolerate-dotnet-attributes.edxml":               doc1(want{noWarns: true}),
	"tolerate-bom-trailing-newline-vietnamese.edxml": doc1(want{}),
	"warn-zip-path-traversal.edxml":                  doc1(want{atts: []string{"206:application/zip:application/zip"}, warn: []string{"points outside the archive"}}),
	"warn-zip-bomb.edxml":                            doc1(want{atts: []string{"207:application/zip:application/zip"}, warn: []string{"possible zip bomb"}}),

	"reject-stray-bytes.edxml":                    {code: CodeNotXML},
	"reject-unbound-xlink.edxml":                  {code: CodeNotXML},
	"reject-encoding-iso-8859-1.edxml":            {code: CodeBadEncoding},
	"reject-invalid-utf8.edxml":                   {code: CodeBadEncoding},
	"reject-reference-without-attachment.edxml":   {code: CodeManifest},
	"reject-attachment-without-reference.edxml":   {code: CodeManifest},
	"reject-bad-base64.edxml":                     {code: CodeBadBase64},
	"reject-no-from.edxml":                        {code: CodeMissingFrom},
	"reject-no-to.edxml":                          {code: CodeMissingTo},
	"reject-no-document-id.edxml":                 {code: CodeMissingDocID},
	"reject-bad-organ-code.edxml":                 {code: CodeBadOrganCode},
	"reject-too-deep.edxml":                       {code: CodeTooDeep},
	"reject-bad-business-type.edxml":              {code: CodeBadBusiness},
	"reject-revocation-without-responsefor.edxml": {code: CodeBadBusiness},
	"reject-update-without-documentid.edxml":      {code: CodeBadBusiness},
	"reject-status-unknown-code.edxml":            {code: CodeBadStatus},
	"reject-status-no-responsefor.edxml":          {code: CodeBadStatus},
	"reject-doctype-entities.edxml":               {code: CodeNotXML},
	"reject-unknown-envelope-2803.edxml":          {code: CodeUnknownEnvelope},
}

func TestFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.edxml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			w, ok := fixtureWants[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation in fixtureWants", name)
			}
			raw := readFixture(t, name)
			orig := bytes.Clone(raw)
			d, err := Parse(raw, Limits{})
			if !bytes.Equal(raw, orig) {
				t.Fatal("Parse modified its input")
			}
			if w.code != "" {
				if CodeOf(err) != w.code {
					t.Fatalf("err = %v, want code %s", err, w.code)
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, &Error{Code: w.code}) {
					t.Fatalf("err %T does not match *Error{Code: %s}", err, w.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkDoc(t, d, raw, w)
		})
	}
	for name := range fixtureWants {
		if !seen[name] {
			t.Errorf("expectation for %s, but no such fixture", name)
		}
	}
}

func checkDoc(t *testing.T, d *Document, raw []byte, w want) {
	t.Helper()
	if len(d.Raw) != len(raw) || (len(raw) > 0 && &d.Raw[0] != &raw[0]) {
		t.Error("Raw is not the input slice")
	}
	if d.Format != w.format {
		t.Errorf("Format = %q, want %q", d.Format, w.format)
	}
	if d.From.Code != w.from {
		t.Errorf("From = %q, want %q", d.From.Code, w.from)
	}
	var to []string
	for _, o := range d.To {
		to = append(to, o.Code)
	}
	if !slices.Equal(to, w.to) {
		t.Errorf("To = %q, want %q", to, w.to)
	}
	if d.DocumentID != w.docID {
		t.Errorf("DocumentID = %q, want %q", d.DocumentID, w.docID)
	}
	if d.BusinessDocType != w.biz {
		t.Errorf("BusinessDocType = %d, want %d", d.BusinessDocType, w.biz)
	}
	if len(d.ResponseFor) != w.nRF {
		t.Errorf("len(ResponseFor) = %d, want %d: %+v", len(d.ResponseFor), w.nRF, d.ResponseFor)
	}
	if w.status != "" {
		if d.Status == nil || d.Status.Code != w.status || d.Status.Description == "" || d.Status.Timestamp == "" {
			t.Errorf("Status = %+v, want code %s with description and timestamp", d.Status, w.status)
		}
	} else if d.Status != nil {
		t.Errorf("Status = %+v, want nil", d.Status)
	}
	atts := []string{}
	for _, a := range d.Attachments {
		atts = append(atts, a.ContentID+":"+a.ContentType+":"+a.Sniffed)
		if len(a.SHA256) != 64 || a.Size <= 0 {
			t.Errorf("attachment %s: size %d, sha256 %q", a.ContentID, a.Size, a.SHA256)
		}
	}
	if !slices.Equal(atts, w.atts) {
		t.Errorf("Attachments = %q, want %q", atts, w.atts)
	}
	all := strings.Join(d.Warnings, "\n")
	for _, s := range w.warn {
		if !strings.Contains(all, s) {
			t.Errorf("no warning containing %q in %q", s, d.Warnings)
		}
	}
	if w.noWarns && len(d.Warnings) > 0 {
		t.Errorf("unexpected warnings %q", d.Warnings)
	}
}

// TestAttachmentDigest checks size and SHA-256 against the decoded bytes.
func TestAttachmentDigest(t *testing.T) {
	raw := readFixture(t, "tolerate-bom-trailing-newline-vietnamese.edxml") // MIME-wrapped base64
	d, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b64 := between(t, raw, "<edXML:ContentTransferEncoded", "</edXML:ContentTransferEncoded>")
	dec, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(dec)
	a := d.Attachments[0]
	if a.Size != int64(len(dec)) || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("attachment = %d %s, want %d %x", a.Size, a.SHA256, len(dec), sum)
	}
	if a.Name != "Tờ trình số 15 — bản ký số.pdf" {
		t.Errorf("Name = %q", a.Name)
	}
}

// between returns the text of the first element starting with open.
func between(t testing.TB, raw []byte, open, end string) []byte {
	t.Helper()
	i := bytes.Index(raw, []byte(open))
	if i < 0 {
		t.Fatalf("no %s", open)
	}
	i += bytes.IndexByte(raw[i:], '>') + 1
	j := bytes.Index(raw[i:], []byte(end))
	return raw[i : i+j]
}

// withAttachment replaces the first attachment's base64 text with data.
func withAttachment(t testing.TB, raw []byte, b64 string) []byte {
	t.Helper()
	old := between(t, raw, "<edXML:ContentTransferEncoded", "</edXML:ContentTransferEncoded>")
	i := bytes.Index(raw, old)
	out := append([]byte(nil), raw[:i]...)
	out = append(out, b64...)
	return append(out, raw[i+len(old):]...)
}

func TestBOMAndTrailingWhitespace(t *testing.T) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	for name, raw := range map[string][]byte{
		"bom":           append([]byte("\xef\xbb\xbf"), base...),
		"trailing":      append(bytes.Clone(base), "\n\n \t\r\n"...),
		"bom+trailing":  append(append([]byte("\xef\xbb\xbf"), base...), '\n'),
		"no-newline":    bytes.TrimRight(base, "\n"),
		"no-decl":       base[bytes.IndexByte(base, '\n')+1:],
		"comment-after": append(bytes.Clone(base), "<!-- đã nhận -->\n"...),
	} {
		d, err := Parse(raw, Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if &d.Raw[0] != &raw[0] || len(d.Raw) != len(raw) {
			t.Errorf("%s: Raw is not the input", name)
		}
	}
}

func TestVietnameseText(t *testing.T) {
	d, err := Parse(readFixture(t, "tolerate-bom-trailing-newline-vietnamese.edxml"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "V/v đề nghị góp ý dự thảo Luật Thử nghiệm (sửa đổi) — “bản giả lập”"; d.Subject != want {
		t.Errorf("Subject = %q, want %q", d.Subject, want)
	}
	if d.From.Name != "Văn phòng Thử nghiệm Quốc hội (giả lập)" || d.CodeNotation != "VPTN-TH" || d.CodeNumber != "15" {
		t.Errorf("From.Name %q, Code %q/%q", d.From.Name, d.CodeNumber, d.CodeNotation)
	}
	if d.PromulgationDate != "2026/03/02" || d.DueDate != "2026/03/16" {
		t.Errorf("dates %q %q", d.PromulgationDate, d.DueDate)
	}
}

func TestDuplicateTo(t *testing.T) {
	d, err := Parse(readFixture(t, "tolerate-duplicate-to-qd20.edxml"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.To) != 3 || d.To[2].Code != c02 {
		t.Fatalf("To = %+v", d.To)
	}
	n := 0
	for _, w := range d.Warnings {
		if strings.Contains(w, "duplicate recipient") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d duplicate warnings in %q", n, d.Warnings)
	}
}

func TestContentTypeSniffing(t *testing.T) {
	d, err := Parse(readFixture(t, "tolerate-contenttype-disagreement.edxml"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a := d.Attachments[0]
	if a.Sniffed != "application/zip" || a.ContentType != "application/zip" {
		t.Errorf("attachment %+v", a)
	}
	// A zip declared as PDF everywhere: the sniffed type wins in the report.
	raw := bytes.ReplaceAll(readFixture(t, "tolerate-contenttype-disagreement.edxml"), []byte("application/zip"), []byte("application/pdf"))
	d, err = Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.Warnings, "\n"), `declared "application/pdf" but the content is application/zip`) {
		t.Errorf("warnings %q", d.Warnings)
	}
}

func TestContentIDPrefix(t *testing.T) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	for name, repl := range map[string][2]string{
		"none":       {"cid:201", "201"},
		"upper":      {"cid:201", "CID:201"},
		"spaces":     {"cid:201", "  cid:201 "},
		"angle":      {"cid:201", "cid:&lt;201&gt;"},
		"one-side":   {"<edXML:ContentId>cid:201", "<edXML:ContentId>201"},
		"other-side": {"<ContentId>cid:201", "<ContentId>201"},
	} {
		raw := bytes.ReplaceAll(base, []byte(repl[0]), []byte(repl[1]))
		if name == "one-side" || name == "other-side" {
			raw = bytes.Replace(base, []byte(repl[0]), []byte(repl[1]), 1)
		}
		d, err := Parse(raw, Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.Attachments[0].ContentID != "201" {
			t.Errorf("%s: ContentID %q", name, d.Attachments[0].ContentID)
		}
	}
	raw := bytes.Replace(base, []byte("<ContentId>cid:201"), []byte("<ContentId>cid:999"), 1)
	if _, err := Parse(raw, Limits{}); CodeOf(err) != CodeManifest {
		t.Errorf("different ContentId: %v", err)
	}
}

func TestLimits(t *testing.T) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	two := readFixture(t, "tolerate-cid-one-side.edxml")
	deep := readFixture(t, "reject-too-deep.edxml")
	cases := []struct {
		name string
		raw  []byte
		lim  Limits
		want Code
	}{
		{"max-bytes", base, Limits{MaxBytes: 1000}, CodeTooLarge},
		{"max-bytes-exact", base, Limits{MaxBytes: int64(len(base))}, ""},
		{"max-bytes-one-less", base, Limits{MaxBytes: int64(len(base)) - 1}, CodeTooLarge},
		{"default-depth", deep, Limits{}, CodeTooDeep},
		{"raised-depth", deep, Limits{MaxDepth: 100}, ""},
		{"low-depth", base, Limits{MaxDepth: 5}, CodeTooDeep},
		{"max-attachments", two, Limits{MaxAttachments: 1}, CodeTooLarge},
		{"max-attachments-ok", two, Limits{MaxAttachments: 2}, ""},
		{"max-attachment-bytes", base, Limits{MaxAttachmentBytes: 100}, CodeTooLarge},
		{"max-attachment-bytes-ok", base, Limits{MaxAttachmentBytes: 214}, ""},
	}
	for _, c := range cases {
		_, err := Parse(c.raw, c.lim)
		if CodeOf(err) != c.want {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if d := DefaultLimits(); d.MaxBytes != 32<<20 || d.MaxDepth != 64 || d.MaxAttachments <= 0 {
		t.Errorf("DefaultLimits = %+v", d)
	}
}

func TestWellFormedness(t *testing.T) {
	base := string(readFixture(t, "new-1-recipient-pdf.edxml"))
	body := base[strings.IndexByte(base, '\n')+1:]
	cases := []struct {
		name string
		raw  string
		want Code
	}{
		{"empty", "", CodeNotXML},
		{"whitespace", " \n", CodeNotXML},
		{"leading-newline", "\n" + base, CodeNotXML},
		{"leading-space-no-decl", "  " + body, ""},
		{"decl-twice", base[:strings.IndexByte(base, '\n')+1] + base, CodeNotXML},
		{"stray-after", base + "1212", CodeNotXML},
		{"second-root", base + "<edXML/>", CodeNotXML},
		{"truncated", base[:len(base)/2], CodeNotXML},
		{"mismatch", strings.Replace(base, "</edXML:Subject>", "</edXML:Subjec>", 1), CodeNotXML},
		{"unbound-element", strings.Replace(base, "<edXML:Content>", "<x:Content>", 1), CodeNotXML},
		{"unknown-entity", strings.Replace(base, "Hà Nội", "&nbsp;", 1), CodeNotXML},
		{"known-entity", strings.Replace(base, "Hà Nội", "H&#224; N&#x1ed9;i &amp; &lt;", 1), ""},
		{"dup-attr", strings.Replace(base, `version="1.0">`, `version="1.0" version="1.0">`, 1), CodeDuplicateAttr},
		{"empty-prefix-binding", strings.Replace(base, "<edXML:Subject>", `<edXML:Subject xmlns:p="">`, 1), CodeNotXML},
		{"utf16-bom", "\xff\xfe<\x00", CodeBadEncoding},
		{"latin1-decl", strings.Replace(base, "UTF-8", "windows-1258", 1), CodeBadEncoding},
		{"utf8-lower", strings.Replace(base, "UTF-8", "utf-8", 1), ""},
		{"xml11", strings.Replace(base, `version="1.0" encoding`, `version="1.1" encoding`, 1), CodeNotXML},
		{"doctype-xxe", `<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "file:///etc/passwd">` + body, CodeNotXML},
		{"control-char", strings.Replace(base, "Hà Nội", "H\x01", 1), CodeNotXML},
		{"not-edxml", `<?xml version="1.0"?><root xmlns="urn:x"/>`, CodeUnknownEnvelope},
		{"edxml-wrong-ns", strings.Replace(base, `<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">`, `<edXML xmlns="http://www.go.vn/eDoc">`, 1), CodeUnknownEnvelope},
		{"nested-cdata-text", strings.Replace(base, "Hà Nội", "<![CDATA[Hà <Nội>]]>", 1), ""},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.raw), Limits{})
		if CodeOf(err) != c.want || (c.want == "" && err != nil) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestBase64Variants(t *testing.T) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	enc := string(between(t, base, "<edXML:ContentTransferEncoded", "</edXML:ContentTransferEncoded>"))
	ref, err := Parse(base, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantSum := ref.Attachments[0].SHA256
	var refs strings.Builder // every character as a character reference: the slow path
	for _, c := range enc[:8] {
		refs.WriteString("&#" + string(rune('0'+c/100)) + string(rune('0'+c/10%10)) + string(rune('0'+c%10)) + ";")
	}
	refs.WriteString(enc[8:])
	ok := map[string]string{
		"wrapped":    wrapB64(enc, 76, "\r\n"),
		"indented":   "\n        " + wrapB64(enc, 64, "\n        "),
		"unpadded":   strings.TrimRight(enc, "="),
		"cdata":      "<![CDATA[" + enc + "]]>",
		"split":      enc[:10] + "<!-- c -->" + enc[10:],
		"char-refs":  refs.String(),
		"tabs":       "\t" + enc + "\t",
		"chunk-edge": enc, // exercised by the big benchmark documents too
	}
	for name, b64 := range ok {
		d, err := Parse(withAttachment(t, base, b64), Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.Attachments[0].SHA256 != wantSum {
			t.Errorf("%s: sha256 %s, want %s", name, d.Attachments[0].SHA256, wantSum)
		}
	}
	bad := map[string]string{
		"pad-middle":  enc[:8] + "==" + enc[8:],
		"three-pads":  strings.TrimRight(enc, "=") + "===",
		"url-safe":    strings.NewReplacer("+", "-", "/", "_").Replace(enc) + "-_",
		"junk":        enc + "!",
		"single-char": "Q",
	}
	for name, b64 := range bad {
		if _, err := Parse(withAttachment(t, base, b64), Limits{}); CodeOf(err) != CodeBadBase64 {
			t.Errorf("%s: err = %v, want bad_base64", name, err)
		}
	}
	// Empty content is accepted, with a warning-free empty digest.
	d, err := Parse(withAttachment(t, base, ""), Limits{})
	if err != nil || d.Attachments[0].Size != 0 || d.Attachments[0].SHA256 != emptySHA256 {
		t.Errorf("empty attachment: %v %+v", err, d)
	}
}

func wrapB64(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + sep)
		s = s[n:]
	}
	return b.String() + s
}

func TestBigAttachment(t *testing.T) {
	raw, data := bigDoc(t, 2<<20)
	d, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if a := d.Attachments[0]; a.Size != int64(len(data)) || a.SHA256 != hex.EncodeToString(sum[:]) || a.Sniffed != "application/pdf" {
		t.Errorf("attachment %+v", a)
	}
}

// bigDoc returns the one-PDF fixture with an attachment making it about size bytes.
func bigDoc(t testing.TB, size int) ([]byte, []byte) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	n := (size - len(base)) * 3 / 4
	data := make([]byte, 0, n)
	data = append(data, "%PDF-1.4\n"...)
	for i := 0; len(data) < n; i++ {
		data = append(data, "% Lienthong benchmark padding: văn bản thử nghiệm "...)
		data = append(data, byte('0'+i%10), '\n')
	}
	return withAttachment(t, base, base64.StdEncoding.EncodeToString(data)), data
}

func TestValidateOrganCode(t *testing.T) {
	cases := []struct {
		code      string
		canonical bool
		bad       bool
	}{
		{"000.00.00.C01", true, false},
		{"000.00.00.G22", true, false},
		{"001.00.10.H47", true, false},
		{"999.010.01.H22", false, false},
		{"H37.DN.001", false, false},
		{"020100107370", false, false},
		{"G12", false, false},
		{"02.29.W00", false, false},
		{"vxp.saas.03", false, false},
		{"000.00.00.c01", false, false},
		{strings.Repeat("1", 35), false, false},
		{strings.Repeat("1", 36), false, true},
		{"", false, true},
		{"000.00.00 C01", false, true},
		{" 000.00.00.C01", false, true},
		{"000.00.00.C01\n", false, true},
		{"000-00-00-C01", false, true},
		{"000..00.C01", false, true},
		{".C01", false, true},
		{"C01.", false, true},
		{"Đ01", false, true},
		{"null", false, false},
	}
	for _, c := range cases {
		canon, err := ValidateOrganCode(c.code)
		if (err != nil) != c.bad || canon != c.canonical {
			t.Errorf("ValidateOrganCode(%q) = %v, %v; want canonical %v, bad %v", c.code, canon, err, c.canonical, c.bad)
		}
		if c.bad && CodeOf(err) != CodeBadOrganCode {
			t.Errorf("ValidateOrganCode(%q): code %q", c.code, CodeOf(err))
		}
		if IsCanonicalOrganCode(c.code) != c.canonical {
			t.Errorf("IsCanonicalOrganCode(%q) != %v", c.code, c.canonical)
		}
	}
}

func TestStatusPackage(t *testing.T) {
	base := readFixture(t, "status-05.edxml")
	d, err := Parse(base, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantRF := []ResponseFor{{OrganID: c01, Code: "9/VPTN-TH", PromulgationDate: "2026/02/20", DocumentID: origID}}
	if !reflect.DeepEqual(d.ResponseFor, wantRF) || d.Status.Timestamp != "2026/03/02 10:05:11" {
		t.Errorf("ResponseFor %+v, Status %+v", d.ResponseFor, d.Status)
	}
	for name, c := range map[string]struct {
		old, new string
		want     Code
	}{
		"no-rf-organ":  {"<edXML:OrganId>000.00.00.C01</edXML:OrganId>", "<edXML:OrganId/>", CodeBadStatus},
		"no-rf-doc":    {"<edXML:DocumentId>" + origID + "</edXML:DocumentId>", "", CodeBadStatus},
		"bad-rf-organ": {"<edXML:OrganId>000.00.00.C01</edXML:OrganId>", "<edXML:OrganId>C 01</edXML:OrganId>", CodeBadOrganCode},
		"one-digit":    {"<edXML:StatusCode>05", "<edXML:StatusCode>5", CodeBadStatus},
		"empty-code":   {"<edXML:StatusCode>05", "<edXML:StatusCode>", CodeBadStatus},
		"no-from":      {"<edXML:OrganId>000.00.00.C02</edXML:OrganId>", "", CodeMissingFrom},
		"spaces-ok":    {"<edXML:StatusCode>05", "<edXML:StatusCode> 05 ", ""},
	} {
		_, err := Parse(bytes.Replace(base, []byte(c.old), []byte(c.new), 1), Limits{})
		if CodeOf(err) != c.want || (c.want == "" && err != nil) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestBusinessTypes(t *testing.T) {
	base := readFixture(t, "new-1-recipient-pdf.edxml")
	for val, want := range map[string]Code{"0": "", " 3 ": "", "": "", "-1": CodeBadBusiness, "4": CodeBadBusiness, "x": CodeBadBusiness, "1": CodeBadBusiness, "2": CodeBadBusiness} {
		raw := bytes.Replace(base, []byte("<edXML:BussinessDocType>0<"), []byte("<edXML:BussinessDocType>"+val+"<"), 1)
		_, err := Parse(raw, Limits{})
		if CodeOf(err) != want || (want == "" && err != nil) {
			t.Errorf("BussinessDocType %q: err = %v, want %q", val, err, want)
		}
	}
	d, err := Parse(readFixture(t, "update.edxml"), Limits{})
	if err != nil || d.BusinessDocumentID != origID {
		t.Errorf("update: %v %q", err, d.BusinessDocumentID)
	}
}
