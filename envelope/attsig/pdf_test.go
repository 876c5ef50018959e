package attsig_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"lienthong/envelope/attsig"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/testpki"
)

const placeholderHex = attsigtest.PlaceholderHex

type pdfOptions = attsigtest.PDFOptions

// buildPDF is attsigtest.SignedPDF for tests.
func buildPDF(t testing.TB, o pdfOptions, sign func(signed []byte) []byte) []byte {
	t.Helper()
	pdf, err := attsigtest.SignedPDF(o, func(b []byte) ([]byte, error) { return sign(b), nil })
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

// pdfsig runs poppler's pdfsig (an independent PAdES verifier) and returns
// its output.
func pdfsig(t testing.TB, dir string, pdf []byte) string {
	t.Helper()
	needTool(t, "pdfsig")
	f := filepath.Join(dir, fmt.Sprintf("doc-%d.pdf", len(pdf)))
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("pdfsig", "-nocert", f).CombinedOutput() // exits non-zero for invalid signatures
	return string(out)
}

func TestPDFSignatures(t *testing.T) {
	w := newWorld(t)
	p := w.p
	osslSigner := func(c *testpki.Cert, extra ...string) func([]byte) []byte {
		return func(b []byte) []byte { return w.opensslSign(t, b, c, append([]string{"-nosmimecap"}, extra...)...) }
	}
	good := buildPDF(t, pdfOptions{}, osslSigner(p.RSALeaf))
	cades := buildPDF(t, pdfOptions{SubFilter: "ETSI.CAdES.detached"}, osslSigner(p.ECLeaf, "-cades"))

	// The independent verifier agrees that the genuine files are signed and
	// that the whole document is covered.
	for name, pdf := range map[string][]byte{"adbe.pkcs7.detached": good, "ETSI.CAdES.detached": cades} {
		out := pdfsig(t, w.dir, pdf)
		if !strings.Contains(out, "Signature is Valid") || !strings.Contains(out, "Total document signed") {
			t.Fatalf("pdfsig on the %s PDF:\n%s", name, out)
		}
	}

	insideRange := bytes.Clone(good)
	i := bytes.Index(insideRange, []byte("so 1"))
	insideRange[i+3] = '2' // "so 2": the page text, inside the signed range
	if out := pdfsig(t, w.dir, insideRange); strings.Contains(out, "Signature is Valid") {
		t.Fatalf("pdfsig accepts the altered PDF:\n%s", out)
	}

	// An incremental update appended after signing: outside the ranges.
	appended := append(bytes.Clone(good), []byte("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF\n")...)

	sigHole := func(pdf []byte) (int, int) {
		s := bytes.Index(pdf, []byte("/Contents <")) + len("/Contents <")
		return s, s + placeholderHex
	}
	inHole := bytes.Clone(good)
	hs, _ := sigHole(inHole)
	// The last hex digits of the CMS proper are the signature value.
	cmsLen := len(strings.TrimRight(string(inHole[hs:hs+placeholderHex]), "0"))
	inHole[hs+cmsLen-3] = flipHex(inHole[hs+cmsLen-3])
	padding := bytes.Clone(good)
	_, he := sigHole(padding)
	padding[he-2] = '1' // in the zero padding after the CMS

	holeMoved := bytes.Clone(good)
	j := bytes.Index(holeMoved, []byte("/ByteRange [0 "))
	copy(holeMoved[j+len("/ByteRange [0 "):], fmt.Sprintf("%010d", 20)) // gap no longer at /Contents

	for _, tc := range []struct {
		name string
		pdf  []byte
		code string
		sub  string
	}{
		{"openssl RSA, adbe.pkcs7.detached", good, "", "adbe.pkcs7.detached"},
		{"openssl ECDSA -cades, ETSI.CAdES.detached", cades, "", "ETSI.CAdES.detached"},
		{"altered inside the signed ranges", insideRange, attsig.CodeContentMismatch, ""},
		{"bytes appended outside the ranges", appended, attsig.CodePDFByteRange, ""},
		{"altered signature value inside the Contents hole", inHole, attsig.CodeInvalid, ""},
		{"non-zero padding after the CMS", padding, attsig.CodePDFMalformed, ""},
		{"gap that is not the Contents string", holeMoved, attsig.CodePDFMalformed, ""},
		{"wrong key", buildPDF(t, pdfOptions{}, func(b []byte) []byte { return goSign(t, b, p.RSALeaf.Cert, p.RSALeaf2.Key, p.Intermediate.Cert) }), attsig.CodeInvalid, ""},
		{"expired signer", buildPDF(t, pdfOptions{}, osslSigner(p.ExpiredLeaf)), attsig.CodeExpired, ""},
		{"revoked signer", buildPDF(t, pdfOptions{}, osslSigner(p.RSALeaf2)), attsig.CodeRevoked, ""},
		{"unknown CA", buildPDF(t, pdfOptions{}, osslSigner(p.UnknownLeaf)), attsig.CodeUnknownSigner, ""},
		{"SHA-1", buildPDF(t, pdfOptions{}, osslSigner(p.RSALeaf, "-md", "sha1")), attsig.CodeSHA1, ""},
		{"adbe.pkcs7.sha1 sub-filter", buildPDF(t, pdfOptions{SubFilter: "adbe.pkcs7.sha1"}, osslSigner(p.RSALeaf)), attsig.CodePDFSubFilter, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vds, err := w.verifier.VerifyPDF(context.Background(), "national", tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if len(vds) != 1 {
				t.Fatalf("%d verdicts, want 1: %+v", len(vds), vds)
			}
			vd := vds[0]
			if vd.Kind != attsig.KindPAdES || vd.Index != 1 || len(vd.ByteRange) != 4 {
				t.Errorf("verdict kind %q index %d range %v", vd.Kind, vd.Index, vd.ByteRange)
			}
			if tc.code == "" {
				if vd.Outcome != attsig.OutcomeValid || vd.SubFilter != tc.sub || vd.Signer == nil || vd.Revocation == nil {
					t.Fatalf("verdict %s %s: %s (sub-filter %q)", vd.Outcome, vd.Code, vd.Reason, vd.SubFilter)
				}
				return
			}
			if vd.Outcome != attsig.OutcomeInvalid || vd.Code != tc.code {
				t.Fatalf("verdict %s %s (%s), want %s", vd.Outcome, vd.Code, vd.Reason, tc.code)
			}
		})
	}
}

func flipHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

func TestScanPDFLimits(t *testing.T) {
	w := newWorld(t)
	good := buildPDF(t, pdfOptions{}, func(b []byte) []byte { return goSign(t, b, w.p.RSALeaf.Cert, w.p.RSALeaf.Key, w.p.Intermediate.Cert) })
	// Three signature dictionaries where one is allowed.
	many := bytes.Replace(good, []byte("/Name (TEST signer)"), []byte("/Name (TEST signer) /X [ /ByteRange [0 1 2 3] /ByteRange [0 1 2 3] ]"), 1)
	sigs, err := attsig.ScanPDF(many, 1, 1<<20)
	var ae *attsig.Error
	if !asAttsigErr(err, &ae) || ae.Code != attsig.CodePDFTooMany || len(sigs) != 1 {
		t.Fatalf("ScanPDF = %d, %v; want pdf_too_many_signatures", len(sigs), err)
	}
	v := *w.verifier
	v.Limits = attsig.Limits{MaxPDFBytes: 1000}
	vds, err := v.VerifyPDF(context.Background(), "national", good)
	if err != nil || len(vds) != 1 || vds[0].Code != attsig.CodeTooLarge || vds[0].Outcome != attsig.OutcomeNotChecked {
		t.Fatalf("over MaxPDFBytes: %v %+v, want not_checked too_large", err, vds)
	}
	v.Limits = attsig.Limits{MaxSignatureBytes: 100}
	vds, err = v.VerifyPDF(context.Background(), "national", good)
	if err != nil || len(vds) != 1 || vds[0].Code != attsig.CodeTooLarge {
		t.Fatalf("over MaxSignatureBytes: %v %+v", err, vds)
	}
	// An unsigned PDF has no signature verdicts.
	if sigs, err := attsig.ScanPDF([]byte("%PDF-1.7\n1 0 obj\n<< >>\nendobj\n%%EOF\n"), 16, 1<<20); err != nil || len(sigs) != 0 {
		t.Fatalf("unsigned PDF: %v %v", sigs, err)
	}
}

func asAttsigErr(err error, target **attsig.Error) bool { return errors.As(err, target) }

// Two signatures, the second added by an incremental update (the signer's,
// then the issuing office's): both verify, the first as the signature of an
// earlier revision. An unsigned update after them leaves the last one
// incomplete.
func TestPDFTwoSignatures(t *testing.T) {
	w := newWorld(t)
	p := w.p
	first := buildPDF(t, pdfOptions{}, func(b []byte) []byte { return w.opensslSign(t, b, p.RSALeaf, "-nosmimecap") })
	two, err := attsigtest.AddSignature(first, pdfOptions{SubFilter: "ETSI.CAdES.detached"}, func(b []byte) ([]byte, error) {
		return w.opensslSign(t, b, p.ECLeaf, "-cades"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := pdfsig(t, w.dir, two); strings.Count(out, "Signature is Valid") != 2 {
		t.Fatalf("pdfsig on the twice-signed PDF:\n%s", out)
	}
	vds, err := w.verifier.VerifyPDF(context.Background(), "national", two)
	if err != nil || len(vds) != 2 {
		t.Fatalf("%v %+v", err, vds)
	}
	if vds[0].Outcome != attsig.OutcomeValid || !strings.Contains(vds[0].Reason, "covered by signature 2") ||
		!vds[0].Signer.Equal(p.RSALeaf.Cert) || vds[1].Outcome != attsig.OutcomeValid || !vds[1].Signer.Equal(p.ECLeaf.Cert) {
		t.Fatalf("verdicts %+v", vds)
	}
	// An unsigned incremental update after both.
	after := append(bytes.Clone(two), []byte("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF\n")...)
	vds, err = w.verifier.VerifyPDF(context.Background(), "national", after)
	if err != nil || len(vds) != 2 || vds[0].Code != attsig.CodePDFByteRange || vds[1].Code != attsig.CodePDFByteRange {
		t.Fatalf("after an unsigned update: %v %+v", err, vds)
	}
	// The first signature's revision with bytes changed in the second one's
	// update: the second signature no longer verifies (nothing is accepted).
	tampered := bytes.Clone(two)
	j := bytes.LastIndex(tampered, []byte("(Signature2)"))
	tampered[j+1] = 'X'
	vds, err = w.verifier.VerifyPDF(context.Background(), "national", tampered)
	if err != nil || len(vds) != 2 || vds[1].Code != attsig.CodeContentMismatch {
		t.Fatalf("tampered update: %v %+v", err, vds)
	}
}
