package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lienthong/envelope/trust"
)

// --trust-dir also carries each domain's revocation configuration
// (revocation.json, crl/*.crl); a bad one is refused at start-up.
func TestTrustDirRevocation(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TEST CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour)}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"agency/ca.pem":          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"agency/crl/ca.crl":      crl,
		"agency/revocation.json": []byte(`{"mode": "soft", "ocsp_responders": ["http://ocsp.example.invalid/"]}`),
		"axis/ca.pem":            pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
	for path, b := range files {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	tc, err := trustConfig(dir, "", log)
	if err != nil {
		t.Fatal(err)
	}
	agency, _ := tc.Store.Domain("agency")
	chk, ok := agency.Revocation.(*trust.Checker)
	if !ok || chk.Mode() != trust.SoftFail {
		t.Fatalf("agency revocation checker %#v", agency.Revocation)
	}
	if axis, _ := tc.Store.Domain("axis"); axis.Revocation != nil {
		t.Fatal("axis has a checker without configuration")
	}
	if err := os.WriteFile(filepath.Join(dir, "agency/revocation.json"), []byte(`{"mode": "sometimes"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := trustConfig(dir, "", log); err == nil {
		t.Fatal("bad revocation.json accepted")
	}
}
