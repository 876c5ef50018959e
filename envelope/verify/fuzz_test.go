package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// FuzzVerifyDocument: the whole verification step (envelope parse, XML-DSig,
// signed-metadata check, binding) never panics, refuses with a typed code,
// accepts only documents whose metadata is the signed metadata, and gives
// the same verdict and report on the tree path, the bytes path and the
// single pass over Parse's tokens.
func FuzzVerifyDocument(f *testing.F) {
	p, err := testpki.NewEC(time.Now()) // RSA keys are too slow under the fuzzer
	if err != nil {
		f.Fatal(err)
	}
	s := trust.NewStore()
	if err := s.Add(&trust.Domain{Name: DomainAgency, Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
		f.Fatal(err)
	}
	bind := Binding{Code: orgFrom, CertFingerprints: []string{Fingerprint(p.ECLeaf.Cert)}}
	now := time.Now()
	v, err := New(Config{Trust: s, Directory: dirMap{orgFrom: bind}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	// The tree path (Config.TreeVerify) must give every input the verdict
	// and report of the default bytes path.
	tree, err := New(Config{Trust: s, Directory: dirMap{orgFrom: bind}, Now: func() time.Time { return now }, TreeVerify: true})
	if err != nil {
		f.Fatal(err)
	}
	good, err := dsig.Sign(fixture(f), p.ECLeaf.Key, p.Chain(p.ECLeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(fixture(f))
	f.Add([]byte(strings.Replace(string(good), "V/v thử", "V/v<!----> thử", 1)))
	f.Add([]byte(strings.Replace(string(good), "<edXML:OrganId>000.00.00.C02", "<edXML:OrganId>000.00.00.C03", 1)))
	lim := envelope.Limits{MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := envelope.Parse(raw, lim)
		if err != nil {
			return
		}
		rep, err := v.Verify(context.Background(), doc, ChannelAPI)
		trep, terr := tree.Verify(context.Background(), doc, ChannelAPI)
		if dsig.CodeOf(err) != dsig.CodeOf(terr) || (err == nil) != (terr == nil) || (rep == nil) != (trep == nil) {
			t.Fatalf("bytes path %v (report %v), tree path %v (report %v)", err, rep, terr, trep)
		}
		if rep != nil {
			a, _ := json.Marshal(rep)
			b, _ := json.Marshal(trep)
			if !bytes.Equal(a, b) {
				t.Fatalf("reports differ:\nbytes path %s\ntree path  %s", a, b)
			}
		}
		// And the accept path's single pass (the verifier replays the
		// tokens ParseRecorded read) gives the verdict and report of both.
		rec, rerr := envelope.ParseRecorded(raw, lim)
		if rerr != nil {
			t.Fatalf("ParseRecorded refuses what Parse accepted: %v", rerr)
		}
		srep, serr := v.Verify(context.Background(), rec, ChannelAPI)
		if dsig.CodeOf(err) != dsig.CodeOf(serr) || (err == nil) != (serr == nil) || (rep == nil) != (srep == nil) {
			t.Fatalf("two-pass %v (report %v), single pass %v (report %v)", err, rep, serr, srep)
		}
		if rep != nil {
			a, _ := json.Marshal(rep)
			b, _ := json.Marshal(srep)
			if !bytes.Equal(a, b) {
				t.Fatalf("reports differ:\ntwo-pass    %s\nsingle pass %s", a, b)
			}
		}
		if err != nil {
			if rep == nil && dsig.CodeOf(err) != "" {
				t.Fatalf("typed refusal without a report: %v", err)
			}
			if rep != nil && (rep.Outcome != OutcomeInvalid || rep.Code != dsig.CodeOf(err)) {
				t.Fatalf("refusal %v with report %s/%s", err, rep.Outcome, rep.Code)
			}
			return
		}
		if rep.Outcome != OutcomeValid || len(rep.Signatures) != 1 || rep.Signatures[0].Organ != doc.From.Code {
			t.Fatalf("accepted with report %+v", rep)
		}
	})
}
