package hub

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
	"lienthong/routing/bus"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// The PKI is shared by the tests of this binary (RSA keys are slow).
var testPKI = sync.OnceValues(func() (*signtest.PKI, error) { return signtest.New(time.Now(), orgA, orgB) })

func signPKI(t *testing.T) *signtest.PKI {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// trustStore trusts the test root in the agency domain (require) and the
// axis domain (record).
func trustStore(t *testing.T, p *signtest.PKI) *trust.Store {
	t.Helper()
	s := trust.NewStore()
	for name, pol := range map[string]trust.Policy{verify.DomainAgency: trust.PolicyRequire, verify.DomainAxis: trust.PolicyRecord} {
		if err := s.Add(&trust.Domain{Name: name, Policy: pol, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// startTrustHub starts a hub with verification on, organ A bound to its two
// signing certificates by fingerprint.
func startTrustHub(t *testing.T) (*testHub, *signtest.PKI) {
	t.Helper()
	p := signPKI(t)
	h := startHub(t, func(c *Config) { c.Trust = &TrustConfig{Store: trustStore(t, p)} })
	ctx := context.Background()
	o, err := h.l.Organ(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	o.CertFingerprints = []string{verify.Fingerprint(p.Signer.Cert), verify.Fingerprint(p.SignerEC.Cert)}
	if err := h.l.UpsertOrgan(ctx, o); err != nil {
		t.Fatal(err)
	}
	return h, p
}

type reportJSON struct {
	Document   string `json:"document"`
	Outcome    string `json:"outcome"`
	Code       string `json:"code"`
	Domain     string `json:"domain"`
	Policy     string `json:"policy"`
	Channel    string `json:"channel"`
	Organ      string `json:"organ"`
	Signatures []struct {
		Kind    string `json:"kind"`
		Verdict string `json:"verdict"`
		Organ   string `json:"organ"`
		Binding string `json:"binding"`
		Signer  struct {
			SHA256 string `json:"sha256"`
		} `json:"signer"`
		Chain      []struct{ SHA256 string } `json:"chain"`
		Algorithms struct {
			Signature string `json:"signature"`
			C14N      string `json:"c14n"`
			Digest    string `json:"digest"`
		} `json:"algorithms"`
		Revocation struct {
			Status string `json:"status"`
		} `json:"revocation"`
	} `json:"signatures"`
	Attachments []any `json:"attachments"`
}

func xmlsecBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmlsec1 not installed (CI installs it)") // CI installs every oracle: missing is a failure
		}
		t.Skip("xmlsec1 not installed (CI installs it)")
	}
	return bin
}

// Documents signed by xmlsec1 (an independent signer) and by the hub's own
// signer are accepted through the API, delivered, and their stored report
// says who signed, for which organ, with what.
func TestSignedDocumentsVerifyEndToEnd(t *testing.T) {
	bin := xmlsecBin(t)
	h, p := startTrustHub(t)
	corpus, err := p.XmlsecCorpus(bin, t.TempDir(), orgA, []string{orgB}, 7000)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := p.Sign(signtest.Doc(orgA, []string{orgB}, 7100), p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	corpus = append(corpus, signtest.Valid{Name: "hub signer RSA-SHA256", Raw: hub, Algorithm: dsig.AlgRSASHA256, C14N: dsig.AlgExcC14N})
	for _, v := range corpus {
		t.Run(v.Name, func(t *testing.T) {
			var acc struct{ ID string }
			if st := h.call("POST", "/v1/documents", h.tokens[orgA], v.Raw, &acc); st != http.StatusAccepted {
				t.Fatalf("POST: %d", st)
			}
			h.waitStates(acc.ID, h.tokens[orgB], map[string]string{orgB: ledger.StateDelivered})
			var r reportJSON
			if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgB], nil, &r); st != 200 {
				t.Fatalf("GET verification: %d", st)
			}
			signer := p.Signer
			if strings.Contains(v.Algorithm, "ecdsa") {
				signer = p.SignerEC
			}
			if r.Document != acc.ID || r.Outcome != "valid" || r.Domain != verify.DomainAgency || r.Policy != "require" ||
				r.Channel != "api" || r.Organ != orgA || len(r.Signatures) != 1 || r.Attachments == nil {
				t.Fatalf("report %+v", r)
			}
			s := r.Signatures[0]
			if s.Kind != "xmldsig" || s.Verdict != "valid" || s.Organ != orgA || s.Binding != "cert_fingerprint" ||
				s.Signer.SHA256 != verify.Fingerprint(signer.Cert) || len(s.Chain) != 3 ||
				s.Algorithms.Signature != v.Algorithm || s.Algorithms.C14N != v.C14N ||
				s.Algorithms.Digest != dsig.AlgDigestSHA256 || s.Revocation.Status != "not_checked" {
				t.Fatalf("signature %+v", s)
			}
			// The stored bytes are the signed bytes.
			req, _ := http.NewRequest("GET", h.api+"/v1/documents/"+acc.ID+"/content", nil)
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgB])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(body.Bytes(), v.Raw) {
				t.Fatal("stored bytes differ from the signed bytes")
			}
			// Same read authorisation as the document: a third organ sees nothing.
			if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgC], nil, nil); st != 404 {
				t.Fatalf("third organ: %d", st)
			}
			if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.auditor, nil, nil); st != 200 {
				t.Fatalf("auditor: %d", st)
			}
		})
	}
}

// Every tampered or hostile variant is refused through POST /v1/documents
// with its own code, as application/problem+json with a bilingual title,
// and nothing is stored.
func TestHostileDocumentsRefusedThroughAPI(t *testing.T) {
	h, p := startTrustHub(t)
	cases, err := p.Hostile(orgA, []string{orgB}, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 15 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(tc.Raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var pr struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || pr.Status != resp.StatusCode || pr.Code != tc.Code {
				t.Fatalf("got %d %q (%s), want 4xx %q", resp.StatusCode, pr.Code, pr.Detail, tc.Code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(pr.Title, " / ") || strings.HasPrefix(pr.Title, "Lỗi hệ thống") {
				t.Errorf("title %q is not a bilingual title of its own", pr.Title)
			}
		})
	}
	if n := h.count("documents") + h.count("deliveries") + h.documentEvents() + h.count("verification_reports"); n != 0 {
		t.Fatalf("refusals stored %d rows", n)
	}
	// Each refusal is a security event on lt.security, with its code (a
	// body over the limit is cut off by the API edge before the accept path,
	// which writes the events).
	want, total := map[string]int{}, 0
	for _, tc := range cases {
		if tc.Code != "too_large" {
			want[tc.Code]++
			total++
		}
	}
	r := bus.NewReader(bus.Config{Brokers: h.broker.Addrs(), Prefix: h.prefix}, ledger.TopicSecurity, "trust-test")
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for n := 0; n < total; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("security events: %d of %d read: %v (missing %v)", n, total, err, want)
		}
		var ev struct{ Kind, Code string }
		if err := json.Unmarshal(m.Value, &ev); err != nil || ev.Kind != "submission_refused" {
			t.Fatalf("security event %s: %v", m.Value, err)
		}
		want[ev.Code]--
	}
	for code, n := range want {
		if n != 0 {
			t.Errorf("security events with code %s: %d missing", code, n)
		}
	}
}

// Axis traffic is under policy record: an unsigned package is accepted and
// its report says "absent"; a bad signature is still refused.
func TestAxisChannelRecordsUnsigned(t *testing.T) {
	h, p := startTrustHub(t)
	v, err := verifierOf(Config{Trust: &TrustConfig{Store: trustStore(t, p)}}, h.l, "")
	if err != nil {
		t.Fatal(err)
	}
	svc := intake.New(h.l, intake.Config{Verifier: v})
	ctx := context.Background()
	res, err := svc.Submit(ctx, intake.Submission{Raw: signtest.Doc(orgA, []string{orgB}, 9001), Channel: verify.ChannelAxis})
	if err != nil {
		t.Fatal(err)
	}
	var r reportJSON
	if st := h.call("GET", "/v1/documents/"+res.ID+"/verification", h.auditor, nil, &r); st != 200 {
		t.Fatalf("GET: %d", st)
	}
	if r.Outcome != "absent" || r.Domain != verify.DomainAxis || r.Policy != "record" || r.Channel != "axis" {
		t.Fatalf("report %+v", r)
	}
	bad, err := p.Sign(signtest.Doc(orgA, []string{orgB}, 9002), p.Other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Submit(ctx, intake.Submission{Raw: bad, Channel: verify.ChannelAxis})
	var ie *intake.Error
	if !errors.As(err, &ie) || ie.Code != verify.CodeSignerMismatch {
		t.Fatalf("another organ's key on the axis: %v", err)
	}
}

// Without trust configuration the hub behaves as before: unsigned documents
// are accepted and reported not_checked.
func TestNoTrustConfigurationIsNotChecked(t *testing.T) {
	h := startHub(t)
	var acc struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], signtest.Doc(orgA, []string{orgB}, 9100), &acc); st != http.StatusAccepted {
		t.Fatalf("POST: %d", st)
	}
	var r reportJSON
	if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgA], nil, &r); st != 200 {
		t.Fatalf("GET: %d", st)
	}
	if r.Outcome != "not_checked" || len(r.Signatures) != 0 {
		t.Fatalf("report %+v", r)
	}
	if st := h.call("GET", "/v1/documents/0190a0a0-0000-7000-8000-000000000000/verification", h.auditor, nil, nil); st != 404 {
		t.Fatalf("unknown document: %d", st)
	}
}
