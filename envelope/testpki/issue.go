package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"
)

// serials hands out certificate serial numbers for Issue, above the ones New
// uses.
var serials atomic.Int64

// LeafOptions shape a certificate made by Issue. Zero fields take the
// defaults of an ordinary signing leaf (digitalSignature + nonRepudiation,
// valid from an hour before Now for a year).
type LeafOptions struct {
	Name        string
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	NotBefore   time.Time
	NotAfter    time.Time
	IsCA        bool
	// OCSPServer and CRLDistributionPoints go into the AIA and CDP
	// extensions.
	OCSPServer            []string
	CRLDistributionPoints []string
}

// Issue makes a new ECDSA P-256 certificate signed by issuer (a CA of p, or
// any Cert with a CA certificate). Revocation tests use it to put responder
// and distribution point URLs of servers started by the test into leaves.
func (p *PKI) Issue(issuer *Cert, o LeafOptions) (*Cert, error) {
	if o.Name == "" {
		o.Name = "TEST issued signer"
	}
	if o.KeyUsage == 0 {
		o.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		if o.IsCA {
			o.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = p.Now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = p.Now.Add(365 * 24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	n := 100000 + serials.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(n),
		Subject:               pkix.Name{CommonName: o.Name, Organization: []string{"Lienthong TEST"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              o.KeyUsage,
		ExtKeyUsage:           o.ExtKeyUsage,
		OCSPServer:            o.OCSPServer,
		CRLDistributionPoints: o.CRLDistributionPoints,
	}
	if o.IsCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: %s: %w", o.Name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	return &Cert{Name: fmt.Sprintf("issued%d", n), Cert: c, Key: key}, nil
}
