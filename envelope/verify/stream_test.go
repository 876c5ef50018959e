package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// streamVerify runs VerifyStream over doc.Raw as the accept path does for a
// large body: doc re-read by envelope.ParseReader, the bytes opened anew per pass.
func streamVerify(t *testing.T, v *Verifier, doc *envelope.Document, channel string) (*Report, error) {
	t.Helper()
	raw := doc.Raw
	sdoc, err := envelope.ParseReader(bytes.NewReader(raw), int64(len(raw)), envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	rep, err := v.VerifyStream(context.Background(), sdoc, func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, int64(len(raw)), channel)
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	return rep, err
}

// attDoc is the fixture with atts as its attachments, its envelope signed
// by RSALeaf.
func attDoc(t *testing.T, atts ...attsigtest.Attachment) *envelope.Document {
	t.Helper()
	raw, err := attsigtest.Package(fixture(t), 0, atts...)
	if err != nil {
		t.Fatal(err)
	}
	return signWith(t, raw, pki(t).RSALeaf)
}

func osslSign(t *testing.T, content []byte, c *testpki.Cert) []byte {
	t.Helper()
	p := pki(t)
	s := attsigtest.Signer{KeyPEM: c.KeyPEM(), CertPEM: c.CertPEM(), Extra: []*x509.Certificate{p.Intermediate.Cert}}
	if c.Cert.CheckSignatureFrom(p.Intermediate.Cert) != nil {
		s.Extra = []*x509.Certificate{p.UnknownRoot.Cert}
	}
	b, err := attsigtest.OpenSSLSign(t.TempDir(), content, s, "-nosmimecap")
	if errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyStreamChecksAttachments: a document verified as a small body
// (Verify) and as a body above the blob threshold (VerifyStream) gets the
// same report — attachment verdicts, codes, reasons, and the refusal of a
// document whose attachment signature is invalid — for detached signatures
// made by openssl (good, tampered, unknown signer, expired) and signed PDFs.
func TestVerifyStreamChecksAttachments(t *testing.T) {
	p := pki(t)
	now := p.Now
	v, err := New(Config{Trust: store(t), Directory: dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}},
		Attachments: AttachmentSignatures{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("TEST Phụ lục, nội dung đính kèm. "), 100)
	altered := bytes.Clone(content)
	altered[7] ^= 1
	pdf, err := attsigtest.SignedPDF(attsigtest.PDFOptions{}, func(b []byte) ([]byte, error) { return osslSign(t, b, p.ECLeaf), nil })
	if err != nil {
		t.Fatal(err)
	}
	tamperedPDF := bytes.Replace(pdf, []byte("so 1"), []byte("so 2"), 1)
	pair := func(name string, data, sig []byte) []attsigtest.Attachment {
		return []attsigtest.Attachment{{ContentID: "1", Name: name, ContentType: "text/plain", Data: data},
			{ContentID: "2", Name: name + ".p7s", ContentType: "application/pkcs7-signature", Data: sig}}
	}
	for _, tc := range []struct {
		name string
		atts []attsigtest.Attachment
		code string // "" accepted with verdict valid
	}{
		{"good detached", pair("a.txt", content, osslSign(t, content, p.RSALeaf)), ""},
		{"tampered detached", pair("a.txt", altered, osslSign(t, content, p.RSALeaf)), "content_mismatch"},
		{"unknown signer", pair("a.txt", content, osslSign(t, content, p.UnknownLeaf)), "unknown_signer"},
		{"expired signer", pair("a.txt", content, osslSign(t, content, p.ExpiredLeaf)), "certificate_expired"},
		{"good PDF", []attsigtest.Attachment{{ContentID: "1", Name: "a.pdf", ContentType: "application/pdf", Data: pdf}}, ""},
		{"tampered PDF", []attsigtest.Attachment{{ContentID: "1", Name: "a.pdf", ContentType: "application/pdf", Data: tamperedPDF}}, "content_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := attDoc(t, tc.atts...)
			mem, merr := v.Verify(context.Background(), doc, ChannelAPI)
			str, serr := streamVerify(t, v, doc, ChannelAPI)
			if dsig.CodeOf(merr) != tc.code || dsig.CodeOf(serr) != tc.code {
				t.Fatalf("codes: memory %q (%v), stream %q (%v); want %q", dsig.CodeOf(merr), merr, dsig.CodeOf(serr), serr, tc.code)
			}
			mj, _ := json.Marshal(mem)
			sj, _ := json.Marshal(str)
			if !bytes.Equal(mj, sj) {
				t.Fatalf("reports differ\nmemory: %s\nstream: %s", mj, sj)
			}
			want := OutcomeValid
			if tc.code != "" {
				want = OutcomeInvalid
			}
			if len(str.Attachments) != 1 || str.Attachments[0].Verdict != want || str.Outcome != want {
				t.Fatalf("stream report %s", sj)
			}
		})
	}
}

// notStreaming is an attachment verifier that cannot read a streamed body.
type notStreaming struct{ a AttachmentSignatures }

func (n notStreaming) VerifyAttachments(ctx context.Context, doc *envelope.Document, d *trust.Domain, at time.Time) ([]Attachment, error) {
	return n.a.VerifyAttachments(ctx, doc, d, at)
}

func TestVerifyStreamAttachmentsNotCheckedWithoutAStreamVerifier(t *testing.T) {
	p := pki(t)
	good := signWith(t, fixture(t), p.RSALeaf)
	v, err := New(Config{Trust: store(t), Directory: dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}},
		Attachments: notStreaming{}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := streamVerify(t, v, good, ChannelAPI)
	if err != nil || rep.Outcome != OutcomeValid {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if len(rep.Attachments) != len(good.Attachments) || len(rep.Attachments) == 0 {
		t.Fatalf("attachments %+v", rep.Attachments)
	}
	for _, a := range rep.Attachments {
		if a.Verdict != OutcomeNotChecked || a.Reason == "" {
			t.Errorf("attachment %+v: want not_checked with a reason", a)
		}
	}
	// Altered content: the digest pass refuses it, as in memory.
	bad := bytes.Replace(good.Raw, []byte("<edXML:DocumentId>000.00.00.C01,2026/03/02,15"), []byte("<edXML:DocumentId>000.00.00.C01,2026/03/02,16"), 1)
	if bytes.Equal(bad, good.Raw) {
		t.Fatal("fixture has no DocumentId")
	}
	badDoc, err := envelope.Parse(bad, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streamVerify(t, v, badDoc, ChannelAPI); dsig.CodeOf(err) != dsig.CodeDigestMismatch {
		t.Fatalf("altered: %v", err)
	}
}
