package dsig_test

import (
	"context"
	"testing"
)

func BenchmarkVerify(b *testing.B) { benchVerify(b, false) }

// BenchmarkVerifyBytes is BenchmarkVerify on the bytes path (VerifyBytes,
// what verify.Verify uses for a document in memory).
func BenchmarkVerifyBytes(b *testing.B) { benchVerify(b, true) }

func benchVerify(b *testing.B, bytesPath bool) {
	v := newVerifier(b)
	verify := v.Verify
	if bytesPath {
		verify = v.VerifyBytes
	}
	for _, bc := range []struct {
		name   string
		attach int
	}{{"20KB", 17 << 10}, {"2MB", 2 << 20}} {
		doc := signed(b, pki(b).RSALeaf, bc.attach)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := verify(context.Background(), doc, domainRequire, edxmlOpts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(doc)), "doc-bytes")
		})
	}
}
