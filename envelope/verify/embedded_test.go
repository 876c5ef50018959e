package verify

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

const aknBody = `<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0"><act name="act"><meta>` +
	`<identification source="#tacgia"><FRBRWork><FRBRthis value="/akn/vn/act/2026/7/!main"/></FRBRWork></identification>` +
	`<proprietary source="#tacgia"/></meta><body><p>Điều 1. Thử nghiệm.</p></body></act></akomaNtoso>`

// hubWithAKN is a hub envelope from orgFrom whose inline Akoma Ntoso
// payload is signed by author (nil: unsigned) and the envelope by sender.
func hubWithAKN(tb testing.TB, author, sender *testpki.Cert) *envelope.Document {
	tb.Helper()
	p := pki(tb)
	akn := []byte(aknBody)
	var err error
	if author != nil {
		if akn, err = dsig.Sign(akn, author.Key, p.Chain(author), dsig.SignOptions{Location: dsig.AKNProprietary("#tacgia")}); err != nil {
			tb.Fatal(err)
		}
	}
	env, err := envelope.BuildHubEnvelope(envelope.HubHeader{From: envelope.Organ{Code: orgFrom}, To: []envelope.Organ{{Code: orgTo}},
		DocumentID: orgFrom + ",2026/03/02,7/AKN", Created: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}, "application/akn+xml", akn, true)
	if err != nil {
		tb.Fatal(err)
	}
	if sender != nil {
		if env, err = dsig.Sign(env, sender.Key, p.Chain(sender), dsig.SignOptions{Location: dsig.RootChild, KeepSignatures: true}); err != nil {
			tb.Fatal(err)
		}
	}
	doc, err := envelope.Parse(env, envelope.Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// Both signatures of a hub envelope with a signed AKN payload are in the
// report, each with its role, location, signer and revocation evidence; the
// envelope signer is bound to the sender organ, the payload signer (the
// author) is reported and not bound.
func TestEmbeddedAKNReport(t *testing.T) {
	p := pki(t)
	dir := t.TempDir()
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: p.Now.Add(-time.Hour), NextUpdate: p.Now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: p.ECLeaf.Cert.SerialNumber, RevocationTime: p.Now.Add(-time.Minute)}},
	}, p.Intermediate.Cert, p.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "issuing.crl")
	if err := os.WriteFile(crlFile, crl, 0o600); err != nil {
		t.Fatal(err)
	}
	s := store(t)
	chk, err := trust.NewChecker(trust.RevocationConfig{CRLFiles: []string{crlFile}, LeafOnly: true, NoAIA: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.Domain(DomainAgency)
	cp := *d
	cp.Revocation = chk
	if err := s.Add(&cp); err != nil {
		t.Fatal(err)
	}
	bound := dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}}
	v, err := New(Config{Trust: s, Directory: bound, Now: func() time.Time { return p.Now }})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name           string
		author, sender *testpki.Cert
		code           string
		verdicts       []string // envelope, payload
	}{
		{"both valid", p.RSALeaf2, p.RSALeaf, "", []string{OutcomeValid, OutcomeValid}},
		{"the author's key is not the sender's: fine", p.RSALeaf, p.RSALeaf, "", []string{OutcomeValid, OutcomeValid}},
		{"envelope signed by another organ's key", p.RSALeaf, p.RSALeaf2, CodeSignerMismatch, []string{OutcomeInvalid, OutcomeValid}},
		{"payload signer revoked", p.ECLeaf, p.RSALeaf, dsig.CodeRevoked, []string{OutcomeValid, OutcomeInvalid}},
		{"payload signer of an unknown CA", p.UnknownLeaf, p.RSALeaf, dsig.CodeUnknownSigner, []string{OutcomeValid, OutcomeInvalid}},
		{"signed payload, unsigned envelope (require)", p.RSALeaf2, nil, dsig.CodeMissing, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := v.Verify(context.Background(), hubWithAKN(t, tc.author, tc.sender), ChannelAPI)
			if rep == nil || dsig.CodeOf(err) != tc.code || rep.Code != tc.code {
				t.Fatalf("err %v, report %+v; want %q", err, rep, tc.code)
			}
			if tc.verdicts == nil { // the payload's verdict alone is reported
				if len(rep.Signatures) != 1 || rep.Signatures[0].Role != "payload" || rep.Signatures[0].Verdict != OutcomeValid {
					t.Fatalf("signatures %+v", rep.Signatures)
				}
				return
			}
			if len(rep.Signatures) != len(tc.verdicts) {
				t.Fatalf("%d signatures: %+v", len(rep.Signatures), rep.Signatures)
			}
			env, pay := rep.Signatures[0], rep.Signatures[1]
			if env.Role != "envelope" || pay.Role != "payload" || env.Location != "/*/Signature" ||
				pay.Location != `/akomaNtoso/*/meta/proprietary/Signature (source "#tacgia")` {
				t.Errorf("roles/locations: %q %q / %q %q", env.Role, env.Location, pay.Role, pay.Location)
			}
			if env.Verdict != tc.verdicts[0] || pay.Verdict != tc.verdicts[1] {
				t.Fatalf("verdicts %s/%s (%s | %s), want %v", env.Verdict, pay.Verdict, env.Reason, pay.Reason, tc.verdicts)
			}
			if pay.Verdict == OutcomeValid && (pay.Signer == nil || pay.Signer.SHA256 != Fingerprint(tc.author.Cert)) || pay.Organ != "" || pay.Binding != "" {
				t.Errorf("payload signer %+v organ %q binding %q", pay.Signer, pay.Organ, pay.Binding)
			}
			if tc.code == "" {
				if env.Organ != orgFrom || env.Binding != "cert_fingerprint" {
					t.Errorf("envelope binding %q %q", env.Organ, env.Binding)
				}
				if env.Revocation.Status != "good" || len(env.Revocation.Evidence) == 0 || pay.Revocation.Status != "good" || len(pay.Revocation.Evidence) == 0 {
					t.Errorf("revocation %+v / %+v", env.Revocation, pay.Revocation)
				}
				if pay.Algorithms.SignedContent != "embedded_document" || env.Algorithms.SignedContent != "whole_document" {
					t.Errorf("signed content %q / %q", env.Algorithms.SignedContent, pay.Algorithms.SignedContent)
				}
			}
			if tc.code == dsig.CodeRevoked && pay.Revocation.Status != "revoked" {
				t.Errorf("payload revocation %+v", pay.Revocation)
			}
		})
	}
}
