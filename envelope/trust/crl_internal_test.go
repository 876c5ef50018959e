package trust

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// bigCRL is a CRL of the test root with n revoked serials.
func bigCRL(t testing.TB, n int) *parsedCRL {
	t.Helper()
	p, err := cachePKI()
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]x509.RevocationListEntry, n)
	for i := range entries {
		entries[i] = x509.RevocationListEntry{SerialNumber: big.NewInt(int64(1<<30 + i)), RevocationTime: p.Now.Add(-time.Hour)}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: p.Now.Add(-time.Hour), NextUpdate: p.Now.Add(24 * time.Hour), RevokedCertificateEntries: entries},
		p.Root.Cert, p.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := parseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// TestEvalCRLDigestOnce: the evidence's SHA-256 of the CRL is the one taken
// when the CRL was parsed, not hashed again for every certificate checked.
func TestEvalCRLDigestOnce(t *testing.T) {
	p := cpki(t)
	crl := bigCRL(t, 10)
	if crl.sum != digestHex(crl.der) {
		t.Fatalf("sum %s, want the digest of the DER", crl.sum)
	}
	crl.sum = "digest-at-parse"
	ev := evalCRL(crl, p.Intermediate.Cert, p.Root.Cert, p.Now, RevocationConfig{}.withDefaults())
	if ev.Status != StatusGood || ev.SHA256 != "digest-at-parse" {
		t.Fatalf("evidence %s %q (%s), want good with the parse-time digest", ev.Status, ev.SHA256, ev.Error)
	}
}

// BenchmarkEvalCRL: deciding one certificate from a cached CRL of 20,000
// entries (about 0.8 MB).
func BenchmarkEvalCRL(b *testing.B) {
	p, err := cachePKI()
	if err != nil {
		b.Fatal(err)
	}
	crl := bigCRL(b, 20000)
	cfg := RevocationConfig{}.withDefaults()
	b.ReportAllocs()
	for b.Loop() {
		if ev := evalCRL(crl, p.Intermediate.Cert, p.Root.Cert, p.Now, cfg); ev.Status != StatusGood {
			b.Fatal(ev.Error)
		}
	}
}
