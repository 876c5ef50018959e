package hub

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/attsig/attsigtest"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

// Verification reports keep their certificates, CRLs and OCSP responses in
// verification_evidence, once each, and refer to them by digest; what is
// served (GET /v1/documents/{id}/verification, the evidence bundle) is
// byte for byte what a report stored with its DER embedded (the hub before
// ledger migration 0015) serves, and the stored evidence re-checks offline
// as before: good at the time of the check, not any more two days later.
func TestVerificationEvidenceStoredOnceServedAsBefore(t *testing.T) {
	if _, err := attsigtest.OpenSSLSign(t.TempDir(), []byte("x"), attsigtest.Signer{}); errors.Is(err, attsigtest.ErrNoOpenSSL) {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	h, r := startRevocationHub(t)
	p := r.p
	ctx := context.Background()
	dir := t.TempDir()
	annex := []byte("Phụ lục TEST: bảng số liệu (giả lập)")
	annexSig, err := attsigtest.OpenSSLSign(dir, annex, attsigtest.Signer{KeyPEM: p.Signer.KeyPEM(), CertPEM: p.Signer.CertPEM(),
		Extra: []*x509.Certificate{p.Inter.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(n int) string {
		raw := sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: fmt.Sprint(8100 + n), Notation: "TEST-CHUNG-CU",
			Subject: fmt.Sprintf("V/v kiểm thử lưu chứng cứ một lần %d (TEST)", n)})
		raw = withAttachment(raw, "401", "bang-so-lieu.txt", "text/plain", annex)
		raw = withAttachment(raw, "402", "bang-so-lieu.txt.p7s", "application/pkcs7-signature", annexSig)
		signed, err := p.Sign(raw, p.Signer)
		if err != nil {
			t.Fatal(err)
		}
		var acc struct{ ID string }
		if st := h.call("POST", "/v1/documents", h.tokens[orgA], signed, &acc); st != http.StatusAccepted {
			t.Fatalf("POST document %d: %d", n, st)
		}
		return acc.ID
	}
	served := func(id string) []byte {
		st, b, _ := h.get("/v1/documents/"+id+"/verification", h.tokens[orgB])
		if st != 200 {
			t.Fatalf("GET verification of %s: %d %s", id, st, b)
		}
		return b
	}
	kinds := func() map[string]int {
		rows, err := h.l.Pool().Query(ctx, `SELECT kind, count(*) FROM verification_evidence GROUP BY kind`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			m[k] = n
		}
		return m
	}

	id1 := submit(1)
	after1 := kinds()
	// The signer, the issuing CA and the root; the issuing CA's status is
	// not known to its own OCSP responder, so it comes from the root's CRL.
	if after1[verify.BlobCert] != 3 || after1[verify.BlobCRL] == 0 || after1[verify.BlobOCSP] == 0 {
		t.Fatalf("evidence rows after one document: %v", after1)
	}
	id2 := submit(2)
	if after2 := kinds(); after2[verify.BlobCert] != 3 || after2[verify.BlobCRL] != after1[verify.BlobCRL] {
		t.Fatalf("the second document stored its certificates or CRL again: %v, then %v", after1, after2)
	}
	var embedded int
	if err := h.l.Pool().QueryRow(ctx, `SELECT count(*) FROM verification_reports
		WHERE strpos(report::text, '"der": ') > 0 OR strpos(report::text, '"der_ref": ') = 0`).Scan(&embedded); err != nil {
		t.Fatal(err)
	}
	if embedded != 0 {
		t.Fatalf("%d stored reports embed DER", embedded)
	}

	for _, id := range []string{id1, id2} {
		now := served(id)
		bundled := bundledReport(t, h, id)
		checkEvidence(t, now, p)

		// The report as the hub before migration 0015 stored it: with its
		// DER, exactly what is served (less the document id the API adds).
		var m map[string]json.RawMessage
		if err := json.Unmarshal(now, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "document")
		full, _ := json.Marshal(m)
		if _, err := h.l.Pool().Exec(ctx, `UPDATE verification_reports SET report = $2::jsonb WHERE document_id = $1::uuid`, id, string(full)); err != nil {
			t.Fatal(err)
		}
		if before := served(id); !bytes.Equal(before, now) {
			t.Fatalf("served report differs from the one stored with embedded DER:\n%s\nwant\n%s", now, before)
		}
		if before := bundledReport(t, h, id); before != bundled {
			t.Fatalf("bundled report differs from the one stored with embedded DER:\n%.400s\nwant\n%.400s", bundled, before)
		}
	}
}

// checkEvidence re-checks, from the served report alone, the revocation
// evidence of the envelope signature and of the attachment's signature.
func checkEvidence(t *testing.T, served []byte, p *signtest.PKI) {
	t.Helper()
	var rep revReport
	if err := json.Unmarshal(served, &rep); err != nil {
		t.Fatal(err)
	}
	// The sample's own PDF (unsigned), then the annex with its .p7s.
	if rep.Outcome != "valid" || len(rep.Signatures) != 1 || len(rep.Attachments) != 2 || len(rep.Attachments[1].Signatures) != 1 {
		t.Fatalf("report %s", served)
	}
	chain := []*x509.Certificate{p.Signer.Cert, p.Inter.Cert, p.Root.Cert}
	for name, rv := range map[string]verify.Revocation{"envelope": rep.Signatures[0].Revocation,
		"attachment": rep.Attachments[1].Signatures[0].Revocation} {
		var crl, ocsp bool
		for _, e := range rv.Evidence {
			crl, ocsp = crl || e.Kind == trust.MethodCRL && len(e.DER) > 0, ocsp || e.Kind == trust.MethodOCSP && len(e.DER) > 0
			if e.DERRef != "" {
				t.Fatalf("%s evidence served with its reference: %+v", name, e)
			}
		}
		if rv.Status != trust.StatusGood || !crl || !ocsp {
			t.Fatalf("%s revocation %+v: want good, by OCSP and CRL, with DER", name, rv)
		}
		if err := trust.RecheckRevocation(chain, verify.ResultOf(rv), rv.CheckedAt); err != nil {
			t.Fatalf("%s evidence does not re-check: %v", name, err)
		}
		if err := trust.RecheckRevocation(chain, verify.ResultOf(rv), rv.CheckedAt.Add(48*time.Hour)); !errors.Is(err, trust.ErrRevocationUnknown) {
			t.Fatalf("%s evidence re-checked two days later: %v, want ErrRevocationUnknown", name, err)
		}
	}
}

// bundledReport is the verification.json of a document's evidence bundle,
// read as evidence.Log.WriteBundle reads it (the bundle itself needs a
// signed checkpoint, which this hub does not make).
func bundledReport(t *testing.T, h *testHub, id string) string {
	t.Helper()
	var s string
	if err := h.l.Pool().QueryRow(context.Background(), `SELECT
		coalesce((SELECT verification_report_full(v.report) FROM verification_reports v WHERE v.document_id = d.id),
			d.meta -> 'verification')::text
		FROM documents d WHERE d.id = $1::uuid`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
