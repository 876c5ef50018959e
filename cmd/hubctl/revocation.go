package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"lienthong/envelope/trust"
)

// newCRLChecker turns `hubctl verify --crl FILE…` into the domain's
// revocation checker: the given CRL files only (DER or PEM), no network
// (neither OCSP nor the certificates' distribution points), hard-fail.
// Every certificate of the chain below the anchor must be covered by one of
// the CRLs (give the issuing CA's CRL and the root's CRL), else the result
// is revocation_unknown. A file that is not a CRL is a usage error.
func newCRLChecker(files []string) (trust.RevocationChecker, error) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if blk, _ := pem.Decode(bytes.TrimSpace(b)); blk != nil {
			b = blk.Bytes
		}
		if _, err := x509.ParseRevocationList(b); err != nil {
			return nil, fmt.Errorf("%s: không phải CRL / not a CRL: %w", f, err)
		}
	}
	return trust.NewChecker(trust.RevocationConfig{Mode: trust.HardFail, CRLFiles: files, NoAIA: true, NoCDP: true, NoOCSP: true}, nil, nil)
}
