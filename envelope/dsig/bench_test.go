package dsig_test

import (
	"context"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b)
	for _, bc := range []struct {
		name   string
		attach int
	}{{"20KB", 17 << 10}, {"2MB", 2 << 20}} {
		doc := signed(b, pki(b).RSALeaf, bc.attach)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.Verify(context.Background(), doc, domainRequire, edxmlOpts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(doc)), "doc-bytes")
		})
	}
}
