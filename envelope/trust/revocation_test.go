package trust_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// crlServer is a CRL distribution point: GET /<name> serves the DER CRL
// stored under name.
type crlServer struct {
	*httptest.Server
	mu    sync.Mutex // guards crls
	crls  map[string][]byte
	gets  atomic.Int64
	calls sync.Map // name → *atomic.Int64
}

func newCRLServer(t testing.TB) *crlServer {
	s := &crlServer{crls: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		s.mu.Lock()
		der, ok := s.crls[name]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.gets.Add(1)
		n, _ := s.calls.LoadOrStore(name, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(der)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) put(name string, der []byte) string {
	s.mu.Lock()
	s.crls[name] = der
	s.mu.Unlock()
	return s.URL + "/" + name
}

func (s *crlServer) fetches(name string) int64 {
	n, ok := s.calls.Load(name)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// ocspResponder is an RFC 6960 responder over HTTP (POST, and GET with the
// base64 request in the path) for the certificates of one issuer.
type ocspResponder struct {
	*httptest.Server
	issuer *testpki.Cert
	signer *testpki.Cert // the delegated responder certificate, or the issuer

	mu      sync.Mutex // guards the fields below
	status  map[string]ocsp.Response
	forge   crypto.Signer // when set, responses are signed with this key
	tryLate bool
	asked   int
}

func newOCSPResponder(t testing.TB, issuer, signer *testpki.Cert) *ocspResponder {
	o := &ocspResponder{issuer: issuer, signer: signer, status: map[string]ocsp.Response{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *ocspResponder) serve(w http.ResponseWriter, r *http.Request) {
	var der []byte
	switch r.Method {
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "want application/ocsp-request", http.StatusUnsupportedMediaType)
			return
		}
		der, _ = io.ReadAll(io.LimitReader(r.Body, 10<<10))
	case http.MethodGet:
		p, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/"))
		der, _ = base64.StdEncoding.DecodeString(p)
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked++
	if o.tryLate {
		w.Write(ocsp.TryLaterErrorResponse)
		return
	}
	tmpl, ok := o.status[req.SerialNumber.String()]
	if !ok {
		tmpl = ocsp.Response{Status: ocsp.Unknown, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	}
	tmpl.SerialNumber = req.SerialNumber
	tmpl.IssuerHash = req.HashAlgorithm
	var key crypto.Signer = o.signer.Key
	if o.forge != nil {
		key = o.forge
	}
	if o.signer != o.issuer {
		tmpl.Certificate = o.signer.Cert
	}
	resp, err := ocsp.CreateResponse(o.issuer.Cert, o.signer.Cert, tmpl, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(resp)
}

func (o *ocspResponder) set(c *testpki.Cert, status int, revokedAt, this, next time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status[c.Cert.SerialNumber.String()] = ocsp.Response{Status: status, RevokedAt: revokedAt, ThisUpdate: this, NextUpdate: next,
		RevocationReason: ocsp.KeyCompromise}
}

// makeCRL signs a CRL of issuer revoking the given serials at revokedAt.
func makeCRL(t testing.TB, issuer *testpki.Cert, key crypto.Signer, number int64, this, next time.Time, revokedAt time.Time, revoked ...*testpki.Cert) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: this, NextUpdate: next}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: c.Cert.SerialNumber, RevocationTime: revokedAt, ReasonCode: 1})
	}
	if key == nil {
		key = issuer.Key
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// revocationWorld is the test PKI plus a CRL distribution point and an OCSP
// responder for the issuing CA, and leaves pointing at them.
type revocationWorld struct {
	p      *testpki.PKI
	now    time.Time
	crl    *crlServer
	ocsp   *ocspResponder
	rootCL string // URL of the root's CRL (covers the intermediate)

	ocspGood, ocspRevoked, ocspUnknown *testpki.Cert // AIA → responder only
	crlGood, crlRevoked                *testpki.Cert // CDP → inter.crl only
	downLeaf                           *testpki.Cert // AIA → a closed port
	interCRL                           string
}

func newWorld(t testing.TB) *revocationWorld {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	w := &revocationWorld{p: p, now: p.Now}
	now := p.Now
	w.crl = newCRLServer(t)
	delegate, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST OCSP responder", KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	if err != nil {
		t.Fatal(err)
	}
	w.ocsp = newOCSPResponder(t, p.Intermediate, delegate)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	issue := func(name string, o testpki.LeafOptions) *testpki.Cert {
		o.Name = name
		c, err := p.Issue(p.Intermediate, o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w.interCRL = w.crl.URL + "/inter.crl"
	w.ocspGood = issue("TEST OCSP good", testpki.LeafOptions{OCSPServer: []string{w.ocsp.URL}})
	w.ocspRevoked = issue("TEST OCSP revoked", testpki.LeafOptions{OCSPServer: []string{w.ocsp.URL}})
	w.ocspUnknown = issue("TEST OCSP unknown", testpki.LeafOptions{OCSPServer: []string{w.ocsp.URL}})
	w.crlGood = issue("TEST CRL good", testpki.LeafOptions{CRLDistributionPoints: []string{w.interCRL}})
	w.crlRevoked = issue("TEST CRL revoked", testpki.LeafOptions{CRLDistributionPoints: []string{w.interCRL}})
	w.downLeaf = issue("TEST responder down", testpki.LeafOptions{OCSPServer: []string{downURL}})

	w.ocsp.set(w.ocspGood, ocsp.Good, time.Time{}, now.Add(-time.Minute), now.Add(4*time.Hour))
	w.ocsp.set(w.ocspRevoked, ocsp.Revoked, now.Add(-2*time.Hour), now.Add(-time.Minute), now.Add(4*time.Hour))
	w.crl.put("inter.crl", makeCRL(t, p.Intermediate, nil, 1, now.Add(-time.Minute), now.Add(4*time.Hour), now.Add(-3*time.Hour), w.crlRevoked))
	w.rootCL = w.crl.put("root.crl", makeCRL(t, p.Root, nil, 1, now.Add(-time.Minute), now.Add(24*time.Hour), time.Time{}))
	return w
}

func (w *revocationWorld) chain(c *testpki.Cert) []*x509.Certificate {
	return []*x509.Certificate{c.Cert, w.p.Intermediate.Cert, w.p.Root.Cert}
}

func (w *revocationWorld) checker(t testing.TB, cfg trust.RevocationConfig) *trust.Checker {
	t.Helper()
	cfg.CRLURLs = append(cfg.CRLURLs, w.rootCL)
	c, err := trust.NewChecker(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckerStatuses(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name       string
		leaf       *testpki.Cert
		mode       trust.FailureMode
		want       error // nil, trust.ErrRevoked or trust.ErrRevocationUnknown
		wantMethod string
		softFail   bool
		errHas     string
	}{
		{"good by OCSP", w.ocspGood, trust.HardFail, nil, trust.MethodOCSP, false, ""},
		{"revoked by OCSP", w.ocspRevoked, trust.HardFail, trust.ErrRevoked, trust.MethodOCSP, false, "ocsp"},
		{"good by CRL", w.crlGood, trust.HardFail, nil, trust.MethodCRL, false, ""},
		{"revoked by CRL", w.crlRevoked, trust.HardFail, trust.ErrRevoked, trust.MethodCRL, false, "crl"},
		{"responder unknown, hard-fail", w.ocspUnknown, trust.HardFail, trust.ErrRevocationUnknown, trust.MethodOCSP, false, "status unknown"},
		{"responder down, hard-fail", w.downLeaf, trust.HardFail, trust.ErrRevocationUnknown, trust.MethodOCSP, false, "connect"},
		{"responder down, soft-fail", w.downLeaf, trust.SoftFail, nil, trust.MethodOCSP, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := w.checker(t, trust.RevocationConfig{Mode: tc.mode})
			res, err := c.CheckRevocationEvidence(context.Background(), w.chain(tc.leaf), w.now)
			if tc.want == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != nil && !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("err = %v, want it to mention %q", err, tc.errHas)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if res.SoftFail != tc.softFail {
				t.Errorf("SoftFail = %v, want %v", res.SoftFail, tc.softFail)
			}
			leafEv := res.Evidence[0]
			if leafEv.Method != tc.wantMethod || leafEv.Serial != hexSerial(tc.leaf) {
				t.Errorf("leaf evidence %s about %s, want %s about %s", leafEv.Method, leafEv.Serial, tc.wantMethod, hexSerial(tc.leaf))
			}
			if tc.want == nil && !tc.softFail {
				// Decisive evidence carries the signed bytes and its times.
				if len(leafEv.DER) == 0 || leafEv.ThisUpdate.IsZero() || leafEv.Status != trust.StatusGood {
					t.Errorf("leaf evidence %+v lacks DER, times or good status", leafEv)
				}
				// The intermediate was checked against the root's CRL.
				last := res.Evidence[len(res.Evidence)-1]
				if last.Serial != hexSerial(&testpki.Cert{Cert: w.p.Intermediate.Cert}) || last.Method != trust.MethodCRL || last.Status != trust.StatusGood {
					t.Errorf("intermediate evidence %+v", last)
				}
			}
			if errors.Is(tc.want, trust.ErrRevoked) && (res.Status != trust.StatusRevoked || res.Evidence[len(res.Evidence)-1].RevokedAt == nil) {
				t.Errorf("revoked result %+v", res)
			}
			// The plain interface says the same.
			if err2 := c.CheckRevocation(context.Background(), w.chain(tc.leaf), w.now); (err2 == nil) != (err == nil) {
				t.Errorf("CheckRevocation = %v, CheckRevocationEvidence = %v", err2, err)
			}
		})
	}
}

func hexSerial(c *testpki.Cert) string { return c.Cert.SerialNumber.Text(16) }

func TestCheckerForgedAndStale(t *testing.T) {
	w := newWorld(t)
	p, now := w.p, w.now
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noEKU, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST responder without OCSPSigning"})
	if err != nil {
		t.Fatal(err)
	}
	leafFor := func(name string, o testpki.LeafOptions) *testpki.Cert {
		o.Name = name
		c, err := p.Issue(p.Intermediate, o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T) *testpki.Cert
		mode   trust.FailureMode
		errHas string // "" → accepted (soft-fail)
	}{
		{"forged CRL signature (claims good), hard-fail", func(t *testing.T) *testpki.Cert {
			leaf := leafFor("TEST forged CRL", testpki.LeafOptions{CRLDistributionPoints: []string{w.crl.URL + "/forged.crl"}})
			w.crl.put("forged.crl", makeCRL(t, p.Intermediate, otherKey, 9, now.Add(-time.Minute), now.Add(time.Hour), time.Time{}))
			return leaf
		}, trust.HardFail, "CRL signature does not verify"},
		{"forged CRL signature, soft-fail", func(t *testing.T) *testpki.Cert {
			return leafFor("TEST forged CRL soft", testpki.LeafOptions{CRLDistributionPoints: []string{w.crl.URL + "/forged.crl"}})
		}, trust.SoftFail, ""},
		{"stale CRL, hard-fail", func(t *testing.T) *testpki.Cert {
			leaf := leafFor("TEST stale CRL", testpki.LeafOptions{CRLDistributionPoints: []string{w.crl.URL + "/stale.crl"}})
			w.crl.put("stale.crl", makeCRL(t, p.Intermediate, nil, 2, now.Add(-48*time.Hour), now.Add(-24*time.Hour), time.Time{}))
			return leaf
		}, trust.HardFail, "CRL is stale"},
		{"stale CRL, soft-fail", func(t *testing.T) *testpki.Cert {
			return leafFor("TEST stale CRL soft", testpki.LeafOptions{CRLDistributionPoints: []string{w.crl.URL + "/stale.crl"}})
		}, trust.SoftFail, ""},
		{"forged OCSP signature", func(t *testing.T) *testpki.Cert {
			o := newOCSPResponder(t, p.Intermediate, p.Intermediate)
			o.forge = otherKey
			leaf := leafFor("TEST forged OCSP", testpki.LeafOptions{OCSPServer: []string{o.URL}})
			o.set(leaf, ocsp.Good, time.Time{}, now.Add(-time.Minute), now.Add(time.Hour))
			return leaf
		}, trust.HardFail, "bad OCSP signature"},
		{"delegated responder without id-kp-OCSPSigning", func(t *testing.T) *testpki.Cert {
			o := newOCSPResponder(t, p.Intermediate, noEKU)
			leaf := leafFor("TEST bad delegate", testpki.LeafOptions{OCSPServer: []string{o.URL}})
			o.set(leaf, ocsp.Good, time.Time{}, now.Add(-time.Minute), now.Add(time.Hour))
			return leaf
		}, trust.HardFail, "lacks id-kp-OCSPSigning"},
		{"delegated responder of another CA", func(t *testing.T) *testpki.Cert {
			foreign, err := p.Issue(p.UnknownRoot, testpki.LeafOptions{Name: "TEST foreign OCSP responder", KeyUsage: x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
			if err != nil {
				t.Fatal(err)
			}
			o := newOCSPResponder(t, p.Intermediate, foreign)
			leaf := leafFor("TEST foreign delegate", testpki.LeafOptions{OCSPServer: []string{o.URL}})
			o.set(leaf, ocsp.Good, time.Time{}, now.Add(-time.Minute), now.Add(time.Hour))
			return leaf
		}, trust.HardFail, "is not issued by"},
		{"stale OCSP response", func(t *testing.T) *testpki.Cert {
			o := newOCSPResponder(t, p.Intermediate, p.Intermediate)
			leaf := leafFor("TEST stale OCSP", testpki.LeafOptions{OCSPServer: []string{o.URL}})
			o.set(leaf, ocsp.Good, time.Time{}, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
			return leaf
		}, trust.HardFail, "OCSP response is stale"},
		{"responder answers tryLater", func(t *testing.T) *testpki.Cert {
			o := newOCSPResponder(t, p.Intermediate, p.Intermediate)
			o.tryLate = true
			return leafFor("TEST try later", testpki.LeafOptions{OCSPServer: []string{o.URL}})
		}, trust.HardFail, "try later"},
		{"responder from another issuer's key (root signs for the intermediate's leaf)", func(t *testing.T) *testpki.Cert {
			o := newOCSPResponder(t, p.Root, p.Root)
			leaf := leafFor("TEST wrong issuer", testpki.LeafOptions{OCSPServer: []string{o.URL}})
			o.set(leaf, ocsp.Good, time.Time{}, now.Add(-time.Minute), now.Add(time.Hour))
			return leaf
		}, trust.HardFail, "OCSP response rejected"},
		{"OCSP down, CRL good: falls back", func(t *testing.T) *testpki.Cert {
			return leafFor("TEST fallback", testpki.LeafOptions{OCSPServer: []string{"http://127.0.0.1:1/"}, CRLDistributionPoints: []string{w.interCRL}})
		}, trust.HardFail, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := tc.setup(t)
			c := w.checker(t, trust.RevocationConfig{Mode: tc.mode})
			res, err := c.CheckRevocationEvidence(context.Background(), w.chain(leaf), now)
			switch {
			case tc.errHas == "-":
				if err != nil || res.Status != trust.StatusGood {
					t.Fatalf("err = %v, status %s; want good", err, res.Status)
				}
			case tc.errHas == "":
				if err != nil || !res.SoftFail || res.Status != trust.StatusUnknown {
					t.Fatalf("err = %v, result %+v; want accepted with soft-fail", err, res)
				}
			default:
				if !errors.Is(err, trust.ErrRevocationUnknown) || errors.Is(err, trust.ErrRevoked) {
					t.Fatalf("err = %v, want ErrRevocationUnknown", err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.errHas)
				}
			}
		})
	}
}

// TestCRLRefreshAfterNextUpdate: a cached CRL is used until its nextUpdate
// without fetching it again, then fetched again; the new CRL revokes.
func TestCRLRefreshAfterNextUpdate(t *testing.T) {
	w := newWorld(t)
	p, now := w.p, w.now
	leaf, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST refresh", CRLDistributionPoints: []string{w.crl.URL + "/refresh.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	w.crl.put("refresh.crl", makeCRL(t, p.Intermediate, nil, 1, now.Add(-time.Minute), now.Add(time.Hour), time.Time{}))
	c := w.checker(t, trust.RevocationConfig{})
	ctx := context.Background()
	if err := c.CheckRevocation(ctx, w.chain(leaf), now); err != nil {
		t.Fatalf("first check: %v", err)
	}
	// The CA revokes the leaf and publishes a new CRL; the hub still holds
	// a current CRL and does not fetch again.
	revokedAt := now.Add(10 * time.Minute)
	w.crl.put("refresh.crl", makeCRL(t, p.Intermediate, nil, 2, now.Add(15*time.Minute), now.Add(3*time.Hour), revokedAt, leaf))
	if err := c.CheckRevocation(ctx, w.chain(leaf), now.Add(30*time.Minute)); err != nil {
		t.Fatalf("check before nextUpdate: %v", err)
	}
	if n := w.crl.fetches("refresh.crl"); n != 1 {
		t.Fatalf("%d fetches before nextUpdate, want 1", n)
	}
	// Past nextUpdate the CRL is fetched again and the revocation seen.
	err = c.CheckRevocation(ctx, w.chain(leaf), now.Add(61*time.Minute))
	if !errors.Is(err, trust.ErrRevoked) {
		t.Fatalf("check after nextUpdate: %v, want revoked", err)
	}
	if n := w.crl.fetches("refresh.crl"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// An older CRL served later (rollback) is refused: the cached one stays.
	w.crl.put("refresh.crl", makeCRL(t, p.Intermediate, nil, 1, now.Add(-time.Minute), now.Add(time.Hour), time.Time{}))
	if err := c.CheckRevocation(ctx, w.chain(leaf), now.Add(4*time.Hour)); !errors.Is(err, trust.ErrRevocationUnknown) {
		t.Fatalf("after rollback and nextUpdate: %v, want unknown (stale)", err)
	}
}

// TestOCSPCachedUntilNextUpdate: a response is reused while current.
func TestOCSPCachedUntilNextUpdate(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t, trust.RevocationConfig{})
	ctx := context.Background()
	for _, at := range []time.Time{w.now, w.now.Add(time.Hour), w.now.Add(3 * time.Hour)} {
		if err := c.CheckRevocation(ctx, w.chain(w.ocspGood), at); err != nil {
			t.Fatal(err)
		}
	}
	w.ocsp.mu.Lock()
	asked := w.ocsp.asked
	w.ocsp.mu.Unlock()
	if asked != 1 {
		t.Fatalf("responder asked %d times, want 1", asked)
	}
}

// TestRecheckFromEvidence: the stored evidence re-decides the verdict at
// the original time without the network, after the certificate expired,
// and tampered evidence does not.
func TestRecheckFromEvidence(t *testing.T) {
	w := newWorld(t)
	now := w.now
	d := &trust.Domain{Name: "national", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{w.p.Root.Cert}}
	ctx := context.Background()
	c := w.checker(t, trust.RevocationConfig{})
	results := map[string]*trust.RevocationResult{}
	for name, leaf := range map[string]*testpki.Cert{"ocsp-good": w.ocspGood, "crl-good": w.crlGood, "ocsp-revoked": w.ocspRevoked, "crl-revoked": w.crlRevoked} {
		res, _ := c.CheckRevocationEvidence(ctx, w.chain(leaf), now)
		results[name] = res
	}
	soft := w.checker(t, trust.RevocationConfig{Mode: trust.SoftFail})
	results["soft"], _ = soft.CheckRevocationEvidence(ctx, w.chain(w.downLeaf), now)
	// No network from here on.
	w.crl.Close()
	w.ocsp.Close()

	tamper := func(r *trust.RevocationResult) *trust.RevocationResult {
		cp := *r
		cp.Evidence = append([]trust.Evidence(nil), r.Evidence...)
		der := append([]byte(nil), cp.Evidence[0].DER...)
		der[len(der)-5] ^= 0x01 // inside the signature
		cp.Evidence[0].DER = der
		return &cp
	}
	later := now.Add(3 * 365 * 24 * time.Hour) // every certificate has expired
	for _, tc := range []struct {
		name string
		leaf *testpki.Cert
		res  *trust.RevocationResult
		at   time.Time
		want error
	}{
		{"OCSP good at the original time", w.ocspGood, results["ocsp-good"], now, nil},
		{"CRL good at the original time", w.crlGood, results["crl-good"], now, nil},
		{"OCSP revoked", w.ocspRevoked, results["ocsp-revoked"], now, trust.ErrRevoked},
		{"CRL revoked", w.crlRevoked, results["crl-revoked"], now, trust.ErrRevoked},
		{"OCSP revoked, asked about a time before the revocation", w.ocspRevoked, results["ocsp-revoked"], now.Add(-150 * time.Minute), trust.ErrRevocationUnknown},
		{"evidence does not cover a time after nextUpdate", w.ocspGood, results["ocsp-good"], now.Add(5 * time.Hour), trust.ErrRevocationUnknown},
		{"tampered OCSP bytes", w.ocspGood, tamper(results["ocsp-good"]), now, trust.ErrRevocationUnknown},
		{"tampered CRL bytes", w.crlGood, tamper(results["crl-good"]), now, trust.ErrRevocationUnknown},
		{"evidence of another certificate", w.crlGood, results["ocsp-good"], now, trust.ErrRevocationUnknown},
		{"soft-fail verdict has no proof", w.downLeaf, results["soft"], now, trust.ErrRevocationUnknown},
		{"no evidence", w.ocspGood, nil, now, trust.ErrRevocationUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := trust.RecheckRevocation(w.chain(tc.leaf), tc.res, tc.at)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("RecheckRevocation = %v, want %v", err, tc.want)
			}
		})
	}
	// The whole verdict, long after every certificate expired.
	if _, err := d.RecheckVerdict(w.ocspGood.Cert, []*x509.Certificate{w.p.Intermediate.Cert}, results["ocsp-good"], now); err != nil {
		t.Fatalf("RecheckVerdict at the original time: %v", err)
	}
	if _, err := d.RecheckVerdict(w.ocspGood.Cert, []*x509.Certificate{w.p.Intermediate.Cert}, results["ocsp-good"], later); !errors.Is(err, trust.ErrExpired) {
		t.Fatalf("RecheckVerdict at a later time: %v, want expired", err)
	}
	// Evidence survives the JSON round trip of a stored report.
	b, err := jsonRoundTrip(results["crl-good"])
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.RecheckRevocation(w.chain(w.crlGood), b, now); err != nil {
		t.Fatalf("after JSON round trip: %v", err)
	}
}

// TestConfigureRevocationFromDir: CRL files next to a domain's anchors, PEM
// encoded, and a revocation.json naming the mode.
func TestConfigureRevocationFromDir(t *testing.T) {
	w := newWorld(t)
	p, now := w.p, w.now
	dir := t.TempDir()
	dom := filepath.Join(dir, "national")
	must(t, os.MkdirAll(filepath.Join(dom, "crl"), 0o755))
	must(t, os.WriteFile(filepath.Join(dom, "root.pem"), p.Root.CertPEM(), 0o600))
	leaf, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST revoked in a file"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: "TEST good in a file"})
	if err != nil {
		t.Fatal(err)
	}
	interCRL := makeCRL(t, p.Intermediate, nil, 5, now.Add(-time.Minute), now.Add(time.Hour), now.Add(-time.Hour), leaf)
	must(t, os.WriteFile(filepath.Join(dom, "crl", "inter.pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: interCRL}), 0o600))
	must(t, os.WriteFile(filepath.Join(dom, "crl", "root.crl"), makeCRL(t, p.Root, nil, 5, now.Add(-time.Minute), now.Add(time.Hour), time.Time{}), 0o600))
	must(t, os.WriteFile(filepath.Join(dom, "revocation.json"), []byte(`{"mode":"hard","no_aia":true}`), 0o600))

	s, err := trust.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.ConfigureRevocation(s, dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Domain("national")
	if d.Revocation == nil {
		t.Fatal("no checker configured")
	}
	ctx := context.Background()
	chain := func(c *testpki.Cert) []*x509.Certificate { return w.chain(c) }
	if err := d.CheckRevocation(ctx, chain(leaf), now); !errors.Is(err, trust.ErrRevoked) {
		t.Fatalf("revoked leaf: %v", err)
	}
	res, err := d.CheckRevocationEvidence(ctx, chain(good), now)
	if err != nil || res == nil || res.Status != trust.StatusGood || !strings.HasSuffix(res.Evidence[0].Source, "inter.pem") {
		t.Fatalf("good leaf: %v %+v", err, res)
	}
	// Bad configuration is refused.
	must(t, os.WriteFile(filepath.Join(dom, "revocation.json"), []byte(`{"mode":"sometimes"}`), 0o600))
	if err := trust.ConfigureRevocation(s, dir, nil, nil); err == nil {
		t.Fatal("unknown mode accepted")
	}
	must(t, os.WriteFile(filepath.Join(dom, "revocation.json"), []byte(`{"mode":"hard","crl_url":["x"]}`), 0o600))
	if err := trust.ConfigureRevocation(s, dir, nil, nil); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func jsonRoundTrip(r *trust.RevocationResult) (*trust.RevocationResult, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var out trust.RevocationResult
	return &out, json.Unmarshal(b, &out)
}

// seedLeaves are the leaves whose evidence seeds the fuzz target.
func (w *revocationWorld) seedLeaves() []*testpki.Cert {
	return []*testpki.Cert{w.ocspGood, w.ocspRevoked, w.crlGood, w.crlRevoked}
}
