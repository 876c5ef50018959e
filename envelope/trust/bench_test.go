package trust_test

import (
	"crypto/x509"
	"testing"

	"lienthong/envelope/trust"
)

// BenchmarkVerifyChain: the chain of the same RSA signer (leaf,
// intermediate, root; RSA 2048), as every document of that signer needs it.
func BenchmarkVerifyChain(b *testing.B) {
	p, err := testPKI()
	if err != nil {
		b.Fatal(err)
	}
	d := &trust.Domain{Name: "bench", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	inter := p.Chain(p.RSALeaf)[1:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.VerifyChain(p.RSALeaf.Cert, inter, p.Now); err != nil {
			b.Fatal(err)
		}
	}
}
