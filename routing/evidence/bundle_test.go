package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// rezip replaces one file of a bundle and fixes the manifest's digest of
// it, as a forger would.
func rezip(t *testing.T, b []byte, name string, data []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	files := map[string][]byte{}
	var order []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
		order = append(order, f.Name)
	}
	files[name] = data
	var m logverify.Manifest
	_ = json.Unmarshal(files[logverify.BundleManifest], &m)
	for i := range m.Files {
		if m.Files[i].Path == name {
			s := sha256.Sum256(data)
			m.Files[i].SHA256, m.Files[i].Size = hex.EncodeToString(s[:]), int64(len(data))
		}
	}
	files[logverify.BundleManifest], _ = json.MarshalIndent(m, "", "  ")
	for _, n := range order {
		w, _ := zw.Create(n)
		_, _ = w.Write(files[n])
	}
	_ = zw.Close()
	return out.Bytes()
}

// The verification verdict is part of the accepted leaf: the bundle's
// report must agree with it, and a report edited afterwards is caught.
func TestBundleVerdictIsProvenByTheLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	body := []byte("<signed/>")
	sum := sha256.Sum256(body)
	a, err := e.led.Accept(ctx, ledger.NewDocument{Sender: sender, DocRef: "V1", Format: "hub", Recipients: []string{recipient},
		Raw: body, SHA256: sum[:], Verification: map[string]any{"outcome": "valid", "signatures": []any{}}})
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: origin},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	skey, _, _ := logverify.NoteKeys(origin, key)
	c, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: skey, Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	e.sign(t, c)
	zb, err := e.log.Bundle(ctx, a.ID, BundleConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := logverify.VerifyBundle(zb, cert, logverify.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Checked, "\n"), `outcome "valid", as the accepted leaf records it`) {
		t.Fatalf("report:\n%s", strings.Join(rep.Checked, "\n"))
	}
	forged := rezip(t, zb, logverify.BundleVerification, []byte(`{"outcome": "invalid"}`))
	_, err = logverify.VerifyBundle(forged, cert, logverify.BundleOptions{})
	var pe *logverify.PartError
	if !errors.As(err, &pe) || pe.Part != logverify.BundleVerification {
		t.Fatalf("edited verification report: %v", err)
	}
	if _, err := e.log.Bundle(ctx, "not-a-uuid", BundleConfig{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bundle of a malformed id: %v", err)
	}
}
