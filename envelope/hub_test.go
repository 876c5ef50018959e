package envelope

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testHubHeader = HubHeader{
	From:        Organ{Code: "000.00.00.C01", Name: "Văn phòng Thử nghiệm (giả lập)"},
	To:          []Organ{{Code: "000.00.00.C02"}, {Code: "H95.DN.001", Name: "Doanh nghiệp <Mẫu> & Con"}},
	DocumentID:  "000.00.00.C01,2026/03/02,40/VPTN-AKN",
	Subject:     "Bản ghi thử nghiệm “giả lập”",
	ResponseFor: "000.00.00.C02,2026/02/01,3/UBTN",
	Created:     time.Date(2026, 3, 2, 15, 4, 5, 0, time.FixedZone("ICT", 7*3600)),
}

const aknPayload = `<?xml version="1.0" encoding="UTF-8"?>
<an:akomaNtoso xmlns:an="http://docs.oasis-open.org/legaldocml/ns/akn/3.0"><an:doc name="x"><an:mainBody><an:p>Điều 1.</an:p><plain/></an:mainBody></an:doc></an:akomaNtoso>`

func TestBuildHubEnvelope(t *testing.T) {
	inline, err := BuildHubEnvelope(testHubHeader, "application/akn+xml", []byte(aknPayload), true)
	if err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.4\n% giả lập\n%%EOF\n")
	b64, err := BuildHubEnvelope(testHubHeader, "application/pdf", pdf, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"inline": inline, "base64": b64} {
		d, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Format != FormatHub || d.From != testHubHeader.From || len(d.To) != 2 || d.To[1] != testHubHeader.To[1] ||
			d.DocumentID != testHubHeader.DocumentID || d.Subject != testHubHeader.Subject ||
			len(d.ResponseFor) != 1 || d.ResponseFor[0].DocumentID != testHubHeader.ResponseFor {
			t.Errorf("%s: %+v", name, d)
		}
		if !strings.Contains(string(raw), "<lt:Created>2026-03-02T08:04:05Z</lt:Created>") {
			t.Errorf("%s: Created not in UTC", name)
		}
		if !strings.Contains(strings.Join(d.Warnings, "\n"), `"H95.DN.001" is not canonical`) {
			t.Errorf("%s: warnings %q", name, d.Warnings)
		}
	}
	d, _ := Parse(b64, Limits{})
	if d.PayloadType != "application/pdf" || len(d.Attachments) != 1 || d.Attachments[0].Sniffed != "application/pdf" ||
		d.Attachments[0].Size != int64(len(pdf)) {
		t.Errorf("base64 payload: %+v", d.Attachments)
	}
	d, _ = Parse(inline, Limits{})
	if d.PayloadType != "application/akn+xml" || len(d.Attachments) != 0 {
		t.Errorf("inline payload: %q %+v", d.PayloadType, d.Attachments)
	}
	if bytes.Contains(inline, []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<an:")) {
		t.Error("the payload's XML declaration was kept")
	}
	xmllint(t, writeTemp(t, "inline.xml", inline), writeTemp(t, "base64.xml", b64))
}

func TestBuildHubEnvelopeErrors(t *testing.T) {
	h := testHubHeader
	cases := []struct {
		name    string
		mod     func(h *HubHeader)
		payload string
		inline  bool
		want    Code // "" = any error
	}{
		{"no-from", func(h *HubHeader) { h.From = Organ{} }, aknPayload, true, CodeMissingFrom},
		{"no-to", func(h *HubHeader) { h.To = nil }, aknPayload, true, CodeMissingTo},
		{"no-id", func(h *HubHeader) { h.DocumentID = "" }, aknPayload, true, CodeMissingDocID},
		{"bad-organ", func(h *HubHeader) { h.To = []Organ{{Code: "a b"}} }, aknPayload, true, CodeBadOrganCode},
		{"no-created", func(h *HubHeader) { h.Created = time.Time{} }, aknPayload, true, ""},
		{"not-xml", nil, "<a:b xmlns:a='u'>", true, CodeNotXML},
		{"no-namespace", nil, "<akomaNtoso/>", true, CodeUnknownEnvelope},
		{"hub-namespace", nil, `<Header xmlns="urn:lienthong:envelope:1"/>`, true, CodeUnknownEnvelope},
		{"two-elements", nil, "<a:b xmlns:a='u'/><a:b xmlns:a='u'/>", true, CodeUnknownEnvelope},
		{"text", nil, "plain text", true, CodeUnknownEnvelope},
		{"doctype", nil, `<!DOCTYPE x [<!ENTITY e "e">]><a:b xmlns:a='u'/>`, true, CodeNotXML},
		{"escape", nil, `<a:b xmlns:a='u'/></lt:Payload></lt:Envelope><x/>`, true, ""},
	}
	for _, c := range cases {
		h := h
		if c.mod != nil {
			c.mod(&h)
		}
		_, err := BuildHubEnvelope(h, "application/akn+xml", []byte(c.payload), c.inline)
		if err == nil || (c.want != "" && CodeOf(err) != c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := BuildHubEnvelope(h, "", nil, false); err == nil {
		t.Error("empty content type accepted")
	}
}

func TestHubParse(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="urn:lienthong:envelope:1" version="1">
  <Header>
    <Created>2026-03-02T08:30:00+07:00</Created>
    <To><OrganId>000.00.00.C02</OrganId></To>
    <DocumentId>X-1</DocumentId>
    <From><OrganId>000.00.00.C01</OrganId></From>
  </Header>
`
	sig := `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>`
	cases := []struct {
		name string
		raw  string
		want Code
	}{
		{"default-ns-any-order", head + `<Payload contentType="application/akn+xml"><akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0"/></Payload>` + sig + `</Envelope>`, ""},
		{"base64", head + `<Payload contentType="text/plain" encoding="base64">xINhIMSRw6J5Cg==</Payload></Envelope>`, ""},
		{"version-2", strings.Replace(head, `version="1"`, `version="2"`, 1) + `</Envelope>`, CodeUnknownEnvelope},
		{"no-version", strings.Replace(head, ` version="1"`, ``, 1) + `</Envelope>`, CodeUnknownEnvelope},
		{"no-payload", head + `</Envelope>`, CodeUnknownEnvelope},
		{"no-content-type", head + `<Payload><a:x xmlns:a="u"/></Payload></Envelope>`, CodeUnknownEnvelope},
		{"two-payloads", head + `<Payload contentType="a/b"><a:x xmlns:a="u"/></Payload><Payload contentType="a/b"><a:x xmlns:a="u"/></Payload></Envelope>`, CodeUnknownEnvelope},
		{"base64-with-element", head + `<Payload contentType="a/b" encoding="base64">QQ==<a:x xmlns:a="u"/></Payload></Envelope>`, CodeUnknownEnvelope},
		{"bad-base64", head + `<Payload contentType="a/b" encoding="base64">Q!==</Payload></Envelope>`, CodeBadBase64},
		{"hex-encoding", head + `<Payload contentType="a/b" encoding="hex">41</Payload></Envelope>`, CodeUnknownEnvelope},
		{"no-from", strings.Replace(head, `<From><OrganId>000.00.00.C01</OrganId></From>`, ``, 1) + `<Payload contentType="a/b" encoding="base64"/></Envelope>`, CodeMissingFrom},
		{"no-to", strings.Replace(head, `<To><OrganId>000.00.00.C02</OrganId></To>`, ``, 1) + `<Payload contentType="a/b" encoding="base64"/></Envelope>`, CodeMissingTo},
		{"no-id", strings.Replace(head, `<DocumentId>X-1</DocumentId>`, ``, 1) + `<Payload contentType="a/b" encoding="base64"/></Envelope>`, CodeMissingDocID},
	}
	for _, c := range cases {
		d, err := Parse([]byte(c.raw), Limits{})
		if CodeOf(err) != c.want || (c.want == "" && err != nil) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
			continue
		}
		if err == nil && (d.Format != FormatHub || d.From.Code != "000.00.00.C01" || d.DocumentID != "X-1" || len(d.Warnings) != 0) {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
}

func TestHubFixtures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/hub/*.xml")
	if len(files) == 0 {
		t.Fatal("no hub fixtures")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(raw, Limits{})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.Format != FormatHub || d.From.Code != "000.00.00.C01" || len(d.To) != 1 || d.PayloadType == "" {
			t.Errorf("%s: %+v", f, d)
		}
	}
	xmllint(t, files...)
}

// xmllint validates files against schemas/hub-envelope.xsd.
func xmllint(t *testing.T, files ...string) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmllint not installed") // CI installs every oracle: missing is a failure
		}
		t.Skip("xmllint not installed")
	}
	args := append([]string{"--noout", "--nonet", "--schema", "../schemas/hub-envelope.xsd"}, files...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil {
		t.Errorf("xmllint: %v\n%s", err, out)
	}
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
