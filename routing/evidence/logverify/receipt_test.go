package logverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func sampleReceipt(t testing.TB) Receipt {
	t.Helper()
	acc := sampleLeaf()
	acc.Detail = `{"sha256": "` + strings.Repeat("0", 64) + `", "sender": "000.00.00.C01", "recipients": ["000.00.00.C02", "000.00.00.C03"]}`
	acc.DocumentSHA256 = make([]byte, 32)
	ev := Leaf{EventID: 50, DocumentID: acc.DocumentID, Recipient: "000.00.00.C02", Kind: "delivered", State: "delivered",
		Detail: `{"note": "<&\"'>"}`, At: acc.At.Add(time.Second)}
	r, err := NewReceipt("000.00.00.C02", 3, acc, 9, ev)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiptRoundTripAndRejects(t *testing.T) {
	r := sampleReceipt(t)
	b := r.Encode()
	got, err := ParseReceipt(b)
	if err != nil {
		t.Fatalf("ParseReceipt: %v\n%s", err, b)
	}
	if !bytes.Equal(got.EventLeaf(), r.EventLeaf()) || !bytes.Equal(got.AcceptedLeaf(), r.AcceptedLeaf()) || got.Sender != "000.00.00.C01" {
		t.Fatalf("round trip changed the leaves: %+v", got)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"extra whitespace", "<Recipient>", "<Recipient> "},
		{"other recipient", "<Recipient>000.00.00.C02", "<Recipient>000.00.00.C03"},
		{"other sender", "<Sender>000.00.00.C01", "<Sender>000.00.00.C09"},
		{"a comment", "<Document ", "<!-- x --><Document "},
		{"attribute quotes", `version="1"`, `version='1'`},
		{"version 2", `version="1"`, `version="2"`},
		{"non-canonical index", `leafIndex="9"`, `leafIndex="09"`},
		{"local time", `Z"`, `+00:00"`},
		{"short digest", "<Digest algorithm=\"sha-256\">00", "<Digest algorithm=\"sha-256\">"},
		{"not XML", "<Receipt", "Receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(bad, b) {
				t.Fatalf("%q not in the receipt", tc.from)
			}
			if _, err := ParseReceipt(bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseReceipt accepted %s: %v", tc.name, err)
			}
		})
	}
	// A receipt for someone who is not a recipient cannot be built.
	if _, err := NewReceipt("000.00.00.C09", r.AcceptedIndex, r.Accepted, r.AcceptedIndex, r.Accepted); !errors.Is(err, ErrInvalid) {
		t.Fatalf("receipt for a non-recipient: %v", err)
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add(sampleReceipt(f).Encode())
	f.Add([]byte(`<Receipt xmlns="urn:lienthong:receipt:1" version="1"/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatal("a non-canonical receipt parsed")
		}
	})
}

// FuzzVerifyBundle: arbitrary bytes never panic and never verify.
func FuzzVerifyBundle(f *testing.F) {
	cert := testCert(f, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := VerifyBundle(b, cert.cert, BundleOptions{}); err == nil {
			t.Fatal("random bytes verified as a bundle")
		}
	})
}

type certKey struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

func testCert(t testing.TB, notBefore, notAfter time.Time) certKey {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lienthong.test/log"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return certKey{c, key}
}

func TestCheckpointKeyBoundToCertificate(t *testing.T) {
	ck := testCert(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	skey, vkey, err := NoteKeys("lienthong.test/log", ck.key)
	if err != nil {
		t.Fatal(err)
	}
	fromCert, err := VerifierKeyFromCert(ck.cert)
	if err != nil || fromCert != vkey {
		t.Fatalf("verifier key from the certificate %q, from the key %q (%v)", fromCert, vkey, err)
	}
	signer, _ := note.NewSigner(skey)
	sign := func(at time.Time) string {
		cp := Checkpoint{Origin: "lienthong.test/log", Size: 1, Root: make([]byte, 32), Time: at}
		b, _ := note.Sign(&note.Note{Text: cp.Body()}, signer)
		return string(b)
	}
	if _, err := VerifyCheckpointWithCert(sign(time.Now()), ck.cert); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCheckpointWithCert(sign(time.Now().Add(48*time.Hour)), ck.cert); !errors.Is(err, ErrInvalid) {
		t.Fatalf("checkpoint after the certificate expired: %v", err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lienthong.test/log"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	ecCert, _ := x509.ParseCertificate(der)
	bad := testCert(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	bad.cert.Subject.CommonName = "has space"
	for name, c := range map[string]*x509.Certificate{"ECDSA key": ecCert, "common name with a space": bad.cert} {
		if _, err := VerifierKeyFromCert(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := testCert(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if _, err := VerifyCheckpointWithCert(sign(time.Now()), other.cert); !errors.Is(err, ErrInvalid) {
		t.Fatalf("checkpoint verified with another hub's certificate: %v", err)
	}
}
