package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/verify"
)

// prepareReport is a verification report shaped like the accept path's for a
// signed edXML document with one attachment: one XML-DSig signature with a
// three-certificate chain (DER kept in the report).
func prepareReport() *verify.Report {
	cert := func() verify.Cert {
		der := make([]byte, 1100)
		_, _ = rand.Read(der)
		return verify.Cert{Subject: "CN=Signer,O=Org,C=VN", Issuer: "CN=CA,O=Org,C=VN", Serial: "0a1b2c3d",
			SHA256: "5f0c", NotBefore: time.Now().UTC(), NotAfter: time.Now().UTC(), DER: der}
	}
	leaf := cert()
	ref := ""
	return &verify.Report{Outcome: verify.OutcomeValid, Channel: "api", Domain: "agency", Policy: "require",
		VerifiedAt: time.Now().UTC(), Organ: "000.00.00.C01",
		Signatures: []verify.Signature{{Kind: "xmldsig", Location: "edXMLHeader", Verdict: verify.OutcomeValid,
			Signer: &leaf, Chain: []verify.Cert{leaf, cert(), cert()}, Organ: "000.00.00.C01", Binding: "cert_fingerprint",
			Algorithms: verify.Algorithms{Signature: "rsa-sha256", Digest: "sha256", C14N: "exc-c14n", Reference: &ref,
				DigestValue: "abc=", SignedContent: "whole_document"},
			Revocation: verify.Revocation{Status: "not_checked"}}},
		Attachments: []verify.Attachment{{ContentID: "att1", Name: "a.pdf", Verdict: verify.OutcomeAbsent}}}
}

// BenchmarkPrepareAccept measures the per-document work of Accept that
// needs no database (ids, the JSON of the metadata, report, event and
// route message, the verification outcome) for the accept path's report.
func BenchmarkPrepareAccept(b *testing.B) {
	l := New(nil, Config{})
	rep := prepareReport()
	raw := make([]byte, 20<<10)
	sum := sha256.Sum256(raw)
	atts := []envelope.Attachment{{ContentID: "att1", Name: "a.pdf", ContentType: "application/pdf", Size: 15 << 10,
		SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
	d := NewDocument{Sender: "000.00.00.C01", DocRef: "D1", Format: "edxml", Subject: "Công văn",
		Recipients: []string{"000.00.00.C02", "000.00.00.C03"}, Raw: raw, SHA256: sum[:], Flow: &Flow{Kind: FlowNew},
		Verification: rep, Meta: map[string]any{"attachments": atts, "warnings": []string(nil),
			"verification": rep.Summary(), "channel": "api"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.prepareAccept(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPrepareAcceptDetail: the accepted event's detail is the JSON acceptOne
// writes (a map there), with and without a verification outcome; the
// outcome is the report's, read without serialising it back.
func TestPrepareAcceptDetail(t *testing.T) {
	l := New(nil, Config{})
	raw := []byte("<edXML/>")
	sum := sha256.Sum256(raw)
	for _, v := range []any{nil, prepareReport(), map[string]any{"outcome": "not_checked"}} {
		d := NewDocument{Sender: "000.00.00.C01", DocRef: "D1", Format: "edxml", Recipients: []string{"000.00.00.C02", "000.00.00.C02"},
			Raw: raw, SHA256: sum[:], Verification: v}
		p, err := l.prepareAccept(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(raw), "format": d.Format,
			"recipients": d.Recipients, "sender": d.Sender}
		if o := outcomeOf(v, nil); o != "" {
			want["verification"] = o
		}
		wb, _ := json.Marshal(want)
		if string(p.detail) != string(wb) {
			t.Fatalf("detail %s, want %s", p.detail, wb)
		}
		if wantOutcome := outcomeOf(v, nil); p.outcome != wantOutcome || (v != nil && p.outcome == "") {
			t.Fatalf("outcome %q, want %q", p.outcome, wantOutcome)
		}
	}
	if _, err := l.prepareAccept(context.Background(), NewDocument{Recipients: []string{"x"}, Verification: map[string]any{"x": 1}}); err == nil {
		t.Fatal("a report without an outcome was accepted")
	}
}
