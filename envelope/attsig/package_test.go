package attsig_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"

	"lienthong/envelope"
	"lienthong/envelope/attsig"
)

type att struct {
	cid, name, ct string
	data          []byte
}

// edxmlWith returns the edXML fixture new-1-recipient-pdf.edxml with its
// manifest and attachments replaced by atts.
func edxmlWith(t testing.TB, atts ...att) []byte {
	t.Helper()
	return edxmlEncoded(t, mimeLF, atts...)
}

// mimeLF wraps base64 at 76 characters with LF, as Java and .NET encoders
// write it.
func mimeLF(enc string) string { return wrap(enc, "\n") }

func wrap(enc, eol string) string {
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + eol)
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

// edxmlEncoded is edxmlWith writing each attachment's base64 text as
// encode returns it.
func edxmlEncoded(t testing.TB, encode func(b64 string) string, atts ...att) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/edxml/new-1-recipient-pdf.edxml")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("<edXML:edXMLManifest"))
	if i < 0 {
		t.Fatal("fixture without manifest")
	}
	var b bytes.Buffer
	b.Write(raw[:i])
	b.WriteString("<edXML:edXMLManifest version=\"1.0\">\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "<edXML:Reference><edXML:ContentId>cid:%s</edXML:ContentId><edXML:ContentType>%s</edXML:ContentType><edXML:AttachmentName>%s</edXML:AttachmentName></edXML:Reference>\n", a.cid, a.ct, a.name)
	}
	b.WriteString("</edXML:edXMLManifest>\n</edXML:edXMLBody>\n</edXML:edXMLEnvelope>\n<AttachmentEncoded>\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "<Attachment><ContentId>cid:%s</ContentId><AttachmentName>%s</AttachmentName><ContentType>%s</ContentType><ContentTransferEncoded>", a.cid, a.name, a.ct)
		b.WriteString(encode(base64.StdEncoding.EncodeToString(a.data)) + "</ContentTransferEncoded></Attachment>\n")
	}
	b.WriteString("</AttachmentEncoded>\n</edXML>\n")
	return b.Bytes()
}

// TestVerifyPackage: one edXML package with a signed PDF, a document with
// its detached .p7s, a tampered one, an orphan signature and an unsigned
// file; each attachment gets its verdict.
func TestVerifyPackage(t *testing.T) {
	w := newWorld(t)
	p := w.p
	pdf := buildPDF(t, pdfOptions{}, func(b []byte) []byte { return w.opensslSign(t, b, p.RSALeaf, "-nosmimecap") })
	doc := []byte("PK\x03\x04 not really a docx, TEST")
	other := []byte("TEST phụ lục 2")
	raw := edxmlWith(t,
		att{"1", "Nghi-quyet.pdf", "application/pdf", pdf},
		att{"2", "Phu-luc.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", doc},
		att{"3", "Phu-luc.docx.p7s", "application/pkcs7-signature", w.opensslSign(t, doc, p.ECLeaf)},
		att{"4", "Phu-luc-2.txt", "text/plain", other},
		att{"5", "Phu-luc-2.txt.P7S", "application/pkcs7-signature", w.opensslSign(t, []byte("something else"), p.ECLeaf)},
		att{"6", "Khong-co.pdf.p7s", "application/pkcs7-signature", w.opensslSign(t, doc, p.ECLeaf)},
		att{"7", "Ghi-chu.txt", "text/plain", []byte("TEST unsigned")},
	)
	vds, err := w.verifier.VerifyPackage(context.Background(), "national", raw, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ cid, kind, outcome, code, sigCID string }{
		{"1", attsig.KindPAdES, attsig.OutcomeValid, "", ""},
		{"2", attsig.KindCMSDetached, attsig.OutcomeValid, "", "3"},
		{"4", attsig.KindCMSDetached, attsig.OutcomeInvalid, attsig.CodeContentMismatch, "5"},
		{"6", attsig.KindCMSDetached, attsig.OutcomeInvalid, attsig.CodeOrphan, ""},
		{"7", "", attsig.OutcomeUnsigned, "", ""},
	}
	if len(vds) != len(want) {
		t.Fatalf("%d verdicts, want %d: %+v", len(vds), len(want), vds)
	}
	for i, wv := range want {
		v := vds[i]
		if v.ContentID != wv.cid || v.Kind != wv.kind || v.Outcome != wv.outcome || v.Code != wv.code || v.SignatureContentID != wv.sigCID {
			t.Errorf("verdict %d: %s %s %s %s sig=%s (%s); want %+v", i, v.ContentID, v.Kind, v.Outcome, v.Code, v.SignatureContentID, v.Reason, wv)
		}
	}
	if attsig.AllValid(vds) || attsig.FirstInvalid(vds).ContentID != "4" {
		t.Error("AllValid/FirstInvalid disagree with the verdicts")
	}
	// A package the envelope parser refuses is refused here too.
	if _, err := w.verifier.VerifyPackage(context.Background(), "national", raw[:len(raw)/2], envelope.Limits{}); envelope.CodeOf(err) == "" {
		t.Fatalf("truncated package: %v", err)
	}
}
