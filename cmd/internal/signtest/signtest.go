// Package signtest makes, at test time, what the hub's signature tests need:
// a throwaway PKI whose signing certificates carry demo organ codes, edXML
// documents signed by xmlsec1 (the independent signer) and by the hub's own
// signer, and a corpus of tampered and hostile variants, each with the
// rejection code the hub must give it. Keys live in memory and in temporary
// directories only; every subject says TEST.
package signtest

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"lienthong/envelope/testpki"
)

// Cert is a certificate with its private key (testpki's).
type Cert = testpki.Cert

// PKI is the test hierarchy: Root → Inter → leaves, except Unknown, which
// chains to UnknownRoot. Each leaf carries an organ code in its subject
// serialNumber attribute.
type PKI struct {
	Root, Inter *Cert
	// Signer is organ A's RSA-2048 signing certificate, SignerEC its ECDSA
	// P-256 one, Other organ B's.
	Signer, SignerEC, Other *Cert
	// Bad leaves, all claiming organ A.
	Swap, Expired, Future, KeyEnc, Weak *Cert
	UnknownRoot, Unknown                *Cert
}

// New builds the hierarchy for organ codes a and b around now.
func New(now time.Time, a, b string) (*PKI, error) {
	p := &PKI{}
	nb, na := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{"Lienthong TEST"}},
			NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour), IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	leaf := func(cn, organ string, ku x509.KeyUsage, from, to time.Time) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{"Lienthong TEST"}, SerialNumber: organ},
			NotBefore: from, NotAfter: to, KeyUsage: ku, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}
	}
	sig := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	for i, s := range []struct {
		dst    **Cert
		tmpl   *x509.Certificate
		key    func() (crypto.Signer, error)
		issuer **Cert
	}{
		{&p.Root, ca("TEST Root CA"), rsaKey(2048), nil},
		{&p.Inter, ca("TEST Issuing CA"), rsaKey(2048), &p.Root},
		{&p.Signer, leaf("TEST signer of "+a, a, sig, nb, na), rsaKey(2048), &p.Inter},
		{&p.SignerEC, leaf("TEST ECDSA signer of "+a, a, sig, nb, na), ecKey, &p.Inter},
		{&p.Other, leaf("TEST signer of "+b, b, sig, nb, na), rsaKey(2048), &p.Inter},
		{&p.Swap, leaf("TEST second signer of "+a, a, sig, nb, na), rsaKey(2048), &p.Inter},
		{&p.Expired, leaf("TEST expired signer", a, sig, now.Add(-30*24*time.Hour), now.Add(-24*time.Hour)), ecKey, &p.Inter},
		{&p.Future, leaf("TEST future signer", a, sig, now.Add(24*time.Hour), now.Add(30*24*time.Hour)), ecKey, &p.Inter},
		{&p.KeyEnc, leaf("TEST keyEncipherment-only", a, x509.KeyUsageKeyEncipherment, nb, na), ecKey, &p.Inter},
		{&p.Weak, leaf("TEST RSA-1024 signer", a, sig, nb, na), rsaKey(1024), &p.Inter},
		{&p.UnknownRoot, ca("TEST Unknown CA"), ecKey, nil},
		{&p.Unknown, leaf("TEST signer of an unknown CA", a, sig, nb, na), ecKey, &p.UnknownRoot},
	} {
		key, err := s.key()
		if err != nil {
			return nil, fmt.Errorf("signtest: key: %w", err)
		}
		var issuer *Cert
		if s.issuer != nil {
			issuer = *s.issuer
		}
		c, err := testpki.Issue(s.tmpl, key, issuer, int64(100+i))
		if err != nil {
			return nil, fmt.Errorf("signtest: %s: %w", s.tmpl.Subject.CommonName, err)
		}
		*s.dst = c
	}
	return p, nil
}

// Chain is c and, when Inter issued it, Inter.
func (p *PKI) Chain(c *Cert) []*x509.Certificate {
	if c.Cert.CheckSignatureFrom(p.Inter.Cert) == nil {
		return []*x509.Certificate{c.Cert, p.Inter.Cert}
	}
	return []*x509.Certificate{c.Cert}
}

// Files are PEM files written by WriteFiles.
type Files struct {
	Root, Inter string
	Key, Cert   string // the signer's
}

// WriteFiles writes the root, the intermediate and c's key and certificate into dir.
func (p *PKI) WriteFiles(dir string, c *Cert) (Files, error) {
	f := Files{Root: filepath.Join(dir, "root.pem"), Inter: filepath.Join(dir, "inter.pem"),
		Key: filepath.Join(dir, "signer-key.pem"), Cert: filepath.Join(dir, "signer.pem")}
	for path, b := range map[string][]byte{f.Root: p.Root.CertPEM(), f.Inter: p.Inter.CertPEM(),
		f.Key: c.KeyPEM(), f.Cert: c.CertPEM()} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

var (
	rsaKey = testpki.RSAKey
	ecKey  = testpki.ECKey(elliptic.P256())
)
