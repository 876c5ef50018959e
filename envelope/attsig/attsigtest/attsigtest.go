// Package attsigtest makes, at test time, signed attachments for the tests
// of envelope/attsig and of the hub's accept path: detached CMS signatures
// made by `openssl cms -sign -binary -outform DER` (an independent signer)
// and PDF files with an embedded signature whose CMS that signer makes over
// the /ByteRange, as a PAdES signer does for a first signature. Keys come
// from the caller (generated at test time); files go to the caller's
// temporary directory.
package attsigtest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// PlaceholderHex is the size of a PDF's /Contents hole in hex digits.
const PlaceholderHex = 16384

// ErrNoOpenSSL: openssl is not installed (.ci/run installs it).
var ErrNoOpenSSL = errors.New("attsigtest: openssl not installed")

// Signer is what OpenSSLSign needs of a signer: its key and certificate in
// PEM and the certificates to add (intermediates).
type Signer struct {
	KeyPEM, CertPEM []byte
	Extra           []*x509.Certificate
}

// OpenSSLSign signs content with `openssl cms -sign -binary -outform DER`
// (detached, SHA-256 unless extra names -md), in a new directory under dir.
func OpenSSLSign(dir string, content []byte, s Signer, extra ...string) ([]byte, error) {
	if _, err := exec.LookPath("openssl"); err != nil {
		return nil, ErrNoOpenSSL
	}
	d, err := os.MkdirTemp(dir, "cms")
	if err != nil {
		return nil, err
	}
	var chain []byte
	for _, c := range s.Extra {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	files := map[string][]byte{"key.pem": s.KeyPEM, "cert.pem": s.CertPEM, "chain.pem": chain, "content": content}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(d, n), b, 0o600); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(d, "sig.p7s")
	args := []string{"cms", "-sign", "-binary", "-outform", "DER", "-in", filepath.Join(d, "content"), "-out", out,
		"-signer", filepath.Join(d, "cert.pem"), "-inkey", filepath.Join(d, "key.pem")}
	if len(chain) > 0 {
		args = append(args, "-certfile", filepath.Join(d, "chain.pem"))
	}
	args = append(args, extra...)
	if !slices.Contains(extra, "-md") {
		args = append(args, "-md", "sha256")
	}
	var stderr bytes.Buffer
	cmd := exec.Command("openssl", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("openssl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return os.ReadFile(out)
}

// PDFOptions shape a test PDF.
type PDFOptions struct {
	SubFilter string // default adbe.pkcs7.detached
	Text      string // page text (ASCII)
}

// SignedPDF writes a one-page PDF with an AcroForm signature field whose
// signature dictionary has a /Contents hole, sets the /ByteRange to the
// whole file except the hole, and fills the hole with sign(signed bytes)
// in hex, zero-padded. The result is a complete PDF with a correct xref
// table that poppler's pdfsig reads.
func SignedPDF(o PDFOptions, sign func(signed []byte) ([]byte, error)) ([]byte, error) {
	if o.SubFilter == "" {
		o.SubFilter = "adbe.pkcs7.detached"
	}
	if o.Text == "" {
		o.Text = "Nghi quyet TEST so 1"
	}
	stream := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (%s) Tj ET", o.Text)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 7 0 R >> >> /Contents 6 0 R /Annots [4 0 R] >>",
		"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Signature1) /V 5 0 R /Rect [0 0 0 0] /F 132 /P 3 0 R >>",
		sigDict(o.SubFilter),
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return fill(b.Bytes(), sign)
}

// sigDict is a signature dictionary with an empty /ByteRange and /Contents.
func sigDict(subFilter string) string {
	return "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /" + subFilter +
		" /ByteRange [0 0000000000 0000000000 0000000000] /Contents <" + strings.Repeat("0", PlaceholderHex) +
		"> /M (D:20261202000000Z) /Name (TEST signer) /Reason (TEST) >>"
}

// fill sets the last placeholder /ByteRange of pdf to the whole file except
// its /Contents hole and fills the hole with sign(signed bytes).
func fill(pdf []byte, sign func([]byte) ([]byte, error)) ([]byte, error) {
	holeStart := bytes.LastIndex(pdf, []byte("/Contents <"+strings.Repeat("0", 16))) + len("/Contents ")
	holeEnd := holeStart + PlaceholderHex + 2
	br := fmt.Sprintf("[0 %010d %010d %010d]", holeStart, holeEnd, len(pdf)-holeEnd)
	at := bytes.LastIndex(pdf, []byte("[0 0000000000 0000000000 0000000000]"))
	copy(pdf[at:], br)
	signed := append(append([]byte{}, pdf[:holeStart]...), pdf[holeEnd:]...)
	cms, err := sign(signed)
	if err != nil {
		return nil, err
	}
	h := hex.EncodeToString(cms)
	if len(h) > PlaceholderHex {
		return nil, fmt.Errorf("attsigtest: CMS of %d hex digits does not fit the hole", len(h))
	}
	copy(pdf[holeStart+1:], h)
	return pdf, nil
}

// AddSignature appends an incremental update to a PDF made by SignedPDF: a
// second signature field and dictionary (objects 8 and 9, the catalog
// updated), whose /ByteRange covers the whole new file, signed by sign —
// what a second signer (an issuing office's seal) does in practice.
func AddSignature(pdf []byte, o PDFOptions, sign func(signed []byte) ([]byte, error)) ([]byte, error) {
	if o.SubFilter == "" {
		o.SubFilter = "adbe.pkcs7.detached"
	}
	i := bytes.LastIndex(pdf, []byte("startxref"))
	if i < 0 {
		return nil, errors.New("attsigtest: no startxref")
	}
	var prev int
	if _, err := fmt.Sscan(string(pdf[i+len("startxref"):]), &prev); err != nil {
		return nil, fmt.Errorf("attsigtest: startxref: %w", err)
	}
	b := bytes.NewBuffer(bytes.Clone(pdf))
	objs := []struct {
		n    int
		body string
	}{
		{1, "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 9 0 R] /SigFlags 3 >> >>"},
		{8, sigDict(o.SubFilter)},
		{9, "<< /Type /Annot /Subtype /Widget /FT /Sig /T (Signature2) /V 8 0 R /Rect [0 0 0 0] /F 132 /P 3 0 R >>"},
	}
	offs := map[int]int{}
	for _, ob := range objs {
		offs[ob.n] = b.Len()
		fmt.Fprintf(b, "%d 0 obj\n%s\nendobj\n", ob.n, ob.body)
	}
	xref := b.Len()
	fmt.Fprintf(b, "xref\n0 2\n0000000000 65535 f \n%010d 00000 n \n8 2\n%010d 00000 n \n%010d 00000 n \n", offs[1], offs[8], offs[9])
	fmt.Fprintf(b, "trailer\n<< /Size 10 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", prev, xref)
	return fill(b.Bytes(), sign)
}

// Attachment is one attachment of a package made by Package.
type Attachment struct {
	ContentID, Name, ContentType string
	Data                         []byte
}

// Package returns the edXML package base (a fixture with a manifest, such
// as testdata/edxml/new-1-recipient-pdf.edxml) with its manifest and
// attachments replaced by atts, the base64 wrapped at 76 characters, and
// filler bytes of XML comment after the attachments, so that the package
// is at least minSize bytes (0: no filler) — a body above the blob
// threshold.
func Package(base []byte, minSize int, atts ...Attachment) ([]byte, error) {
	i := bytes.Index(base, []byte("<edXML:edXMLManifest"))
	if i < 0 {
		return nil, errors.New("attsigtest: base package without a manifest")
	}
	var b bytes.Buffer
	b.Write(base[:i])
	b.WriteString("<edXML:edXMLManifest version=\"1.0\">\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "<edXML:Reference><edXML:ContentId>cid:%s</edXML:ContentId><edXML:ContentType>%s</edXML:ContentType><edXML:AttachmentName>%s</edXML:AttachmentName></edXML:Reference>\n", a.ContentID, a.ContentType, a.Name)
	}
	b.WriteString("</edXML:edXMLManifest>\n</edXML:edXMLBody>\n</edXML:edXMLEnvelope>\n<AttachmentEncoded>\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "<Attachment><ContentId>cid:%s</ContentId><AttachmentName>%s</AttachmentName><ContentType>%s</ContentType><ContentTransferEncoded>", a.ContentID, a.Name, a.ContentType)
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "</ContentTransferEncoded></Attachment>\n")
	}
	b.WriteString("</AttachmentEncoded>\n")
	if pad := minSize - b.Len() - len("</edXML>\n"); pad > 0 {
		line := "<!-- TEST filler to make the body larger than the blob threshold -->\n"
		b.WriteString(strings.Repeat(line, pad/len(line)+1))
	}
	b.WriteString("</edXML>\n")
	return b.Bytes(), nil
}
