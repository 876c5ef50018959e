package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"lienthong/envelope/verify"
	"lienthong/routing/pgtest"
)

// evidenceFixture is a verification report with an envelope signature and
// an attachment signature, both by one signer under one CA, checked by OCSP
// (the envelope's) and a CRL shared by both: the DER values are random bytes
// (the ledger never parses them), long enough for PostgreSQL's base64 to
// break lines.
type evidenceFixture struct {
	cert, ca, crl []byte
}

func newEvidenceFixture(t *testing.T) evidenceFixture {
	t.Helper()
	f := evidenceFixture{cert: make([]byte, 900), ca: make([]byte, 850), crl: make([]byte, 3000)}
	for _, b := range [][]byte{f.cert, f.ca, f.crl} {
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// report is the fixture's report for document n, with its own OCSP
// response (OCSP responses differ per lookup; certificates and CRL recur).
func (f evidenceFixture) report(n int) *verify.Report {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	ocsp := append([]byte(fmt.Sprintf("ocsp response %d ", n)), f.crl[:200]...)
	signer := verify.Cert{Subject: "CN=signer", Issuer: "CN=CA", Serial: "0a", SHA256: "fp", NotBefore: at, NotAfter: at.Add(time.Hour), DER: f.cert}
	ca := verify.Cert{Subject: "CN=CA", Issuer: "CN=CA", Serial: "01", SHA256: "fpca", NotBefore: at, NotAfter: at.Add(time.Hour), DER: f.ca}
	crl := verify.Evidence{Kind: verify.BlobCRL, Source: "http://crl", ThisUpdate: at, NextUpdate: at.Add(time.Hour),
		DER: bytes.Clone(f.crl), Subject: "CN=signer", Serial: "0a", Status: "good", SHA256: "as the checker said"}
	sig := func(kind string, ev ...verify.Evidence) verify.Signature {
		return verify.Signature{Kind: kind, Verdict: "valid", Signer: &signer, Chain: []verify.Cert{signer, ca},
			Revocation: verify.Revocation{Status: "good", Mode: "hard", CheckedAt: at, Evidence: ev}}
	}
	// Text that quotes a reference is not one (in JSON its quotes are
	// escaped): neither refused as a reference without its blob, nor replaced.
	sum := sha256.Sum256([]byte("no such blob"))
	quoted := fmt.Sprintf(`quoting "der_ref": "%x" and "der_ref":"%x"`, sum, sum)
	return &verify.Report{Outcome: "valid", Domain: "agency", VerifiedAt: at, Organ: "000.00.00.C01", Warnings: []string{quoted},
		Signatures: []verify.Signature{sig("xmldsig", verify.Evidence{Kind: verify.BlobOCSP, DER: ocsp, Serial: "0a", Status: "good"}, crl)},
		Attachments: []verify.Attachment{{ContentID: "301", Name: "a.pdf", Verdict: "valid",
			Signatures: []verify.Signature{sig("pades", crl)}}}}
}

// withStoredReport is d carrying report in the form the intake hands over.
func withStoredReport(d NewDocument, r *verify.Report) NewDocument {
	stored, blobs := r.Stored()
	d.Verification = stored
	for _, b := range blobs {
		d.Evidence = append(d.Evidence, EvidenceBlob{SHA256: b.SHA256, Kind: b.Kind, DER: b.DER})
	}
	return d
}

// asJSONB is what a report stored with its DER embedded (before migration
// 0015) reads back as.
func asJSONB(t *testing.T, l *Ledger, r *verify.Report) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := l.Pool().QueryRow(context.Background(), `SELECT $1::jsonb`, string(b)).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, l *Ledger, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := l.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Concurrent accepts (group-committed) and single-document transactions of
// reports that share a signer, a CA and a CRL store those once: the stored
// reports hold references only, and every report reads back exactly as the
// same report stored with its DER embedded did.
func TestVerificationEvidenceIsStoredOnce(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	f := newEvidenceFixture(t)
	const n = 12
	ids := make([]string, n+1)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			a, err := l.Accept(ctx, withStoredReport(doc(fmt.Sprint("E", i), fmt.Sprintf("<e n='%d'/>", i)), f.report(i)))
			if err != nil {
				errs <- err
				return
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The one-transaction path (a business flow other than a new document
	// would take it too): a ledger without group commit.
	single := New(l.Pool(), Config{AcceptBatch: 1})
	a, err := single.Accept(ctx, withStoredReport(doc("E-single", "<e n='single'/>"), f.report(n)))
	if err != nil {
		t.Fatal(err)
	}
	ids[n] = a.ID

	// cert, CA, CRL once; one OCSP response per document.
	if got := countRows(t, l, `SELECT count(*) FROM verification_evidence`); got != 3+n+1 {
		t.Errorf("%d evidence rows, want %d", got, 3+n+1)
	}
	for kind, want := range map[string]int{verify.BlobCert: 2, verify.BlobCRL: 1, verify.BlobOCSP: n + 1} {
		if got := countRows(t, l, `SELECT count(*) FROM verification_evidence WHERE kind = $1`, kind); got != want {
			t.Errorf("%d %s rows, want %d", got, kind, want)
		}
	}
	if got := countRows(t, l, `SELECT count(*) FROM verification_reports WHERE strpos(report::text, '"der"') > 0`); got != 0 {
		t.Errorf("%d stored reports still embed DER", got)
	}
	for i, id := range ids {
		got, err := l.Verification(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := asJSONB(t, l, f.report(i)); !bytes.Equal(got, want) {
			t.Fatalf("report %d reads back as\n%s\nwant (embedded DER)\n%s", i, got, want)
		}
		var back verify.Report
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Attachments[0].Signatures[0].Revocation.Evidence[0].DER, f.crl) || back.Signatures[0].Chain[1].DERRef != "" {
			t.Fatalf("report %d: evidence not in place: %+v", i, back.Attachments[0].Signatures[0].Revocation)
		}
	}
}

// A report whose references and evidence do not match is refused with
// ErrBadEvidence, and nothing is written.
func TestVerificationEvidenceMismatchIsRefused(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	f := newEvidenceFixture(t)
	for name, spoil := range map[string]func(d *NewDocument){
		"blob does not hash to its digest": func(d *NewDocument) { d.Evidence[0].DER = append(bytes.Clone(d.Evidence[0].DER), 0) },
		"reference without its blob":       func(d *NewDocument) { d.Evidence = d.Evidence[1:] },
		"blob without bytes":               func(d *NewDocument) { d.Evidence[1].DER = nil },
		"evidence without a report":        func(d *NewDocument) { d.Verification = nil },
		"blob the report does not refer to": func(d *NewDocument) {
			extra := []byte("not referred to")
			d.Evidence = append(d.Evidence, EvidenceBlob{SHA256: sha256.Sum256(extra), Kind: "cert", DER: extra})
		},
	} {
		for _, batch := range []int{0, 1} {
			t.Run(fmt.Sprint(name, "/batch ", batch), func(t *testing.T) {
				d := withStoredReport(doc("BAD", "<bad/>"), f.report(1))
				spoil(&d)
				if _, err := New(l.Pool(), Config{AcceptBatch: batch}).Accept(ctx, d); !errors.Is(err, ErrBadEvidence) {
					t.Fatalf("accept: %v, want ErrBadEvidence", err)
				}
			})
		}
	}
	if n := countRows(t, l, `SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM verification_reports) +
		(SELECT count(*) FROM verification_evidence) + (SELECT count(*) FROM events)`); n != 0 {
		t.Fatalf("refused documents left %d rows", n)
	}
}

// A reference whose bytes have gone (or been altered) is an error when the
// report is read, never a report without its evidence.
func TestVerificationMissingEvidenceIsAnError(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	f := newEvidenceFixture(t)
	a, err := l.Accept(ctx, withStoredReport(doc("M1", "<m/>"), f.report(1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pool().Exec(ctx, `UPDATE verification_evidence SET der = der || '\x00'::bytea WHERE kind = 'crl'`); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verification(ctx, a.ID); err == nil {
		t.Fatalf("altered evidence read back: %.200s", rep)
	}
	if _, err := l.Pool().Exec(ctx, `DELETE FROM verification_evidence WHERE kind = 'crl'`); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verification(ctx, a.ID); err == nil {
		t.Fatalf("missing evidence read back: %.200s", rep)
	}
}

// Upgrade in place: reports stored before migration 0015 embed their DER
// and stay as they are; they are served unchanged, beside new reports that
// refer to the same certificates and CRL.
func TestReportsWithEmbeddedEvidenceSurviveTheUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ApplyMigrations(ctx, pool, beforeMigration(t, "0015"), ""); err != nil {
		t.Fatal(err)
	}
	f := newEvidenceFixture(t)
	// The hub before 0015 stored the report with its DER embedded (a
	// report with no references needs no evidence table).
	old := New(pool, Config{})
	upsertOldOrgans(t, old, Organ{Code: "000.00.00.C01", Name: "A", Channel: "push", Endpoint: "http://x", Active: true},
		Organ{Code: "000.00.00.C02", Name: "B", Channel: "pull", Active: true})
	oldDoc := doc("U-old", "<u n='old'/>")
	oldDoc.Verification = f.report(1)
	oa, err := old.Accept(ctx, oldDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate an existing database: %v", err)
	}
	l := New(pool, Config{})
	a, err := l.Accept(ctx, withStoredReport(doc("U-new", "<u n='new'/>"), f.report(2)))
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range map[string]int{oa.ID: 1, a.ID: 2} {
		got, err := l.Verification(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := asJSONB(t, l, f.report(n)); !bytes.Equal(got, want) {
			t.Fatalf("report of %s reads back as\n%.300s\nwant\n%.300s", id, got, want)
		}
	}
	if got := countRows(t, l, `SELECT count(*) FROM verification_reports WHERE strpos(report::text, '"der_ref"') > 0`); got != 1 {
		t.Fatalf("%d reports by reference, want 1 (the old one is left as it was)", got)
	}
}
