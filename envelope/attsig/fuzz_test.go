package attsig_test

import (
	"bytes"
	"context"
	"testing"

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
