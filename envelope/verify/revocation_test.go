package verify

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lienthong/envelope/attsig"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
)

// The envelope signature's revocation verdict in the report: good with its
// CRL evidence (which re-checks offline), revoked, and an unknown status
// under soft-fail (accepted, said so) and hard-fail (revocation_unknown).
func TestRevocationInReport(t *testing.T) {
	p := pki(t)
	dir := t.TempDir()
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: p.Now.Add(-time.Hour), NextUpdate: p.Now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: p.RSALeaf2.Cert.SerialNumber, RevocationTime: p.Now.Add(-time.Minute)}},
	}, p.Intermediate.Cert, p.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "issuing.crl")
	if err := os.WriteFile(crlFile, crl, 0o600); err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	for _, tc := range []struct {
		name    string
		cfg     trust.RevocationConfig
		revoked bool // signed by RSALeaf2, which the CRL revokes
		code    string
		status  string
		soft    bool
	}{
		{"good by CRL", trust.RevocationConfig{CRLFiles: []string{crlFile}, LeafOnly: true, NoAIA: true}, false, "", trust.StatusGood, false},
		{"revoked by CRL", trust.RevocationConfig{CRLFiles: []string{crlFile}, LeafOnly: true, NoAIA: true}, true, dsig.CodeRevoked, "", false},
		{"responder down, soft-fail", trust.RevocationConfig{Mode: trust.SoftFail, OCSPResponders: []string{down.URL}, LeafOnly: true, NoCDP: true}, false, "", trust.StatusUnknown, true},
		{"responder down, hard-fail", trust.RevocationConfig{Mode: trust.HardFail, OCSPResponders: []string{down.URL}, LeafOnly: true, NoCDP: true}, false, dsig.CodeRevocationUnknown, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := store(t)
			chk, err := trust.NewChecker(tc.cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := s.Domain(DomainAgency)
			cp := *d
			cp.Revocation = chk
			if err := s.Add(&cp); err != nil {
				t.Fatal(err)
			}
			v, err := New(Config{Trust: s, Now: func() time.Time { return p.Now }, Attachments: AttachmentSignatures{}})
			if err != nil {
				t.Fatal(err)
			}
			signer := p.RSALeaf
			if tc.revoked {
				signer = p.RSALeaf2
			}
			rep, err := v.VerifyIn(context.Background(), signWith(t, fixture(t), signer), DomainAgency, Binding{}, false)
			if tc.code != "" {
				if dsig.CodeOf(err) != tc.code || rep == nil || rep.Code != tc.code {
					t.Fatalf("err = %v, report %+v; want %s", err, rep, tc.code)
				}
				return
			}
			if err != nil || rep.Outcome != OutcomeValid {
				t.Fatalf("err = %v, report %+v", err, rep)
			}
			r := rep.Signatures[0].Revocation
			if r.Status != tc.status || r.SoftFail != tc.soft || len(r.Evidence) == 0 || r.CheckedAt.IsZero() {
				t.Fatalf("revocation %+v", r)
			}
			// The fixture's unsigned PDF attachment is reported, unsigned.
			if len(rep.Attachments) != 1 || rep.Attachments[0].Verdict != OutcomeAbsent {
				t.Fatalf("attachments %+v", rep.Attachments)
			}
			if tc.status == trust.StatusGood {
				chain := []*x509.Certificate{p.RSALeaf.Cert, p.Intermediate.Cert, p.Root.Cert}
				if err := trust.RecheckRevocation(chain, ResultOf(r), r.CheckedAt); err != nil {
					t.Fatalf("recheck from the report: %v", err)
				}
			}
		})
	}
}

// AttachmentsOf: one entry per attachment, invalid wins over valid, an
// unsigned attachment is absent.
func TestAttachmentsOf(t *testing.T) {
	got := AttachmentsOf([]attsig.Verdict{
		{ContentID: "1", Name: "a.pdf", Kind: attsig.KindPAdES, Index: 1, Outcome: attsig.OutcomeValid, ByteRange: []int64{0, 10, 20, 5}},
		{ContentID: "1", Name: "a.pdf", Kind: attsig.KindPAdES, Index: 2, Outcome: attsig.OutcomeInvalid, Code: attsig.CodeExpired, Reason: "expired"},
		{ContentID: "2", Name: "b.txt", Outcome: attsig.OutcomeUnsigned},
		{ContentID: "3", Name: "c.docx", Kind: attsig.KindCMSDetached, SignatureContentID: "4", Outcome: attsig.OutcomeValid},
	})
	if len(got) != 3 || got[0].Verdict != OutcomeInvalid || got[0].Code != attsig.CodeExpired || len(got[0].Signatures) != 2 ||
		got[0].Signatures[0].Algorithms.SignedContent != "byte_range [0 10 20 5]" || got[0].Signatures[1].Location != "pdf signature 2" ||
		got[1].Verdict != OutcomeAbsent || len(got[1].Signatures) != 0 ||
		got[2].Verdict != OutcomeValid || got[2].Signatures[0].Location != "detached:cid:4" || got[2].Signatures[0].Revocation.Status != "not_checked" {
		t.Fatalf("%+v", got)
	}
	// A PDF too large to scan is reported, not refused.
	big := AttachmentsOf([]attsig.Verdict{{ContentID: "5", Name: "big.pdf", Kind: attsig.KindPAdES, Index: 1,
		Outcome: attsig.OutcomeNotChecked, Code: attsig.CodeTooLarge, Reason: "over the scan limit"}})
	if len(big) != 1 || big[0].Verdict != OutcomeNotChecked || big[0].Code != attsig.CodeTooLarge {
		t.Fatalf("%+v", big)
	}
}
