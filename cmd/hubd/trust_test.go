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
)

// --trust-dir: one folder per domain, policy from its file (configuration,
// not code); --trust-channels maps channels; bad input is refused.
func TestTrustDirConfiguration(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TEST CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	dir := t.TempDir()
	for path, b := range map[string][]byte{"agency/ca.pem": ca, "axis/ca.pem": ca, "axis/policy": []byte("record\n")} {
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
	for name, want := range map[string]string{"agency": "require", "axis": "record"} {
		d, ok := tc.Store.Domain(name)
		if !ok || string(d.Policy) != want || len(d.Roots) != 1 {
			t.Errorf("domain %s: %+v, want policy %s", name, d, want)
		}
	}
	if tc, err := trustConfig(dir, "api=axis, axis=agency", log); err != nil || tc.Domains["api"] != "axis" || tc.Domains["axis"] != "agency" {
		t.Errorf("--trust-channels: %+v %v", tc, err)
	}
	if tc, err := trustConfig("", "", log); tc != nil || err != nil {
		t.Errorf("no --trust-dir: %+v %v", tc, err)
	}
	for _, bad := range []struct{ dir, channels string }{
		{dir, "api"}, {filepath.Join(dir, "nope"), ""},
	} {
		if _, err := trustConfig(bad.dir, bad.channels, log); err == nil {
			t.Errorf("trustConfig(%q, %q) accepted", bad.dir, bad.channels)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "axis", "policy"), []byte("maybe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := trustConfig(dir, "", log); err == nil {
		t.Error("unknown policy accepted")
	}
}
