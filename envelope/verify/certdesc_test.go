package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestCertOfIsComputedOnce: CertOf describes a certificate as it always
// did, and a certificate described before costs no allocation.
func TestCertOfIsComputedOnce(t *testing.T) {
	c := pki(t).RSALeaf.Cert
	sum := sha256.Sum256(c.Raw)
	want := Cert{Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: fmt.Sprintf("%x", c.SerialNumber),
		SHA256: hex.EncodeToString(sum[:]), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DER: c.Raw}
	got := CertOf(c)
	if got.Subject != want.Subject || got.Issuer != want.Issuer || got.Serial != want.Serial || got.SHA256 != want.SHA256 ||
		!got.NotBefore.Equal(want.NotBefore) || !got.NotAfter.Equal(want.NotAfter) || &got.DER[0] != &c.Raw[0] {
		t.Fatalf("CertOf = %+v, want %+v", got, want)
	}
	if Fingerprint(c) != want.SHA256 {
		t.Fatalf("Fingerprint = %s, want %s", Fingerprint(c), want.SHA256)
	}
	if n := testing.AllocsPerRun(10, func() { _ = CertOf(c) }); n != 0 {
		t.Fatalf("%v allocations describing a known certificate", n)
	}
}
