package signtest_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"lienthong/cmd/internal/signtest"
	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

const (
	diffOrgA = "000.00.00.A01"
	diffOrgB = "000.00.00.B02"
)

// TestBytesPathMatchesTreePath runs the hostile corpus of the hub
// (signtest: tampered, wrapped, misplaced and hostile edXML, hub envelopes
// with a signed Akoma Ntoso payload and their attacks) and valid documents
// through Verify, which verifies a document in memory over its bytes
// (dsig.VerifyBytes; for a document read by envelope.ParseRecorded, over
// the tokens Parse read, dsig.VerifyTokens), and through the tree path it
// replaced: every case must get the same code and the same report on each
// route, and each corpus case its expected code.
func TestBytesPathMatchesTreePath(t *testing.T) {
	now := time.Now()
	p, err := signtest.New(now, diffOrgA, diffOrgB)
	if err != nil {
		t.Fatal(err)
	}
	s := trust.NewStore()
	if err := s.Add(&trust.Domain{Name: verify.DomainAgency, Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
		t.Fatal(err)
	}
	dir := verify.DirectoryFunc(func(_ context.Context, organ string) (verify.Binding, error) {
		return verify.Binding{Code: organ}, nil
	})
	cfg := verify.Config{Trust: s, Directory: dir, Now: func() time.Time { return now }}
	v, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TreeVerify = true
	tree, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	to := []string{diffOrgB}
	cases, err := p.Hostile(diffOrgA, to, 100)
	if err != nil {
		t.Fatal(err)
	}
	akn, err := p.AKNHostile(diffOrgA, to, 200)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, akn...)
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases = append(cases,
		signtest.Case{Name: "valid, RSA", Raw: must(p.Sign(signtest.Doc(diffOrgA, to, 300), p.Signer))},
		signtest.Case{Name: "valid, ECDSA", Raw: must(p.Sign(signtest.Doc(diffOrgA, to, 301), p.SignerEC))},
		signtest.Case{Name: "valid hub envelope with a signed AKN payload", Raw: must(p.SignedHubAKN(diffOrgA, to, 302, p.Other))},
		signtest.Case{Name: "valid hub envelope, AKN payload unsigned",
			Raw: must(p.SignHub(must(signtest.HubAKN(diffOrgA, to, 303, signtest.AKNDoc(303, ""))), p.Signer))},
	)
	lim := envelope.Limits{MaxBytes: 1 << 20}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			doc, err := envelope.Parse(c.Raw, lim)
			if err != nil {
				if c.Code == "" {
					t.Fatalf("valid case does not parse: %v", err)
				}
				return // refused before verification, on both paths
			}
			rep := sameAsTree(t, v, tree, doc)
			// The single pass (the verifier replays Parse's tokens, what
			// the accept path does) gives the same verdict and report.
			rec, err := envelope.ParseRecorded(c.Raw, lim)
			if err != nil {
				t.Fatalf("ParseRecorded: %v, Parse accepted it", err)
			}
			if rep1 := sameAsTree(t, v, tree, rec); (rep1 == nil) != (rep == nil) || rep1 != nil && rep1.Code != rep.Code {
				t.Fatalf("single pass %+v, two-pass %+v", rep1, rep)
			}
			if c.Code != "" && (rep == nil || rep.Code != c.Code) {
				t.Fatalf("report %+v, want code %s", rep, c.Code)
			}
			if c.Code == "" && (rep == nil || rep.Outcome != verify.OutcomeValid) {
				t.Fatalf("report %+v, want valid", rep)
			}
		})
	}
}

// sameAsTree checks that v (the bytes path) gives doc the verdict of tree
// (Config.TreeVerify): the same code, and the same report field for field
// (the clock is fixed).
func sameAsTree(t *testing.T, v, tree *verify.Verifier, doc *envelope.Document) *verify.Report {
	t.Helper()
	rep, err := v.Verify(context.Background(), doc, verify.ChannelAPI)
	trep, terr := tree.Verify(context.Background(), doc, verify.ChannelAPI)
	if dsig.CodeOf(err) != dsig.CodeOf(terr) || (err == nil) != (terr == nil) {
		t.Fatalf("bytes path: %s (%v); tree path: %s (%v)", dsig.CodeOf(err), err, dsig.CodeOf(terr), terr)
	}
	if (rep == nil) != (trep == nil) {
		t.Fatalf("reports: bytes path %v, tree path %v", rep, trep)
	}
	if rep == nil {
		return nil
	}
	a, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(trep)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("reports differ:\nbytes path %s\ntree path  %s", a, b)
	}
	return rep
}
