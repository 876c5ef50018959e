package trust

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"lienthong/envelope/testpki"
)

// ocspDER is an OCSP response about leaf from issuer, signed by signer
// (issuer itself or a delegated responder).
func ocspDER(t testing.TB, issuer, signer *testpki.Cert, leaf *x509.Certificate, tmpl ocsp.Response) []byte {
	t.Helper()
	tmpl.SerialNumber = leaf.SerialNumber
	if signer != issuer {
		tmpl.Certificate = signer.Cert
	}
	der, err := ocsp.CreateResponse(issuer.Cert, signer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestOCSPCheckedOnceDecidedAtEachTime: a response checked once (parse,
// signature, responder, CertID: what the cache keeps) gives, at every
// check time, the verdict evalOCSP gives from the bytes — the time-bound
// checks run again at each time.
func TestOCSPCheckedOnceDecidedAtEachTime(t *testing.T) {
	p := cpki(t)
	now := p.Now
	leaf := p.ECLeaf.Cert
	responder := issue(t, p, p.Intermediate, testpki.LeafOptions{Name: "TEST OCSP responder",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, NotAfter: now.Add(24 * time.Hour)})
	noEKU := issue(t, p, p.Intermediate, testpki.LeafOptions{Name: "TEST not a responder"})
	week := ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(7 * 24 * time.Hour)}
	revokedLater := week
	revokedLater.Status, revokedLater.RevokedAt = ocsp.Revoked, now.Add(time.Hour)
	cfg := RevocationConfig{}.withDefaults()
	for _, tc := range []struct {
		name   string
		der    []byte
		issuer *x509.Certificate
		at     time.Time
		status string
		errHas string
	}{
		{"issuer-signed, current", ocspDER(t, p.Intermediate, p.Intermediate, leaf, week), p.Intermediate.Cert, now, StatusGood, ""},
		{"issuer-signed, after nextUpdate", ocspDER(t, p.Intermediate, p.Intermediate, leaf, week), p.Intermediate.Cert, now.Add(8 * 24 * time.Hour), StatusUnknown, "stale"},
		{"issuer-signed, before thisUpdate", ocspDER(t, p.Intermediate, p.Intermediate, leaf, week), p.Intermediate.Cert, now.Add(-2 * time.Hour), StatusUnknown, "thisUpdate"},
		{"delegated, current", ocspDER(t, p.Intermediate, responder, leaf, week), p.Intermediate.Cert, now, StatusGood, ""},
		{"delegated, responder expired", ocspDER(t, p.Intermediate, responder, leaf, week), p.Intermediate.Cert, now.Add(48 * time.Hour), StatusUnknown, "not valid at"},
		{"delegated without id-kp-OCSPSigning", ocspDER(t, p.Intermediate, noEKU, leaf, week), p.Intermediate.Cert, now, StatusUnknown, "lacks id-kp-OCSPSigning"},
		{"wrong issuer", ocspDER(t, p.Intermediate, p.Intermediate, leaf, week), p.Root.Cert, now, StatusUnknown, "bad OCSP signature"},
		{"revoked later than asked about", ocspDER(t, p.Intermediate, p.Intermediate, leaf, revokedLater), p.Intermediate.Cert, now, StatusGood, ""},
		{"revoked by then", ocspDER(t, p.Intermediate, p.Intermediate, leaf, revokedLater), p.Intermediate.Cert, now.Add(2 * time.Hour), StatusRevoked, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chk := checkedOCSP(tc.der, leaf, tc.issuer)
			// Decide at another time first: nothing of it may stick.
			_ = chk.decide(now.Add(-30*24*time.Hour), cfg)
			got := chk.decide(tc.at, cfg)
			want := evalOCSP(tc.der, leaf, tc.issuer, tc.at, cfg)
			if got.Status != tc.status || !strings.Contains(got.Error, tc.errHas) {
				t.Fatalf("status %s (%s), want %s with %q", got.Status, got.Error, tc.status, tc.errHas)
			}
			if got.Status != want.Status || got.Error != want.Error || got.SHA256 != want.SHA256 ||
				(got.RevokedAt == nil) != (want.RevokedAt == nil) {
				t.Fatalf("checked once: %+v\nfrom the bytes: %+v", got, want)
			}
			if got.RevokedAt != nil && got.RevokedAt == chk.decide(tc.at, cfg).RevokedAt {
				t.Fatal("decisions share RevokedAt")
			}
		})
	}
}

// BenchmarkOCSPCachedResponse: deciding a certificate from a cached OCSP
// response, parsed and verified each time (as before) or checked once.
func BenchmarkOCSPCachedResponse(b *testing.B) {
	p, err := cachePKI()
	if err != nil {
		b.Fatal(err)
	}
	der := ocspDER(b, p.Intermediate, p.Intermediate, p.ECLeaf.Cert,
		ocsp.Response{Status: ocsp.Good, ThisUpdate: p.Now.Add(-time.Hour), NextUpdate: p.Now.Add(24 * time.Hour)})
	cfg := RevocationConfig{}.withDefaults()
	b.Run("parse-each-time", func(b *testing.B) {
		for b.Loop() {
			if ev := evalOCSP(der, p.ECLeaf.Cert, p.Intermediate.Cert, p.Now, cfg); ev.Status != StatusGood {
				b.Fatal(ev.Error)
			}
		}
	})
	b.Run("checked-once", func(b *testing.B) {
		chk := checkedOCSP(der, p.ECLeaf.Cert, p.Intermediate.Cert)
		for b.Loop() {
			if ev := chk.decide(p.Now, cfg); ev.Status != StatusGood {
				b.Fatal(ev.Error)
			}
		}
	})
}
