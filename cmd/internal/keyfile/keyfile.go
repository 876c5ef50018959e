// Package keyfile loads a signing key and its certificate chain from files
// for `hubctl sign` and the hub's own software signer: PEM keys (PKCS#8,
// PKCS#1, SEC 1) with PEM certificates, or a PKCS#12 (.p12/.pfx) bundle
// holding key, certificate and chain. Hardware tokens fill dsig.KeySigner
// directly and do not go through here.
package keyfile

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"software.sslmate.com/src/go-pkcs12"

	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
)

// Load reads the key at keyPath and the certificates at certPath (may be
// empty for PKCS#12) and chainPath (optional intermediates, PEM). password
// opens a PKCS#12 file. The key must match the first certificate.
func Load(keyPath, certPath, chainPath, password string) (dsig.SoftwareSigner, error) {
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return dsig.SoftwareSigner{}, err
	}
	var s dsig.SoftwareSigner
	if bytes.Contains(kb, []byte("-----BEGIN")) {
		if s.Key, err = parsePEMKey(kb); err != nil {
			return s, fmt.Errorf("%s: %w", keyPath, err)
		}
	} else {
		key, leaf, cas, err := pkcs12.DecodeChain(kb, password)
		if err != nil {
			return s, fmt.Errorf("%s: PKCS#12: %w", keyPath, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return s, fmt.Errorf("%s: PKCS#12 key is not a signing key", keyPath)
		}
		s.Key = signer
		s.Certs = append([]*x509.Certificate{leaf}, cas...)
	}
	for _, p := range []string{certPath, chainPath} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return s, err
		}
		certs, err := trust.ParsePEM(b)
		if err != nil {
			return s, fmt.Errorf("%s: %w", p, err)
		}
		if p == certPath && len(s.Certs) > 0 { // a PKCS#12 leaf is replaced by --cert
			s.Certs = s.Certs[:0]
		}
		s.Certs = append(s.Certs, certs...)
	}
	if len(s.Certs) == 0 {
		return s, errors.New("no certificate: give --cert (or a PKCS#12 file with one)")
	}
	pub, ok := s.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(s.Certs[0].PublicKey) {
		return s, errors.New("the key does not match the certificate")
	}
	// Drop self-signed anchors: KeyInfo carries the leaf and intermediates.
	out := s.Certs[:1]
	for _, c := range s.Certs[1:] {
		if !bytes.Equal(c.RawIssuer, c.RawSubject) || c.CheckSignatureFrom(c) != nil {
			out = append(out, c)
		}
	}
	s.Certs = out
	return s, nil
}

func parsePEMKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no private key in PEM input")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted PEM keys are not supported: use PKCS#12")
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T is not a signing key", k)
		}
		return s, nil
	}
}
