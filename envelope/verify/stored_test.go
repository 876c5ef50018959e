package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Stored replaces every certificate's and every revocation evidence's DER
// by its digest, hands each distinct blob over once, leaves the report
// itself alone, and putting the blobs back gives the report's JSON again.
func TestStoredRefersToEachBlobOnce(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	leaf, ca, crl, ocsp := []byte("leaf certificate DER"), []byte("CA certificate DER"), []byte("CRL DER"), []byte("OCSP DER")
	signer := Cert{Subject: "CN=leaf", DER: leaf}
	sig := func(ev ...Evidence) Signature {
		return Signature{Kind: "xmldsig", Verdict: OutcomeValid, Signer: &signer, Chain: []Cert{signer, {Subject: "CN=CA", DER: ca}},
			Revocation: Revocation{Status: "good", CheckedAt: at, Evidence: ev}}
	}
	r := &Report{Outcome: OutcomeValid, VerifiedAt: at,
		Signatures: []Signature{sig(Evidence{Kind: BlobOCSP, DER: ocsp}, Evidence{Kind: BlobCRL, DER: crl}), {Kind: "xmldsig", Verdict: OutcomePlaceholder}},
		Attachments: []Attachment{{ContentID: "1", Verdict: OutcomeAbsent},
			{ContentID: "2", Verdict: OutcomeValid, Signatures: []Signature{sig(Evidence{Kind: BlobCRL, DER: bytes.Clone(crl)},
				Evidence{Kind: BlobOCSP, Error: "responder down"})}}}}
	want, _ := json.Marshal(r)

	s, blobs := r.Stored()
	if got, _ := json.Marshal(r); !bytes.Equal(got, want) {
		t.Fatalf("Stored changed the report:\n%s\nwant\n%s", got, want)
	}
	stored, _ := json.Marshal(s)
	if bytes.Contains(stored, []byte(`"der":`)) {
		t.Fatalf("stored form embeds DER: %s", stored)
	}
	kinds := map[string]string{}
	for _, b := range blobs {
		if sha256.Sum256(b.DER) != b.SHA256 {
			t.Fatalf("blob %s: digest is not of its DER", b.Kind)
		}
		kinds[string(b.DER)] = b.Kind
	}
	if len(blobs) != 4 || kinds[string(leaf)] != BlobCert || kinds[string(ca)] != BlobCert || kinds[string(crl)] != BlobCRL ||
		kinds[string(ocsp)] != BlobOCSP {
		t.Fatalf("blobs %v, want leaf and CA certificates, CRL and OCSP response once each", kinds)
	}
	// Put the blobs back the way the ledger does (on jsonb's text; here on
	// encoding/json's) and compare as values.
	text := string(stored)
	for _, b := range blobs {
		der, _ := json.Marshal(b.DER)
		text = strings.ReplaceAll(text, `"der_ref":"`+hex.EncodeToString(b.SHA256[:])+`"`, `"der":`+string(der))
	}
	var back, orig any
	if err := json.Unmarshal([]byte(text), &back); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(want, &orig)
	b1, _ := json.Marshal(back)
	b2, _ := json.Marshal(orig)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("blobs put back:\n%s\nwant\n%s", b1, b2)
	}
}

// BenchmarkReportEncoding is the hub's per-document cost of encoding a
// report like the dev hub's (a signer certificate, as signer and in the
// chain, and its CA; optionally a CRL of 20 KB) with its DER embedded, and
// in the stored form (Stored, then the smaller JSON).
func BenchmarkReportEncoding(b *testing.B) {
	der := func(n int) []byte { return bytes.Repeat([]byte{0x30, 0x82, 0x03, 0x98, 0xa0}, n/5) }
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	signer := Cert{Subject: "SERIALNUMBER=000.00.00.C01,CN=signer", Issuer: "CN=CA", Serial: "60", SHA256: "ce", NotBefore: at, NotAfter: at, DER: der(924)}
	for _, crl := range []int{0, 20000} {
		sig := Signature{Kind: "xmldsig", Verdict: OutcomeValid, Signer: &signer, Chain: []Cert{signer, {Subject: "CN=CA", DER: der(890)}},
			Revocation: Revocation{Status: "not_checked"}}
		if crl > 0 {
			sig.Revocation = Revocation{Status: "good", CheckedAt: at, Evidence: []Evidence{{Kind: BlobCRL, DER: der(crl)}}}
		}
		r := &Report{Outcome: OutcomeValid, VerifiedAt: at, Signatures: []Signature{sig}, Attachments: []Attachment{}}
		b.Run(fmt.Sprintf("crl=%d/embedded", crl), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("crl=%d/stored", crl), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, _ := r.Stored()
				if _, err := json.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
