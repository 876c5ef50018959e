// Package devpki makes the demo public-key infrastructure of `hubd dev`: a
// demo CA, the hub's certificate, and one signing certificate per demo organ,
// written as PEM files under the data directory and reused on restart. These
// keys are generated on the machine and never committed; they are marked
// DEMO in their subjects and must never be trusted outside a dev hub.
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Pair names the PEM files of a certificate and its key.
type Pair struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// PKI is the set of demo files.
type PKI struct {
	CA     Pair
	Hub    Pair
	Organs map[string]Pair // by organ code
}

// Ensure creates (or reuses) the demo PKI in dir for the given organ codes.
// names maps organ code → display name for the certificate subject.
func Ensure(dir string, organs []string, names map[string]string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	p := &PKI{CA: pair(dir, "ca"), Hub: pair(dir, "hub"), Organs: map[string]Pair{}}
	caCert, caKey, err := loadOrMake(p.CA, nil, nil, func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "Lienthong DEMO CA (dev only / chỉ dùng thử)",
			Organization: []string{"Lienthong DEMO"}}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLen: 1}
	}, rsaKey)
	if err != nil {
		return nil, err
	}
	if _, _, err := loadOrMake(p.Hub, caCert, caKey, func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "Lienthong DEMO hub", Organization: []string{"Lienthong DEMO"}},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	}, ecKey); err != nil {
		return nil, err
	}
	for _, code := range organs {
		pr := pair(dir, "organ-"+code)
		if _, _, err := loadOrMake(pr, caCert, caKey, func() *x509.Certificate {
			return &x509.Certificate{Subject: pkix.Name{CommonName: names[code] + " (DEMO signer)",
				Organization: []string{"Lienthong DEMO"}, SerialNumber: code},
				KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}}
		}, rsaKey); err != nil {
			return nil, err
		}
		p.Organs[code] = pr
	}
	return p, nil
}

func pair(dir, name string) Pair {
	return Pair{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
}

func rsaKey() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
func ecKey() (crypto.Signer, error)  { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// loadOrMake returns the certificate and key in p, creating them when absent.
// A nil parent makes a self-signed certificate.
func loadOrMake(p Pair, parent *x509.Certificate, parentKey crypto.Signer, tmpl func() *x509.Certificate,
	gen func() (crypto.Signer, error)) (*x509.Certificate, crypto.Signer, error) {
	if cert, key, err := Load(p); err == nil {
		return cert, key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	key, err := gen()
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: key: %w", err)
	}
	t := tmpl()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	t.SerialNumber = serial
	t.NotBefore = time.Now().Add(-time.Hour)
	t.NotAfter = time.Now().AddDate(2, 0, 0)
	if parent == nil {
		parent, parentKey = t, key
	}
	der, err := x509.CreateCertificate(rand.Reader, t, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: key encoding: %w", err)
	}
	if err := os.WriteFile(p.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, fmt.Errorf("devpki: %w", err)
	}
	if err := os.WriteFile(p.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, fmt.Errorf("devpki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// Load reads a certificate and its PKCS#8 key.
func Load(p Pair) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(p.Cert)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(p.Key)
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, nil, fmt.Errorf("devpki: %s: not PEM", p.Cert)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: %s: %w", p.Cert, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: %s: %w", p.Key, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("devpki: %s: not a signing key", p.Key)
	}
	return cert, signer, nil
}
