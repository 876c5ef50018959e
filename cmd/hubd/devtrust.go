package main

import (
	"bytes"
	"crypto/x509"
	"fmt"

	"lienthong/cmd/internal/devpki"
	"lienthong/cmd/internal/hub"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
)

// devTrust is the dev hub's trust configuration: the demo CA is the anchor
// of the agency domain (policy require: every API submission must be signed
// by the sending organ's demo key) and of the axis domain (policy record).
func devTrust(caCert string) (*hub.TrustConfig, error) {
	s := trust.NewStore()
	for name, pol := range map[string]trust.Policy{"agency": trust.PolicyRequire, "axis": trust.PolicyRecord, "partner": trust.PolicyRequire} {
		if err := s.AddPEMFile(name, pol, caCert); err != nil {
			return nil, fmt.Errorf("dev trust: %w", err)
		}
	}
	return &hub.TrustConfig{Store: s}, nil
}

// signDemo signs a demo document with an organ's demo key (RSA-SHA256,
// exclusive c14n, in edXMLHeader) and chain (the organ's certificate; the
// demo CA issues organ certificates directly).
func signDemo(doc []byte, p devpki.Pair) ([]byte, error) {
	cert, key, err := devpki.Load(p)
	if err != nil {
		return nil, err
	}
	return dsig.Sign(doc, key, []*x509.Certificate{cert}, dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
}

// signed reports whether a sample file already carries an XML-DSig signature.
func signed(doc []byte) bool { return bytes.Contains(doc, []byte(dsig.NamespaceDSig)) }
