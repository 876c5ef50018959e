package attsig_test

import (
	"context"
	"strings"
	"testing"

	"lienthong/envelope/attsig"
)

// BenchmarkVerifyPDF: scan and verify a signed 2 MB PDF (ECDSA P-256,
// SHA-256; revocation from a cached CRL file).
func BenchmarkVerifyPDF(b *testing.B) {
	w := newWorld(b)
	text := strings.Repeat("Nghi quyet TEST ", 2<<20/16)
	pdf := buildPDF(b, pdfOptions{Text: text}, func(s []byte) []byte {
		return goSign(b, s, w.p.ECLeaf.Cert, w.p.ECLeaf.Key, w.p.Intermediate.Cert)
	})
	ctx := context.Background()
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		vds, err := w.verifier.VerifyPDF(ctx, "national", pdf)
		if err != nil || len(vds) != 1 || vds[0].Outcome != attsig.OutcomeValid {
			b.Fatalf("%v %+v", err, vds)
		}
	}
}
