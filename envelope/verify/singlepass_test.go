package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// signedFixture is the fixture signed by the RSA leaf (bound to orgFrom).
func signedFixture(t *testing.T) []byte {
	t.Helper()
	p := pki(t)
	out, err := dsig.Sign(fixture(t), p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func singlePassVerifier(t *testing.T, now time.Time) *Verifier {
	t.Helper()
	fp := Fingerprint(pki(t).RSALeaf.Cert)
	v, err := New(Config{Trust: store(t), Now: func() time.Time { return now },
		Directory: DirectoryFunc(func(_ context.Context, organ string) (Binding, error) {
			return Binding{Code: organ, CertFingerprints: []string{fp}}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSinglePassReadsOnlySignedBytes: with one tokenization shared by the
// parser and the verifier (envelope.ParseRecorded, dsig VerifyTokens), the
// metadata the hub keeps is still only what the signature covers.
func TestSinglePassReadsOnlySignedBytes(t *testing.T) {
	now := time.Now()
	v := singlePassVerifier(t, now)
	signed := signedFixture(t)
	const forged = "000.00.00.Z99"

	t.Run("forged header inside the ds:Signature, before the real one", func(t *testing.T) {
		// Signature wrapping: the enveloped-signature transform leaves the
		// ds:Signature element out of the digest, so whatever is put inside
		// it keeps the signature valid. Moved (unchanged otherwise) to be
		// the first child of edXMLHeader, with a forged MessageHeader in
		// its KeyInfo, it puts a From before the signed one in document
		// order: a parser that read metadata there would take it.
		s := string(signed)
		i := strings.Index(s, "<ds:Signature")
		j := strings.Index(s, "</ds:Signature>") + len("</ds:Signature>")
		if i < 0 || j < i {
			t.Fatal("no ds:Signature in the signed fixture")
		}
		sig := s[i:j]
		k := strings.Index(sig, "</ds:KeyInfo>")
		if k < 0 {
			t.Fatal("no KeyInfo")
		}
		wrapped := sig[:k] + `<edXML:MessageHeader xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXML:From><edXML:OrganId>` +
			forged + `</edXML:OrganId></edXML:From><edXML:Subject>forged</edXML:Subject></edXML:MessageHeader>` + sig[k:]
		rest := s[:i] + s[j:]
		h := strings.Index(rest, "<edXML:edXMLHeader>")
		if h < 0 {
			t.Fatal("no edXMLHeader start tag")
		}
		h += len("<edXML:edXMLHeader>")
		raw := []byte(rest[:h] + wrapped + rest[h:])

		doc, err := envelope.ParseRecorded(raw, envelope.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if doc.From.Code != orgFrom || strings.Contains(doc.Subject, "forged") {
			t.Fatalf("metadata read inside the ds:Signature: From %q, Subject %q", doc.From.Code, doc.Subject)
		}
		rep, err := v.Verify(context.Background(), doc, ChannelAPI)
		if err != nil {
			t.Fatalf("the signature stays valid (the Signature element is not signed): %v", err)
		}
		if rep.Outcome != OutcomeValid || rep.Organ != orgFrom || doc.From.Code != orgFrom {
			t.Fatalf("report %+v, From %q; want valid for %s", rep, doc.From.Code, orgFrom)
		}
	})

	t.Run("metadata of other bytes than the signed ones", func(t *testing.T) {
		// A Document read from forged bytes whose Raw is then replaced by
		// a validly signed document: the signature verifies over Raw, so
		// the metadata must be read from Raw, not taken from the tokens
		// (or fields) of the forged bytes.
		forgedRaw := bytes.Replace(signed, []byte(">"+orgFrom+"<"), []byte(">"+forged+"<"), 1)
		if bytes.Equal(forgedRaw, signed) {
			t.Fatal("From not found")
		}
		for _, parse := range []func([]byte, envelope.Limits) (*envelope.Document, error){envelope.ParseRecorded, envelope.Parse} {
			doc, err := parse(forgedRaw, envelope.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if doc.From.Code != forged {
				t.Fatalf("From %q", doc.From.Code)
			}
			doc.Raw = signed
			rep, err := v.Verify(context.Background(), doc, ChannelAPI)
			if dsig.CodeOf(err) != CodeSignedMetadata || rep == nil || rep.Outcome != OutcomeInvalid {
				t.Fatalf("got %v (report %+v), want %s", err, rep, CodeSignedMetadata)
			}
		}
	})

	t.Run("a tape is replayed only for the bytes it was read from", func(t *testing.T) {
		doc, err := envelope.ParseRecorded(signed, envelope.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		tape := doc.TakeTokens()
		defer tape.Release()
		if !dsig.TapeServes(tape, signed) {
			t.Fatal("the tape of a parsed document does not serve its Raw")
		}
		tampered := bytes.Replace(signed, []byte("<edXML:Subject>"), []byte("<edXML:Subject>X"), 1)
		same := bytes.Clone(signed)
		if dsig.TapeServes(tape, tampered) || dsig.TapeServes(tape, same) {
			t.Fatal("a tape serves other bytes (or a copy) than those it was read from")
		}
		ds := &dsig.Verifier{Trust: store(t), Now: func() time.Time { return now }}
		opts := dsig.Options{Location: dsig.EdXMLHeader}
		// The tape of the signed bytes must not make tampered bytes verify.
		if _, _, err := ds.VerifyTokens(context.Background(), tampered, tape, DomainAgency, opts); dsig.CodeOf(err) != dsig.CodeDigestMismatch {
			t.Fatalf("tampered bytes with the signed bytes' tape: %v, want %s", err, dsig.CodeDigestMismatch)
		}
		if rep, _, err := ds.VerifyTokens(context.Background(), signed, tape, DomainAgency, opts); err != nil || rep.Outcome != dsig.OutcomeValid {
			t.Fatalf("signed bytes with their tape: %v", err)
		}
	})
}

// corpus returns every document of testdata/ as received and, when it can
// be signed, signed by the RSA leaf.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	p := pki(t)
	out := map[string][]byte{}
	for _, pat := range []string{"../../testdata/edxml/*.edxml", "../../testdata/hub/*.xml"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(f)
			out[name] = raw
			loc := dsig.EdXMLHeader
			if strings.HasSuffix(f, ".xml") {
				loc = dsig.RootChild
			}
			if s, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: loc, ReplacePlaceholder: true}); err == nil {
				out[name+" (signed)"] = s
				// and with a byte order mark and CRLF line ends
				out[name+" (signed, BOM)"] = append([]byte("\xef\xbb\xbf"), s...)
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("corpus has %d documents", len(out))
	}
	return out
}

// TestSinglePassMatchesTwoPass: over the documents of testdata/ (as
// received and signed), the single pass (ParseRecorded, the verifier
// replays Parse's tokens) gives the same parsed metadata and byte-identical
// verification reports as the two-pass route (Parse, then VerifyBytes
// tokenizes Raw again), on every channel.
func TestSinglePassMatchesTwoPass(t *testing.T) {
	now := time.Now()
	v := singlePassVerifier(t, now)
	ds := &dsig.Verifier{Trust: store(t), Now: func() time.Time { return now }}
	lim := envelope.Limits{MaxBytes: 1 << 20}
	valid := 0
	for name, raw := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			two, err2 := envelope.Parse(raw, lim)
			one, err1 := envelope.ParseRecorded(raw, lim)
			if envelope.CodeOf(err1) != envelope.CodeOf(err2) || (err1 == nil) != (err2 == nil) {
				t.Fatalf("parse: single pass %v, two-pass %v", err1, err2)
			}
			if err1 != nil {
				return
			}
			// The tape serves the bytes, and dsig gives both routes one verdict.
			tape := one.TakeTokens()
			if !dsig.TapeServes(tape, raw) {
				t.Fatal("the tape of a parsed document does not serve its Raw")
			}
			opts := dsig.Options{Location: Location(two.Format), Embedded: Embedded(two.Format)}
			for _, domain := range []string{DomainAgency, DomainAxis} {
				r1, e1, x1 := ds.VerifyTokens(context.Background(), raw, tape, domain, opts)
				r2, e2, x2 := ds.VerifyBytes(context.Background(), raw, domain, opts)
				sameJSON(t, "dsig report ("+domain+")", r1, r2)
				if dsig.CodeOf(x1) != dsig.CodeOf(x2) || (x1 == nil) != (x2 == nil) || (e1 == nil) != (e2 == nil) {
					t.Fatalf("dsig %s: single pass %v, two-pass %v", domain, x1, x2)
				}
			}
			tape.Release()

			for _, ch := range []string{ChannelAPI, ChannelAxis} {
				one, _ := envelope.ParseRecorded(raw, lim)
				two, _ := envelope.Parse(raw, lim)
				r1, e1 := v.Verify(context.Background(), one, ch)
				r2, e2 := v.Verify(context.Background(), two, ch)
				if dsig.CodeOf(e1) != dsig.CodeOf(e2) || (e1 == nil) != (e2 == nil) {
					t.Fatalf("%s: single pass %v, two-pass %v", ch, e1, e2)
				}
				sameJSON(t, "report ("+ch+")", r1, r2)
				if one.TakeTokens() != nil {
					t.Fatal("the verifier left the tokens in the document")
				}
				if !reflect.DeepEqual(one, two) {
					t.Fatalf("metadata differ:\nsingle pass %+v\ntwo-pass    %+v", one, two)
				}
				if r1 != nil && r1.Outcome == OutcomeValid && ch == ChannelAPI {
					valid++
				}
			}
		})
	}
	if valid < 20 {
		t.Fatalf("only %d documents verified as valid: the corpus does not exercise the signed path", valid)
	}
}

func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s differs:\nsingle pass %s\ntwo-pass    %s", what, ja, jb)
	}
}
