package attsig_test

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/pkcs7"

	"lienthong/envelope/attsig"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

var testPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.New(time.Now().Truncate(time.Second)) })

func pki(t testing.TB) *testpki.PKI {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// world is the trust configuration of the attachment tests: domain
// "national" (the test root, hard-fail revocation from a CRL file of the
// issuing CA in which RSALeaf2 is revoked) and "no-revocation-source"
// (hard-fail with no CRL or responder at all).
type world struct {
	p        *testpki.PKI
	store    *trust.Store
	dir      string // temporary files for openssl
	revoked  *testpki.Cert
	verifier *attsig.Verifier
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldWith(t, pki(t), pki(t).RSALeaf2)
}

var testPKIEC = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.NewEC(time.Now().Truncate(time.Second)) })

// newFuzzWorld is newWorld on the small all-ECDSA PKI (fast to set up in
// every fuzz worker), without revocation checking (its CAs cannot sign CRLs).
func newFuzzWorld(t testing.TB) *world {
	t.Helper()
	p, err := testPKIEC()
	if err != nil {
		t.Fatal(err)
	}
	return newWorldWith(t, p, nil)
}

func newWorldWith(t testing.TB, p *testpki.PKI, revoked *testpki.Cert) *world {
	t.Helper()
	dir := t.TempDir()
	var chk, none trust.RevocationChecker
	if revoked != nil {
		chk, none = revocationCheckers(t, p, revoked, dir)
	}
	s := trust.NewStore()
	for _, d := range []*trust.Domain{
		{Name: "national", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}, Revocation: chk},
		{Name: "no-revocation-source", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}, Revocation: none},
	} {
		if err := s.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	return &world{p: p, store: s, dir: dir, revoked: revoked,
		verifier: &attsig.Verifier{Trust: s, Now: func() time.Time { return p.Now }}}
}

// needTool skips when an oracle is not installed (.ci/run installs them).
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run installs it)", name) // CI installs every oracle: missing is a failure
		}
		t.Skipf("%s not installed (.ci/run installs it)", name)
	}
}

// opensslSign signs content with `openssl cms -sign -binary -outform DER`
// (detached), as signer, with its issuing CA as extra certificate, plus the
// given extra arguments.
func (w *world) opensslSign(t testing.TB, content []byte, signer *testpki.Cert, extra ...string) []byte {
	t.Helper()
	s := attsigtest.Signer{KeyPEM: signer.KeyPEM(), CertPEM: signer.CertPEM(), Extra: []*x509.Certificate{w.p.Intermediate.Cert}}
	if signer.Cert.CheckSignatureFrom(w.p.Intermediate.Cert) != nil {
		s.Extra = []*x509.Certificate{w.p.UnknownRoot.Cert}
	}
	b, err := attsigtest.OpenSSLSign(w.dir, content, s, extra...)
	if errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI installs every oracle: missing is a failure
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goSign makes a detached CMS with digitorus/pkcs7, putting cert in the
// SignerInfo but signing with key — which need not be cert's key (the
// "wrong key" variant openssl refuses to produce).
func goSign(t testing.TB, content []byte, cert *x509.Certificate, key crypto.Signer, extra ...*x509.Certificate) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range extra {
		sd.AddCertificate(c)
	}
	sd.Detach()
	b, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shortLived is a certificate of the issuing CA valid for one hour around
// now, so that the hub's clock can be moved past its expiry.
func shortLived(t testing.TB, p *testpki.PKI) *testpki.Cert {
	t.Helper()
	c, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST short-lived signer", NotBefore: p.Now.Add(-time.Hour), NotAfter: p.Now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// revocationCheckers returns a hard-fail checker with a CRL file of the
// issuing CA revoking revoked, and a hard-fail checker with no source.
func revocationCheckers(t testing.TB, p *testpki.PKI, revoked *testpki.Cert, dir string) (trust.RevocationChecker, trust.RevocationChecker) {
	t.Helper()
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: p.Now.Add(-time.Hour), NextUpdate: p.Now.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.Cert.SerialNumber,
			RevocationTime: p.Now.Add(-30 * time.Minute), ReasonCode: 1}},
	}, p.Intermediate.Cert, p.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "issuing.crl")
	if err := os.WriteFile(crlFile, crl, 0o600); err != nil {
		t.Fatal(err)
	}
	chk, err := trust.NewChecker(trust.RevocationConfig{Mode: trust.HardFail, CRLFiles: []string{crlFile},
		NoAIA: true, NoCDP: true, LeafOnly: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	none, err := trust.NewChecker(trust.RevocationConfig{Mode: trust.HardFail, NoAIA: true, NoCDP: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return chk, none
}
