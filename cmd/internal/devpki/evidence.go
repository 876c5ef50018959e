package devpki

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
)

// EnsureEvidence creates (or reuses) the demo hub's evidence certificate in
// dir, next to the demo CA that Ensure made: an Ed25519 key — the key that
// signs the evidence log's checkpoints — certified by the demo CA with the
// log's origin as common name (schemas/checkpoint.md, "Key binding").
func EnsureEvidence(dir, origin string) (Pair, error) {
	caCert, caKey, err := Load(pair(dir, "ca"))
	if err != nil {
		return Pair{}, fmt.Errorf("devpki: evidence certificate needs the demo CA: %w", err)
	}
	p := Pair{Cert: filepath.Join(dir, "evidence.pem"), Key: filepath.Join(dir, "evidence-key.pem")}
	_, _, err = loadOrMake(p, caCert, caKey, func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: origin, Organization: []string{"Lienthong DEMO"},
			OrganizationalUnit: []string{"evidence log checkpoints (DEMO)"}},
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment}
	}, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	})
	return p, err
}
