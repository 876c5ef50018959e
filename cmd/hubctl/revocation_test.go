package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/attsig"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

// crlOf signs a CRL of issuer, revoking revoked, valid from this to next.
func crlOf(t *testing.T, issuer *signtest.Cert, this, next time.Time, revoked ...*signtest.Cert) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: this, NextUpdate: next}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.Cert.SerialNumber, RevocationTime: this, ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// `hubctl verify --crl FILE…` checks the signer (and the issuing CA) against
// the given CRLs, offline.
func TestVerifyWithCRLFiles(t *testing.T) {
	f := newFixture(t)
	p := f.p
	now := time.Now()
	good, err := p.Sign(signtest.Doc(orgA, []string{orgB}, 300), p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	byEC, err := p.Sign(signtest.Doc(orgA, []string{orgB}, 301), p.SignerEC)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL := f.write(t, "root.crl", crlOf(t, p.Root, now.Add(-time.Hour), now.Add(time.Hour)))
	interCRL := f.write(t, "inter.crl", crlOf(t, p.Inter, now.Add(-time.Hour), now.Add(time.Hour), p.SignerEC))
	staleCRL := f.write(t, "stale.crl", crlOf(t, p.Inter, now.Add(-3*time.Hour), now.Add(-2*time.Hour)))
	goodFile, ecFile := f.write(t, "good.edxml", good), f.write(t, "ec.edxml", byEC)

	for _, tc := range []struct {
		name string
		crls []string
		file string
		exit int
		code string
	}{
		{"not revoked", []string{interCRL, rootCRL}, goodFile, 0, ""},
		{"revoked by the issuing CA's CRL", []string{interCRL, rootCRL}, ecFile, 1, dsig.CodeRevoked},
		{"stale CRL (hard-fail)", []string{staleCRL, rootCRL}, goodFile, 1, dsig.CodeRevocationUnknown},
		{"no CRL for the issuing CA", []string{rootCRL}, goodFile, 1, dsig.CodeRevocationUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{}, f.commonArgs...)
			for _, c := range tc.crls {
				args = append(args, "--crl", c)
			}
			code, rep, msg := verifyFile(t, append(args, tc.file)...)
			if code != tc.exit || rep.Code != tc.code {
				t.Fatalf("exit %d code %q, want %d %q: %s", code, rep.Code, tc.exit, tc.code, msg)
			}
			if tc.exit != 0 {
				if !strings.Contains(msg, "INVALID ["+tc.code+"]") {
					t.Errorf("message %q", msg)
				}
				return
			}
			r := rep.Signatures[0].Revocation
			if r.Status != trust.StatusGood || len(r.Evidence) != 2 || r.Evidence[0].Kind != trust.MethodCRL ||
				r.Evidence[0].Source != interCRL || len(r.Evidence[0].DER) == 0 || r.Evidence[1].Source != rootCRL {
				t.Fatalf("revocation %+v", r)
			}
			// The printed evidence re-checks offline at the verification time.
			chain := []*x509.Certificate{p.Signer.Cert, p.Inter.Cert, p.Root.Cert}
			if err := trust.RecheckRevocation(chain, verify.ResultOf(r), rep.VerifiedAt); err != nil {
				t.Fatalf("recheck: %v", err)
			}
		})
	}
	// A CRL file that is not a CRL is a usage error.
	bad := f.write(t, "bad.crl", []byte("not a CRL"))
	if code, _, msg := verifyFile(t, append(append([]string{}, f.commonArgs...), "--crl", bad, goodFile)...); code != 2 || !strings.Contains(msg, "bad.crl") {
		t.Fatalf("exit %d with a bad CRL file, want 2: %s", code, msg)
	}
}

// `hubctl verify` reports the attachments' signatures too: a PDF signed
// (by openssl over the ByteRange) is valid; the same PDF altered after
// signing makes the document invalid with content_mismatch.
func TestVerifyAttachmentSignatures(t *testing.T) {
	f := newFixture(t)
	p := f.p
	signer := attsigtest.Signer{KeyPEM: p.Signer.KeyPEM(), CertPEM: p.Signer.CertPEM(), Extra: []*x509.Certificate{p.Inter.Cert}}
	pdf, err := attsigtest.SignedPDF(attsigtest.PDFOptions{}, func(b []byte) ([]byte, error) {
		return attsigtest.OpenSSLSign(f.dir, b, signer, "-nosmimecap")
	})
	if errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI installs every oracle: missing is a failure
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(pdf)
	altered[bytes.Index(altered, []byte("so 1"))+3] = '7'
	for i, tc := range []struct {
		name    string
		pdf     []byte
		exit    int
		code    string
		verdict string
	}{
		{"signed PDF", pdf, 0, "", "valid"},
		{"PDF altered after signing", altered, 1, attsig.CodeContentMismatch, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: fmt.Sprint(400 + i), Notation: "TEST-PDF", Attachment: tc.pdf})
			signed, err := p.Sign(raw, p.Signer)
			if err != nil {
				t.Fatal(err)
			}
			code, rep, msg := verifyFile(t, append(append([]string{}, f.commonArgs...), f.write(t, fmt.Sprintf("pdf%d.edxml", i), signed))...)
			if code != tc.exit || rep.Code != tc.code || len(rep.Attachments) != 1 || rep.Attachments[0].Verdict != tc.verdict ||
				len(rep.Attachments[0].Signatures) != 1 || rep.Attachments[0].Signatures[0].Kind != attsig.KindPAdES {
				t.Fatalf("exit %d, report %+v: %s", code, rep, msg)
			}
		})
	}
}
