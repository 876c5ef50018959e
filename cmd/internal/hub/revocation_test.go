package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"lienthong/cmd/internal/sample"
	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/attsig"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

// revocationPKI is the signing PKI plus a CRL distribution point (the
// issuing CA's CRL revokes p.Swap; the root's CRL covers the issuing CA)
// and an OCSP responder of the issuing CA (good for p.Signer, revoked for
// p.SignerEC, unknown otherwise), both real protocols over HTTP.
type revocationPKI struct {
	p         *signtest.PKI
	crlURLs   []string
	ocspURL   string
	mu        sync.Mutex // guards ocspAsked
	ocspAsked map[string]int
}

func newRevocationPKI(t *testing.T) *revocationPKI {
	t.Helper()
	p := signPKI(t)
	now := time.Now()
	r := &revocationPKI{p: p, ocspAsked: map[string]int{}}
	crl := func(issuer *signtest.Cert, revoked ...*signtest.Cert) []byte {
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}
		for _, c := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: c.Cert.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: 1})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	crls := map[string][]byte{"/inter.crl": crl(p.Inter, p.Swap), "/root.crl": crl(p.Root)}
	cdp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		der, ok := crls[req.URL.Path]
		if !ok || req.Method != http.MethodGet {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(der)
	}))
	t.Cleanup(cdp.Close)
	r.crlURLs = []string{cdp.URL + "/inter.crl", cdp.URL + "/root.crl"}

	status := map[string]ocsp.Response{
		p.Signer.Cert.SerialNumber.String():   {Status: ocsp.Good},
		p.SignerEC.Cert.SerialNumber.String(): {Status: ocsp.Revoked, RevokedAt: now.Add(-2 * time.Hour), RevocationReason: ocsp.KeyCompromise},
	}
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 10<<10))
		w.Header().Set("Content-Type", "application/ocsp-response")
		q, err := ocsp.ParseRequest(body)
		if req.Method != http.MethodPost || err != nil {
			w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		r.mu.Lock()
		r.ocspAsked[q.SerialNumber.String()]++
		r.mu.Unlock()
		tmpl, ok := status[q.SerialNumber.String()]
		if !ok {
			tmpl.Status = ocsp.Unknown
		}
		tmpl.SerialNumber, tmpl.IssuerHash = q.SerialNumber, q.HashAlgorithm
		tmpl.ThisUpdate, tmpl.NextUpdate = now.Add(-time.Minute), now.Add(time.Hour)
		resp, err := ocsp.CreateResponse(p.Inter.Cert, p.Inter.Cert, tmpl, p.Inter.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(resp)
	}))
	t.Cleanup(responder.Close)
	r.ocspURL = responder.URL
	return r
}

// startRevocationHub starts a hub whose agency domain checks revocation by
// OCSP then CRL, hard-fail, organ A bound to Signer, SignerEC and Swap.
func startRevocationHub(t *testing.T, opts ...func(*Config)) (*testHub, *revocationPKI) {
	t.Helper()
	r := newRevocationPKI(t)
	p := r.p
	store := trustStore(t, p)
	chk, err := trust.NewChecker(trust.RevocationConfig{Mode: trust.HardFail, OCSPResponders: []string{r.ocspURL},
		CRLURLs: r.crlURLs, NoAIA: true, NoCDP: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := store.Domain(verify.DomainAgency)
	cp := *d
	cp.Revocation = chk
	if err := store.Add(&cp); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, append([]func(*Config){func(c *Config) { c.Trust = &TrustConfig{Store: store} }}, opts...)...)
	ctx := context.Background()
	o, err := h.l.Organ(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	o.CertFingerprints = []string{verify.Fingerprint(p.Signer.Cert), verify.Fingerprint(p.SignerEC.Cert), verify.Fingerprint(p.Swap.Cert)}
	if err := h.l.UpsertOrgan(ctx, o); err != nil {
		t.Fatal(err)
	}
	return h, r
}

// withAttachment adds an attachment to a sample edXML package (manifest
// reference and attachment), before it is signed.
func withAttachment(doc []byte, cid, name, ct string, data []byte) []byte {
	ref := fmt.Sprintf("<edXML:Reference><edXML:ContentId>cid:%s</edXML:ContentId><edXML:ContentType>%s</edXML:ContentType>"+
		"<edXML:AttachmentName>%s</edXML:AttachmentName></edXML:Reference>\n", cid, ct, name)
	att := fmt.Sprintf("<Attachment><ContentId>cid:%s</ContentId><AttachmentName>%s</AttachmentName><ContentType>%s</ContentType>"+
		"<ContentTransferEncoded>%s</ContentTransferEncoded></Attachment>\n", cid, name, ct, base64.StdEncoding.EncodeToString(data))
	doc = bytes.Replace(doc, []byte("</edXML:edXMLManifest>"), []byte(ref+"</edXML:edXMLManifest>"), 1)
	return bytes.Replace(doc, []byte("</AttachmentEncoded>"), []byte(att+"</AttachmentEncoded>"), 1)
}

type revReport struct {
	Outcome    string `json:"outcome"`
	Signatures []struct {
		Kind       string            `json:"kind"`
		Verdict    string            `json:"verdict"`
		Revocation verify.Revocation `json:"revocation"`
	} `json:"signatures"`
	Attachments []verify.Attachment `json:"attachments"`
}

// Revocation and attachment signatures through the API: a document whose
// envelope signer was revoked by OCSP or by CRL, or whose PDF attachment's
// signer was revoked, or whose PDF was altered, is refused by POST
// /v1/documents with its code; a good one is accepted and its stored report
// shows the attachment verdicts and the revocation evidence, which
// re-checks offline.
func TestRevocationAndAttachmentsEndToEnd(t *testing.T) {
	if _, err := attsigtest.OpenSSLSign(t.TempDir(), []byte("x"), attsigtest.Signer{}); errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI installs every oracle: missing is a failure
		}
		t.Skip(err)
	}
	h, r := startRevocationHub(t)
	p := r.p
	dir := t.TempDir()
	signerOf := func(c *signtest.Cert) attsigtest.Signer {
		return attsigtest.Signer{KeyPEM: c.KeyPEM(), CertPEM: c.CertPEM(), Extra: []*x509.Certificate{p.Inter.Cert}}
	}
	signedPDF := func(c *signtest.Cert) []byte {
		pdf, err := attsigtest.SignedPDF(attsigtest.PDFOptions{}, func(b []byte) ([]byte, error) {
			return attsigtest.OpenSSLSign(dir, b, signerOf(c), "-nosmimecap")
		})
		if err != nil {
			t.Fatal(err)
		}
		return pdf
	}
	annex := []byte("Phụ lục TEST: danh sách đại biểu (giả lập)")
	annexSig, err := attsigtest.OpenSSLSign(dir, annex, signerOf(p.Signer))
	if err != nil {
		t.Fatal(err)
	}
	n := 7300
	doc := func(pdf []byte, envelopeSigner *signtest.Cert) []byte {
		n++
		raw := sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: fmt.Sprint(n), Notation: "TEST-THU-HOI",
			Subject: fmt.Sprintf("V/v kiểm thử thu hồi chứng thư %d (TEST)", n), Attachment: pdf})
		raw = withAttachment(raw, "301", "phu-luc.txt", "text/plain", annex)
		raw = withAttachment(raw, "302", "phu-luc.txt.p7s", "application/pkcs7-signature", annexSig)
		signed, err := p.Sign(raw, envelopeSigner)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	goodPDF := signedPDF(p.Signer)
	altered := bytes.Clone(goodPDF)
	i := bytes.Index(altered, []byte("so 1"))
	altered[i+3] = '9'

	for _, tc := range []struct {
		name string
		raw  []byte
		code string
	}{
		{"envelope signer revoked by OCSP", doc(goodPDF, p.SignerEC), dsig.CodeRevoked},
		{"envelope signer revoked by CRL", doc(goodPDF, p.Swap), dsig.CodeRevoked},
		{"PDF signer revoked by CRL", doc(signedPDF(p.Swap), p.Signer), attsig.CodeRevoked},
		{"PDF signer revoked by OCSP", doc(signedPDF(p.SignerEC), p.Signer), attsig.CodeRevoked},
		{"PDF altered after signing", doc(altered, p.Signer), attsig.CodeContentMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(tc.raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var pr struct {
				Code, Title, Detail string
			}
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnprocessableEntity || pr.Code != tc.code || !strings.Contains(pr.Title, " / ") {
				t.Fatalf("got %d %q %q (%s), want 422 %q", resp.StatusCode, pr.Code, pr.Title, pr.Detail, tc.code)
			}
		})
	}
	if n := h.count("documents") + h.count("verification_reports"); n != 0 {
		t.Fatalf("refusals stored %d rows", n)
	}
	r.mu.Lock()
	askedEC := r.ocspAsked[p.SignerEC.Cert.SerialNumber.String()]
	r.mu.Unlock()
	if askedEC == 0 {
		t.Fatal("the OCSP responder was never asked about the OCSP-revoked signer")
	}

	// The good document.
	good := doc(goodPDF, p.Signer)
	var acc struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], good, &acc); st != http.StatusAccepted {
		t.Fatalf("POST good document: %d", st)
	}
	var rep revReport
	if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgB], nil, &rep); st != 200 {
		t.Fatalf("GET verification: %d", st)
	}
	if rep.Outcome != "valid" || len(rep.Signatures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	env := rep.Signatures[0].Revocation
	if env.Status != trust.StatusGood || env.Mode != "hard" || len(env.Evidence) == 0 || env.Evidence[0].Kind != trust.MethodOCSP ||
		env.Evidence[0].Status != trust.StatusGood || len(env.Evidence[0].DER) == 0 {
		t.Fatalf("envelope revocation %+v", env)
	}
	chain := []*x509.Certificate{p.Signer.Cert, p.Inter.Cert, p.Root.Cert}
	if err := trust.RecheckRevocation(chain, verify.ResultOf(env), env.CheckedAt); err != nil {
		t.Fatalf("the stored envelope evidence does not re-check: %v", err)
	}
	if len(rep.Attachments) != 2 {
		t.Fatalf("%d attachment verdicts, want 2 (the .p7s is reported inside its attachment): %+v", len(rep.Attachments), rep.Attachments)
	}
	pdfV, annexV := rep.Attachments[0], rep.Attachments[1]
	if pdfV.Name != "van-ban-mau.pdf" || pdfV.Verdict != "valid" || len(pdfV.Signatures) != 1 || pdfV.Signatures[0].Kind != attsig.KindPAdES ||
		pdfV.Signatures[0].Signer == nil || pdfV.Signatures[0].Signer.SHA256 != verify.Fingerprint(p.Signer.Cert) ||
		!strings.HasPrefix(pdfV.Signatures[0].Algorithms.SignedContent, "byte_range [0 ") {
		t.Fatalf("PDF verdict %+v", pdfV)
	}
	if rv := pdfV.Signatures[0].Revocation; rv.Status != trust.StatusGood || len(rv.Evidence) == 0 || len(rv.Evidence[0].DER) == 0 {
		t.Fatalf("PDF revocation evidence %+v", rv)
	}
	if annexV.Name != "phu-luc.txt" || annexV.Verdict != "valid" || len(annexV.Signatures) != 1 ||
		annexV.Signatures[0].Kind != attsig.KindCMSDetached || annexV.Signatures[0].Location != "detached:cid:302" {
		t.Fatalf("annex verdict %+v", annexV)
	}
}

// Attachment signatures of a body above the blob threshold (spooled and
// verified as a stream) through POST /v1/documents: a document whose
// detached-signed attachment or signed PDF was altered, or whose PDF signer
// is revoked, is refused with the code the in-memory path gives and stores
// nothing (no document, report, blob or large object); a good one is
// accepted, stored in the blob store, and its report gives its attachments
// the verdict valid, as for a small body.
func TestLargeBodyAttachmentSignaturesEndToEnd(t *testing.T) {
	if _, err := attsigtest.OpenSSLSign(t.TempDir(), []byte("x"), attsigtest.Signer{}); errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI installs every oracle: missing is a failure
		}
		t.Skip(err)
	}
	h, r := startRevocationHub(t, func(c *Config) { c.MaxBody, c.BlobThreshold = 8<<20, 1<<20 })
	p := r.p
	dir := t.TempDir()
	signerOf := func(c *signtest.Cert) attsigtest.Signer {
		return attsigtest.Signer{KeyPEM: c.KeyPEM(), CertPEM: c.CertPEM(), Extra: []*x509.Certificate{p.Inter.Cert}}
	}
	signedPDF := func(c *signtest.Cert) []byte {
		pdf, err := attsigtest.SignedPDF(attsigtest.PDFOptions{}, func(b []byte) ([]byte, error) {
			return attsigtest.OpenSSLSign(dir, b, signerOf(c), "-nosmimecap")
		})
		if err != nil {
			t.Fatal(err)
		}
		return pdf
	}
	// A signed annex of 1 MiB: the body is above the 1 MiB threshold.
	annex := bytes.Repeat([]byte("Phụ lục TEST: danh sách đại biểu (giả lập).\n"), (1<<20)/46)
	annexSig, err := attsigtest.OpenSSLSign(dir, annex, signerOf(p.Signer))
	if err != nil {
		t.Fatal(err)
	}
	alteredAnnex := bytes.Clone(annex)
	alteredAnnex[len(alteredAnnex)-3] ^= 1
	goodPDF := signedPDF(p.Signer)
	alteredPDF := bytes.Replace(goodPDF, []byte("so 1"), []byte("so 9"), 1)
	n := 7400
	doc := func(pdf, annex []byte) []byte {
		n++
		raw := sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: fmt.Sprint(n), Notation: "TEST-LON",
			Subject: fmt.Sprintf("V/v kiểm thử chữ ký đính kèm văn bản lớn %d (TEST)", n), Attachment: pdf})
		raw = withAttachment(raw, "301", "phu-luc.txt", "text/plain", annex)
		raw = withAttachment(raw, "302", "phu-luc.txt.p7s", "application/pkcs7-signature", annexSig)
		signed, err := p.Sign(raw, p.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if len(signed) <= 1<<20 {
			t.Fatalf("document of %d bytes is not above the blob threshold", len(signed))
		}
		return signed
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		code string
	}{
		{"detached-signed annex altered", doc(goodPDF, alteredAnnex), attsig.CodeContentMismatch},
		{"PDF altered after signing", doc(alteredPDF, annex), attsig.CodeContentMismatch},
		{"PDF signer revoked by CRL", doc(signedPDF(p.Swap), annex), attsig.CodeRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(tc.raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var pr struct {
				Code, Title, Detail string
			}
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnprocessableEntity || pr.Code != tc.code || !strings.Contains(pr.Title, " / ") {
				t.Fatalf("got %d %q %q (%s), want 422 %q", resp.StatusCode, pr.Code, pr.Title, pr.Detail, tc.code)
			}
		})
	}
	for _, table := range []string{"documents", "verification_reports", "blobs", "pg_largeobject_metadata"} {
		if n := h.count(table); n != 0 {
			t.Fatalf("refusals stored %d rows in %s", n, table)
		}
	}

	good := doc(goodPDF, annex)
	var acc struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], good, &acc); st != http.StatusAccepted {
		t.Fatalf("POST good document: %d", st)
	}
	var inline bool
	if err := h.l.Pool().QueryRow(context.Background(), `SELECT body IS NOT NULL FROM documents WHERE id = $1 AND body_blob IS NOT NULL`,
		acc.ID).Scan(&inline); err != nil || inline {
		t.Fatalf("the good document did not take the streaming path (blob store): inline %v, %v", inline, err)
	}
	var rep revReport
	if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgB], nil, &rep); st != 200 || rep.Outcome != "valid" {
		t.Fatalf("GET verification: %d %+v", st, rep)
	}
	if len(rep.Attachments) != 2 {
		t.Fatalf("%d attachment verdicts, want 2: %+v", len(rep.Attachments), rep.Attachments)
	}
	pdfV, annexV := rep.Attachments[0], rep.Attachments[1]
	if pdfV.Verdict != "valid" || len(pdfV.Signatures) != 1 || pdfV.Signatures[0].Kind != attsig.KindPAdES ||
		pdfV.Signatures[0].Signer == nil || pdfV.Signatures[0].Signer.SHA256 != verify.Fingerprint(p.Signer.Cert) {
		t.Fatalf("PDF verdict %+v", pdfV)
	}
	if rv := pdfV.Signatures[0].Revocation; rv.Status != trust.StatusGood || len(rv.Evidence) == 0 {
		t.Fatalf("PDF revocation evidence %+v", rv)
	}
	if annexV.Name != "phu-luc.txt" || annexV.Verdict != "valid" || len(annexV.Signatures) != 1 ||
		annexV.Signatures[0].Kind != attsig.KindCMSDetached || annexV.Signatures[0].Location != "detached:cid:302" {
		t.Fatalf("annex verdict %+v", annexV)
	}
}
