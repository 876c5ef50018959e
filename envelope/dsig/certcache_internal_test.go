package dsig

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"lienthong/envelope/testpki"
)

// TestKeyInfoCertIsParsedOnce: the same X509Certificate text gives the same
// parsed certificate; other text another one; bad text is refused each
// time (never cached); the cache stays bounded.
func TestKeyInfoCertIsParsedOnce(t *testing.T) {
	p, err := testpki.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf := base64.StdEncoding.EncodeToString(p.RSALeaf.Cert.Raw)
	wrapped := leaf[:40] + "\n  " + leaf[40:]
	a, ve := keyInfoCert(leaf)
	if ve != nil || !a.Equal(p.RSALeaf.Cert) {
		t.Fatalf("keyInfoCert: %v", ve)
	}
	if b, ve := keyInfoCert(leaf); ve != nil || b != a {
		t.Fatalf("second parse: %p, %v; want the cached %p", b, ve, a)
	}
	if c, ve := keyInfoCert(wrapped); ve != nil || !c.Equal(a) {
		t.Fatalf("wrapped text: %v", ve)
	}
	for _, bad := range []string{"!!notbase64", base64.StdEncoding.EncodeToString([]byte("not a certificate"))} {
		for range 2 {
			if _, ve := keyInfoCert(bad); ve == nil || ve.Code != CodeMalformed {
				t.Fatalf("%q: %v, want %s", bad, ve, CodeMalformed)
			}
		}
		parsedCerts.RLock()
		_, cached := parsedCerts.m[bad]
		parsedCerts.RUnlock()
		if cached {
			t.Fatalf("%q was cached", bad)
		}
	}
	padded := leaf + strings.Repeat(" ", maxCachedCertText)
	if c, ve := keyInfoCert(padded); ve != nil || !c.Equal(a) {
		t.Fatalf("padded text: %v", ve)
	}
	parsedCerts.RLock()
	_, cached := parsedCerts.m[padded]
	parsedCerts.RUnlock()
	if cached {
		t.Fatalf("a text of %d bytes was cached", len(padded))
	}
	for i := range maxParsedCerts + 10 {
		if _, ve := keyInfoCert(leaf + strings.Repeat(" ", i+1)); ve != nil {
			t.Fatal(ve)
		}
	}
	parsedCerts.RLock()
	n := len(parsedCerts.m)
	parsedCerts.RUnlock()
	if n > maxParsedCerts {
		t.Fatalf("%d cached certificates, at most %d", n, maxParsedCerts)
	}
}
