// Package testpki makes a throwaway public-key infrastructure for the
// signature tests (test code only; nothing on the path of a document imports
// it): a root and an intermediate CA,
// signing leaves with good and bad properties, and an unrelated CA. Keys are
// generated in memory at test time and written to temporary directories only;
// none is ever committed. Every subject says TEST.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Cert is a certificate with its private key.
type Cert struct {
	Name string
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CertPEM returns the certificate in PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key in PKCS#8 PEM.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(err) // only RSA and ECDSA keys are made here
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PKI is the test hierarchy. Root → Intermediate → the leaves, except
// UnknownLeaf, which chains to UnknownRoot (not trusted by anyone).
type PKI struct {
	Now time.Time // the instant the validity windows are built around

	Root         *Cert // RSA 2048
	Intermediate *Cert // RSA 2048

	RSALeaf     *Cert // RSA 2048, digitalSignature + nonRepudiation, emailProtection
	RSALeaf2    *Cert // RSA 2048, another valid signer (for swapped certificates)
	ECLeaf      *Cert // ECDSA P-256, digitalSignature, no EKU
	ECLeaf384   *Cert // ECDSA P-384, nonRepudiation only
	KeyEncLeaf  *Cert // ECDSA P-256, keyEncipherment only
	ServerLeaf  *Cert // ECDSA P-256, digitalSignature, EKU serverAuth only
	ExpiredLeaf *Cert // ECDSA P-256, expired a day before Now
	FutureLeaf  *Cert // ECDSA P-256, valid from a day after Now
	WeakRSALeaf *Cert // RSA 1024

	UnknownRoot *Cert // ECDSA P-256, a CA nobody trusts
	UnknownLeaf *Cert // ECDSA P-256, issued by UnknownRoot
}

// New builds the hierarchy around now.
func New(now time.Time) (*PKI, error) {
	p := &PKI{Now: now}
	nb, na := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	ca := func(name string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Lienthong TEST"}},
			NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	leaf := func(name string, ku x509.KeyUsage, eku ...x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Lienthong TEST"}},
			NotBefore: nb, NotAfter: na, KeyUsage: ku, ExtKeyUsage: eku}
	}
	steps := []struct {
		dst    **Cert
		tmpl   *x509.Certificate
		key    func() (crypto.Signer, error)
		issuer **Cert
	}{
		{&p.Root, ca("TEST Root CA"), RSAKey(2048), nil},
		{&p.Intermediate, withPathLen(ca("TEST Issuing CA"), 0), RSAKey(2048), &p.Root},
		{&p.RSALeaf, leaf("TEST RSA signer", x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment, x509.ExtKeyUsageEmailProtection), RSAKey(2048), &p.Intermediate},
		{&p.RSALeaf2, leaf("TEST RSA signer 2", x509.KeyUsageDigitalSignature), RSAKey(2048), &p.Intermediate},
		{&p.ECLeaf, leaf("TEST ECDSA signer", x509.KeyUsageDigitalSignature), ECKey(elliptic.P256()), &p.Intermediate},
		{&p.ECLeaf384, leaf("TEST ECDSA P-384 signer", x509.KeyUsageContentCommitment), ECKey(elliptic.P384()), &p.Intermediate},
		{&p.KeyEncLeaf, leaf("TEST keyEncipherment only", x509.KeyUsageKeyEncipherment), ECKey(elliptic.P256()), &p.Intermediate},
		{&p.ServerLeaf, leaf("TEST serverAuth only", x509.KeyUsageDigitalSignature, x509.ExtKeyUsageServerAuth), ECKey(elliptic.P256()), &p.Intermediate},
		{&p.ExpiredLeaf, window(leaf("TEST expired signer", x509.KeyUsageDigitalSignature), now.Add(-30*24*time.Hour), now.Add(-24*time.Hour)), ECKey(elliptic.P256()), &p.Intermediate},
		{&p.FutureLeaf, window(leaf("TEST future signer", x509.KeyUsageDigitalSignature), now.Add(24*time.Hour), now.Add(30*24*time.Hour)), ECKey(elliptic.P256()), &p.Intermediate},
		{&p.WeakRSALeaf, leaf("TEST RSA-1024 signer", x509.KeyUsageDigitalSignature), RSAKey(1024), &p.Intermediate},
		{&p.UnknownRoot, ca("TEST Unknown CA"), ECKey(elliptic.P256()), nil},
		{&p.UnknownLeaf, leaf("TEST signer of an unknown CA", x509.KeyUsageDigitalSignature), ECKey(elliptic.P256()), &p.UnknownRoot},
	}
	for i, s := range steps {
		key, err := s.key()
		if err != nil {
			return nil, fmt.Errorf("testpki: key %d: %w", i, err)
		}
		var issuer *Cert
		if s.issuer != nil {
			issuer = *s.issuer
		}
		c, err := Issue(s.tmpl, key, issuer, 1000+int64(i+1))
		if err != nil {
			return nil, fmt.Errorf("testpki: %s: %w", s.tmpl.Subject.CommonName, err)
		}
		*s.dst = c
	}
	return p, nil
}

// NewEC builds a small all-ECDSA hierarchy (Root, Intermediate, ECLeaf
// only), fast enough for fuzzing under coverage instrumentation.
func NewEC(now time.Time) (*PKI, error) {
	p := &PKI{Now: now}
	tmpl := func(name string, isCA bool) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Lienthong TEST"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if isCA {
			c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
		}
		return c
	}
	for i, s := range []struct {
		dst    **Cert
		tmpl   *x509.Certificate
		issuer *Cert
	}{
		{&p.Root, tmpl("TEST EC Root CA", true), nil},
		{&p.Intermediate, tmpl("TEST EC Issuing CA", true), nil},
		{&p.ECLeaf, tmpl("TEST ECDSA signer", false), nil},
	} {
		if i > 0 {
			s.issuer = []*Cert{p.Root, p.Intermediate}[i-1]
		}
		key, err := ECKey(elliptic.P256())()
		if err != nil {
			return nil, err
		}
		c, err := Issue(s.tmpl, key, s.issuer, 1000+int64(i+1))
		if err != nil {
			return nil, fmt.Errorf("testpki: %w", err)
		}
		*s.dst = c
	}
	return p, nil
}

// Chain returns c's certificate chain without the root: c, then the
// intermediate when c was issued by it.
func (p *PKI) Chain(c *Cert) []*x509.Certificate {
	if c.Cert.CheckSignatureFrom(p.Intermediate.Cert) == nil {
		return []*x509.Certificate{c.Cert, p.Intermediate.Cert}
	}
	return []*x509.Certificate{c.Cert}
}

// Files are the PEM files of one signer, written by WriteFiles.
type Files struct {
	Root, Intermediate, UnknownRoot string // certificate PEM files
	Key, Cert                       string // the signer's key and certificate
}

// WriteFiles writes the roots, the intermediate and signer's key and
// certificate into dir (a t.TempDir()) for external tools.
func (p *PKI) WriteFiles(dir string, signer *Cert) (Files, error) {
	f := Files{
		Root:         filepath.Join(dir, "root.pem"),
		Intermediate: filepath.Join(dir, "intermediate.pem"),
		UnknownRoot:  filepath.Join(dir, "unknown-root.pem"),
		Key:          filepath.Join(dir, signer.Name+".key.pem"),
		Cert:         filepath.Join(dir, signer.Name+".pem"),
	}
	for path, b := range map[string][]byte{
		f.Root: p.Root.CertPEM(), f.Intermediate: p.Intermediate.CertPEM(), f.UnknownRoot: p.UnknownRoot.CertPEM(),
		f.Key: signer.KeyPEM(), f.Cert: signer.CertPEM(),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

func withPathLen(c *x509.Certificate, n int) *x509.Certificate {
	c.MaxPathLen, c.MaxPathLenZero = n, n == 0
	return c
}

func window(c *x509.Certificate, nb, na time.Time) *x509.Certificate {
	c.NotBefore, c.NotAfter = nb, na
	return c
}

// RSAKey returns a generator of RSA keys of the given size.
func RSAKey(bits int) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }
}

// ECKey returns a generator of ECDSA keys on curve.
func ECKey(curve elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(curve, rand.Reader) }
}

// Issue creates the certificate tmpl for key with the given serial number,
// signed by issuer (nil: self-signed), named "cert<serial>".
func Issue(tmpl *x509.Certificate, key crypto.Signer, issuer *Cert, serial int64) (*Cert, error) {
	tmpl.SerialNumber = big.NewInt(serial)
	parent, signer := tmpl, key
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("cert%d", serial)
	return &Cert{Name: name, Cert: c, Key: key}, nil
}
