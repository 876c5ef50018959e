package attsig_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/digitorus/pkcs7"

	"lienthong/envelope/attsig"
	"lienthong/envelope/trust"
)

// TestDetachedOpenSSL: detached signatures made by `openssl cms -sign
// -binary -outform DER` (the independent signer), genuine and tampered.
func TestDetachedOpenSSL(t *testing.T) {
	w := newWorld(t)
	p := w.p
	content := bytes.Repeat([]byte("Nghị quyết TEST về thử nghiệm chữ ký số. "), 200)
	altered := bytes.Clone(content)
	altered[100] ^= 0x01
	short := shortLived(t, p)

	for _, tc := range []struct {
		name    string
		sig     func() []byte
		content []byte
		domain  string
		now     time.Time // zero: the PKI's now
		code    string    // "" = valid
	}{
		{"RSA, SHA-256, signed attributes", func() []byte { return w.opensslSign(t, content, p.RSALeaf) }, content, "", time.Time{}, ""},
		{"RSA, -nosmimecap", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-nosmimecap") }, content, "", time.Time{}, ""},
		{"RSA, -noattr", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-noattr") }, content, "", time.Time{}, ""},
		{"RSA, -cades (signingCertificateV2)", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-cades") }, content, "", time.Time{}, ""},
		{"RSA, SHA-512", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-md", "sha512") }, content, "", time.Time{}, ""},
		{"ECDSA P-256", func() []byte { return w.opensslSign(t, content, p.ECLeaf) }, content, "", time.Time{}, ""},
		{"ECDSA P-256, -noattr", func() []byte { return w.opensslSign(t, content, p.ECLeaf, "-noattr") }, content, "", time.Time{}, ""},
		{"ECDSA P-384, SHA-384, -noattr", func() []byte { return w.opensslSign(t, content, p.ECLeaf384, "-md", "sha384", "-noattr") }, content, "", time.Time{}, ""},
		{"RSA, SHA-512, -noattr", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-md", "sha512", "-noattr") }, content, "", time.Time{}, ""},
		{"ECDSA P-384, nonRepudiation only", func() []byte { return w.opensslSign(t, content, p.ECLeaf384, "-md", "sha384") }, content, "", time.Time{}, ""},

		{"altered attachment byte", func() []byte { return w.opensslSign(t, content, p.RSALeaf) }, altered, "", time.Time{}, attsig.CodeContentMismatch},
		{"altered attachment byte, no signed attributes", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-noattr") }, altered, "", time.Time{}, attsig.CodeInvalid},
		{"altered attachment byte, ECDSA, no signed attributes", func() []byte { return w.opensslSign(t, content, p.ECLeaf, "-noattr") }, altered, "", time.Time{}, attsig.CodeInvalid},
		{"wrong key", func() []byte { return goSign(t, content, p.RSALeaf.Cert, p.RSALeaf2.Key, p.Intermediate.Cert) }, content, "", time.Time{}, attsig.CodeInvalid},
		{"SHA-1", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-md", "sha1") }, content, "", time.Time{}, attsig.CodeSHA1},
		{"RSA-PSS", func() []byte {
			return w.opensslSign(t, content, p.RSALeaf, "-keyopt", "rsa_padding_mode:pss")
		}, content, "", time.Time{}, attsig.CodeAlgorithm},
		{"expired signer", func() []byte { return w.opensslSign(t, content, p.ExpiredLeaf) }, content, "", time.Time{}, attsig.CodeExpired},
		// Signed while valid (signingTime inside the validity); the hub's
		// clock is past the expiry: the claimed time does not help.
		{"signer expired since signing", func() []byte { return w.opensslSign(t, content, short) }, content, "", p.Now.Add(2 * time.Hour), attsig.CodeExpired},
		{"not yet valid signer", func() []byte { return w.opensslSign(t, content, p.FutureLeaf) }, content, "", time.Time{}, attsig.CodeNotYetValid},
		{"revoked signer (CRL)", func() []byte { return w.opensslSign(t, content, p.RSALeaf2) }, content, "", time.Time{}, attsig.CodeRevoked},
		{"unknown CA", func() []byte { return w.opensslSign(t, content, p.UnknownLeaf) }, content, "", time.Time{}, attsig.CodeUnknownSigner},
		{"keyEncipherment only", func() []byte { return w.opensslSign(t, content, p.KeyEncLeaf) }, content, "", time.Time{}, attsig.CodeKeyUsage},
		{"RSA-1024", func() []byte { return w.opensslSign(t, content, p.WeakRSALeaf) }, content, "", time.Time{}, attsig.CodeWeakKey},
		{"revocation status unknown under hard-fail", func() []byte { return w.opensslSign(t, content, p.RSALeaf) }, content, "no-revocation-source", time.Time{}, attsig.CodeRevocationUnkn},
		{"opaque (-nodetach)", func() []byte { return w.opensslSign(t, content, p.RSALeaf, "-nodetach") }, content, "", time.Time{}, attsig.CodeNotDetached},
		{"not CMS", func() []byte { return []byte("-----BEGIN PKCS7-----\nnot really\n") }, content, "", time.Time{}, attsig.CodeMalformed},
		{"over the size limit", func() []byte { return make([]byte, 2<<20) }, content, "", time.Time{}, attsig.CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *w.verifier
			if !tc.now.IsZero() {
				v.Now = func() time.Time { return tc.now }
			}
			domain := tc.domain
			if domain == "" {
				domain = "national"
			}
			vd, err := v.VerifyDetached(context.Background(), domain, tc.content, tc.sig())
			if vd == nil {
				t.Fatalf("no verdict: %v", err)
			}
			if tc.code == "" {
				if err != nil || vd.Outcome != attsig.OutcomeValid {
					t.Fatalf("err = %v, verdict %s %s", err, vd.Outcome, vd.Code)
				}
				if vd.Signer == nil || len(vd.Chain) != 3 || vd.Revocation == nil || vd.Revocation.Status != trust.StatusGood ||
					len(vd.Revocation.Evidence) == 0 || len(vd.Revocation.Evidence[0].DER) == 0 {
					t.Fatalf("valid verdict lacks signer, chain or revocation evidence: %+v", vd)
				}
				return
			}
			var ae *attsig.Error
			if !errors.As(err, &ae) || ae.Code != tc.code || vd.Code != tc.code || vd.Outcome != attsig.OutcomeInvalid {
				t.Fatalf("err = %v, verdict code %q; want %s", err, vd.Code, tc.code)
			}
			if tc.code == attsig.CodeRevoked && (vd.Revocation == nil || vd.Revocation.Status != trust.StatusRevoked) {
				t.Fatalf("revoked verdict without evidence: %+v", vd.Revocation)
			}
		})
	}
}

func TestVerdictJSONRoundTrip(t *testing.T) {
	w := newWorld(t)
	content := []byte("TEST content")
	vd, err := w.verifier.VerifyDetached(context.Background(), "national", content, w.opensslSign(t, content, w.p.RSALeaf))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(vd)
	if err != nil {
		t.Fatal(err)
	}
	var back attsig.Verdict
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Signer.Equal(vd.Signer) || len(back.Chain) != len(vd.Chain) || back.Revocation.Status != trust.StatusGood {
		t.Fatalf("round trip lost data: %s", b)
	}
	// The stored evidence re-checks the verdict without the network.
	d, _ := w.store.Domain("national")
	if _, err := d.RecheckVerdict(back.Signer, back.Chain[1:len(back.Chain)-1], back.Revocation, back.VerifiedAt); err != nil {
		t.Fatalf("RecheckVerdict from the stored verdict: %v", err)
	}
}

func TestUnknownDomain(t *testing.T) {
	w := newWorld(t)
	if _, err := w.verifier.VerifyDetached(context.Background(), "nowhere", nil, nil); !errors.Is(err, attsig.ErrUnknownDomain) {
		t.Fatalf("err = %v", err)
	}
}

// The ESS signingCertificateV2 attribute must name the signer's
// certificate: one naming another certificate (a substitution) is refused.
func TestSigningCertificateAttribute(t *testing.T) {
	w := newWorld(t)
	p := w.p
	content := []byte("TEST content")
	type essCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
		CertHash      []byte
	}
	type signingCertificateV2 struct{ Certs []essCertID }
	oid := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	sign := func(named *x509.Certificate, alg asn1.ObjectIdentifier) []byte {
		var sum []byte
		switch {
		case alg == nil:
			s := sha256.Sum256(named.Raw)
			sum = s[:]
		default:
			s := sha512.Sum512(named.Raw)
			sum = s[:]
		}
		sd, err := pkcs7.NewSignedData(content)
		if err != nil {
			t.Fatal(err)
		}
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		attr := pkcs7.Attribute{Type: oid, Value: signingCertificateV2{Certs: []essCertID{{HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: alg}, CertHash: sum}}}}
		if err := sd.AddSigner(p.RSALeaf.Cert, p.RSALeaf.Key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{attr}}); err != nil {
			t.Fatal(err)
		}
		sd.AddCertificate(p.Intermediate.Cert)
		sd.Detach()
		b, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		sig  []byte
		code string
	}{
		{"names the signer (SHA-256 by default)", sign(p.RSALeaf.Cert, nil), ""},
		{"names the signer (SHA-512)", sign(p.RSALeaf.Cert, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}), ""},
		{"names another certificate", sign(p.RSALeaf2.Cert, nil), attsig.CodeSigningCert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vd, err := w.verifier.VerifyDetached(context.Background(), "national", content, tc.sig)
			if vd == nil {
				t.Fatal(err)
			}
			if vd.Code != tc.code || (tc.code == "") != (err == nil) {
				t.Fatalf("verdict %s %s (%v), want %q", vd.Outcome, vd.Code, err, tc.code)
			}
		})
	}
}
