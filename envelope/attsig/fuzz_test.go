package attsig_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/digitorus/pkcs7"

	"lienthong/envelope/attsig"
)

// FuzzScanPDF: the PDF signature scanner never panics, and every signature
// it reports as verifiable has a byte range inside the file that covers
// all of it except a /Contents hole.
func FuzzScanPDF(f *testing.F) {
	w := newFuzzWorld(f)
	good := buildPDF(f, pdfOptions{}, func(b []byte) []byte { return goSign(f, b, w.p.ECLeaf.Cert, w.p.ECLeaf.Key, w.p.Intermediate.Cert) })
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("/ByteRange [0 1 5 2] /Contents <3000>"))
	f.Add([]byte("<< /Contents <3003020100> /ByteRange [0 10 22 0] /SubFilter /adbe.pkcs7.detached >>"))
	f.Add([]byte("<< /SubFilter /adbe.pkcs7.detached /Contents (x) /ByteRange [0 1 2 3] >>"))
	f.Fuzz(func(t *testing.T, pdf []byte) {
		sigs, _ := attsig.ScanPDF(pdf, 16, 1<<20)
		if len(sigs) > 16 {
			t.Fatalf("%d signatures over the limit", len(sigs))
		}
		size := int64(len(pdf))
		for _, s := range sigs {
			if s.Code != "" {
				continue
			}
			a, b, c, d := s.ByteRange[0], s.ByteRange[1], s.ByteRange[2], s.ByteRange[3]
			whole := c+d == size || s.Revision != "" && c+d < size && bytes.Contains(pdf[max(0, c+d-8):c+d], []byte("%%EOF"))
			if a != 0 || b <= 0 || c <= b || !whole || pdf[b] != '<' || pdf[c-1] != '>' || len(s.Contents) == 0 {
				t.Fatalf("accepted signature with byte range %v over %d bytes", s.ByteRange, size)
			}
		}
	})
}

// FuzzVerifyDetached: the CMS parsing and verification path never panics
// and never calls a mangled signature valid.
func FuzzVerifyDetached(f *testing.F) {
	w := newFuzzWorld(f)
	content := []byte("TEST content for fuzzing")
	sig := goSign(f, content, w.p.ECLeaf.Cert, w.p.ECLeaf.Key, w.p.Intermediate.Cert)
	f.Add(sig)
	f.Add(sig[:len(sig)/2])
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x00, 0x00})
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		vd, err := w.verifier.VerifyDetached(ctx, "national", content, b)
		if vd == nil {
			t.Fatalf("no verdict: %v", err)
		}
		if vd.Outcome == attsig.OutcomeValid {
			if err != nil || vd.Signer == nil || len(vd.Chain) == 0 {
				t.Fatalf("valid verdict without signer or chain: %+v", vd)
			}
			if !bytes.Equal(b, sig) && !vd.Signer.Equal(w.p.ECLeaf.Cert) {
				t.Fatalf("a mangled signature verified with signer %s", vd.Signer.Subject)
			}
		} else if vd.Code == "" {
			t.Fatalf("invalid verdict without a code: %+v", vd)
		}
	})
}

// FuzzSignatureMatchesLibrary: the signature check over a content digest
// (which lets the content be streamed) agrees with digitorus/pkcs7's own
// check over the content, which the in-memory path used before: a verdict
// that reached the signature step is valid exactly when the library
// verifies, and its code is the library error's.
func FuzzSignatureMatchesLibrary(f *testing.F) {
	w := newFuzzWorld(f)
	content := []byte("TEST content for fuzzing")
	f.Add(goSign(f, content, w.p.ECLeaf.Cert, w.p.ECLeaf.Key, w.p.Intermediate.Cert), content)
	f.Add(goSign(f, content, w.p.ECLeaf.Cert, w.p.ECLeaf.Key, w.p.Intermediate.Cert), []byte("TEST content for fuzzinG"))
	f.Add(goSign(f, content, w.p.ECLeaf.Cert, w.p.Intermediate.Key, w.p.Intermediate.Cert), content)
	if _, err := exec.LookPath("openssl"); err == nil {
		for _, extra := range [][]string{{"-noattr"}, {"-noattr", "-md", "sha384"}, {"-cades"}} {
			f.Add(w.opensslSign(f, content, w.p.ECLeaf, extra...), content)
			f.Add(w.opensslSign(f, content, w.p.ECLeaf, extra...), []byte("other content"))
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b, content []byte) {
		vd, _ := w.verifier.VerifyDetached(ctx, "national", content, b)
		if vd == nil {
			t.Fatal("no verdict")
		}
		var want string
		switch vd.Code {
		case "", attsig.CodeContentMismatch, attsig.CodeInvalid, attsig.CodeSigningTime, attsig.CodeRevoked, attsig.CodeRevocationUnkn:
		default:
			return // refused before the signature step
		}
		if vd.Code == attsig.CodeInvalid && vd.Signer == nil {
			return // refused before the chain (signature algorithm mapping)
		}
		p7, err := pkcs7.Parse(b)
		if err != nil {
			t.Fatalf("the library cannot parse what reached the signature step: %v", err)
		}
		p7.Content = content
		err = p7.VerifyWithOpts(x509.VerifyOptions{CurrentTime: w.p.Now})
		var mm *pkcs7.MessageDigestMismatchError
		switch {
		case err == nil:
		case errors.As(err, &mm):
			want = attsig.CodeContentMismatch
		case strings.Contains(err.Error(), "signing time"):
			want = attsig.CodeSigningTime
		default:
			want = attsig.CodeInvalid
		}
		got := vd.Code
		if got == attsig.CodeRevoked || got == attsig.CodeRevocationUnkn {
			got = "" // the signature verified; revocation came after
		}
		if got != want {
			t.Fatalf("digest path %q (%s), library %q (%v)", vd.Code, vd.Reason, want, err)
		}
	})
}
