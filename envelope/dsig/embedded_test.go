package dsig_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// A hub envelope carrying an Akoma Ntoso payload signed by its author, the
// envelope signed by the sender organ: two signatures, each at its place.

var (
	aknLoc = dsig.AKNProprietary("#tacgia")
	hubEmb = &dsig.Embedded{
		Parent:   dsig.Location{Namespace: envelope.NamespaceHub, Path: []string{"Envelope", "Payload"}},
		Location: dsig.AKNPayloadProprietary,
	}
	hubOpts = dsig.Options{Location: dsig.RootChild, Embedded: hubEmb}
)

// aknDoc is a small Akoma Ntoso act with a proprietary wrapper for the
// author's signature; sig goes inside it (a template for xmlsec1, or "").
func aknDoc(text, sig string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0">
  <act name="act">
    <meta>
      <identification source="#tacgia">
        <FRBRWork><FRBRthis value="/akn/vn/act/2026/7/!main"/><FRBRuri value="/akn/vn/act/2026/7"/><FRBRdate date="2026-03-02" name="Generation"/><FRBRauthor href="#tacgia"/><FRBRcountry value="vn"/></FRBRWork>
      </identification>
      <proprietary source="#tacgia">` + sig + `</proprietary>
    </meta>
    <body><p>` + text + `</p></body>
  </act>
</akomaNtoso>
`)
}

const aknText = "Điều 1. Luật thử nghiệm (giả lập)."

// signedAKN is aknDoc(text) signed by c at meta/proprietary.
func signedAKN(tb testing.TB, c *testpki.Cert, text string) []byte {
	tb.Helper()
	out, err := dsig.Sign(aknDoc(text, ""), c.Key, pki(tb).Chain(c), dsig.SignOptions{Location: aknLoc})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// wrapHub puts akn inline in an unsigned hub envelope.
func wrapHub(tb testing.TB, akn []byte) []byte {
	tb.Helper()
	env, err := envelope.BuildHubEnvelope(envelope.HubHeader{
		From: envelope.Organ{Code: "000.00.00.C01"}, To: []envelope.Organ{{Code: "000.00.00.C02"}},
		DocumentID: "000.00.00.C01,2026/03/02,7/VPTN-AKN", Created: time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC),
	}, "application/akn+xml", akn, true)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// signHub signs a hub envelope (keeping its payload's signature) with c.
func signHub(tb testing.TB, env []byte, c *testpki.Cert) []byte {
	tb.Helper()
	out, err := dsig.Sign(env, c.Key, pki(tb).Chain(c), dsig.SignOptions{Location: dsig.RootChild, KeepSignatures: true})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// payloadSig returns the payload's ds:Signature block (the first one).
func payloadSig(tb testing.TB, doc []byte) string { return sigBlock(tb, doc) }

func TestEmbeddedSignatureValid(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	doc := signHub(t, wrapHub(t, signedAKN(t, p.RSALeaf2, aknText)), p.RSALeaf)
	if n := bytes.Count(doc, []byte("<ds:Signature ")); n != 2 {
		t.Fatalf("%d signatures in the fixture", n)
	}
	for _, dom := range []string{domainRequire, domainRecord} {
		rep, el, err := v.Verify(context.Background(), doc, dom, hubOpts)
		sameAsTree(t, v, doc, dom, hubOpts) // the bytes path
		if err != nil {
			t.Fatalf("%s: %v", dom, err)
		}
		if rep.Outcome != dsig.OutcomeValid || el == nil || !rep.Signer.Equal(p.RSALeaf.Cert) || rep.Location == "" {
			t.Fatalf("%s: envelope report %+v", dom, rep)
		}
		e := rep.Embedded
		if e == nil || e.Outcome != dsig.OutcomeValid || !e.Signer.Equal(p.RSALeaf2.Cert) || len(e.Chain) != 3 ||
			!strings.Contains(e.Location, "proprietary") || e.C14N != dsig.AlgExcC14N {
			t.Fatalf("%s: embedded report %+v", dom, e)
		}
		// The verified element is the envelope without its own signature:
		// the payload and its signature are in it, and so is the text.
		var sigs int
		for _, s := range el.FindElements("//Signature") {
			if s.Parent().Tag == "proprietary" {
				sigs++
			} else {
				t.Errorf("verified element holds a signature under <%s>", s.Parent().Tag)
			}
		}
		if sigs != 1 || !strings.Contains(el.FindElement("//p").Text(), aknText) {
			t.Errorf("verified element: %d payload signatures, text %q", sigs, el.FindElement("//p").Text())
		}
	}

	// Without Options.Embedded the same bytes stay refused (the edXML and
	// hub defaults are unchanged).
	sameAsTree(t, v, doc, domainRequire, dsig.Options{Location: dsig.RootChild}) // the bytes path
	if _, _, err := v.Verify(context.Background(), doc, domainRequire, dsig.Options{Location: dsig.RootChild}); dsig.CodeOf(err) != dsig.CodeMultiple {
		t.Errorf("without Embedded: %s", fmtCodes(err))
	}
	// An envelope signature alone, and an unsigned payload, still verify
	// through the one-signature path.
	single := signHub(t, wrapHub(t, aknDoc(aknText, "")), p.RSALeaf)
	rep, _, err := v.Verify(context.Background(), single, domainRequire, hubOpts)
	sameAsTree(t, v, single, domainRequire, hubOpts) // the bytes path
	if err != nil || rep.Embedded != nil {
		t.Fatalf("envelope-only: %v %+v", err, rep)
	}
}

func TestEmbeddedSignatureRefused(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	good := signHub(t, wrapHub(t, signedAKN(t, p.RSALeaf2, aknText)), p.RSALeaf)
	akn := signedAKN(t, p.RSALeaf2, aknText)
	aknSig := payloadSig(t, akn)

	tests := []struct {
		name string
		doc  func() []byte
		// code refusing the document, and the verdict codes of the
		// envelope's and the payload's signatures ("" = valid, "-" = none).
		code, envCode, payCode string
		domain                 string
	}{
		{name: "payload text altered after both signatures (envelope reported first)",
			doc:  func() []byte { return replaceOnce(t, good, aknText, "Điều 1. Luật đã bị sửa.") },
			code: dsig.CodeDigestMismatch, envCode: dsig.CodeDigestMismatch, payCode: dsig.CodeDigestMismatch},
		{name: "payload signature moved out of meta/proprietary, then the envelope signed",
			doc: func() []byte {
				moved := bytes.Replace(akn, []byte(aknSig), nil, 1)
				moved = replaceOnce(t, moved, "<p>"+aknText+"</p>", "<p>"+aknText+"</p>"+aknSig)
				return signHub(t, wrapHub(t, moved), p.RSALeaf)
			},
			code: dsig.CodeMisplaced, envCode: "-", payCode: "-"},
		{name: "payload signature moved into a proprietary without source",
			doc: func() []byte {
				moved := bytes.Replace(akn, []byte(aknSig), nil, 1)
				moved = replaceOnce(t, moved, "</meta>", "<proprietary>"+aknSig+"</proprietary></meta>")
				return signHub(t, wrapHub(t, moved), p.RSALeaf)
			},
			code: dsig.CodeMisplaced, envCode: "-", payCode: "-"},
		{name: "a third signature in a second proprietary",
			doc: func() []byte {
				third := replaceOnce(t, akn, "</meta>", `<proprietary source="#khac">`+aknSig+"</proprietary></meta>")
				return signHub(t, wrapHub(t, third), p.RSALeaf)
			},
			code: dsig.CodeMultiple, envCode: "-", payCode: "-"},
		{name: "a third signature in the envelope header",
			doc: func() []byte {
				return replaceOnce(t, good, "</lt:Header>", aknSig+"</lt:Header>")
			},
			code: dsig.CodeMultiple, envCode: "-", payCode: "-"},
		{name: "payload signed with an unknown CA",
			doc:  func() []byte { return signHub(t, wrapHub(t, signedAKN(t, p.UnknownLeaf, aknText)), p.RSALeaf) },
			code: dsig.CodeUnknownSigner, envCode: "", payCode: dsig.CodeUnknownSigner},
		{name: "envelope signed over a payload whose signature was swapped for another document's",
			doc: func() []byte {
				other := payloadSig(t, signedAKN(t, p.RSALeaf2, "Điều 1. Một luật khác."))
				return signHub(t, wrapHub(t, bytes.Replace(akn, []byte(aknSig), []byte(other), 1)), p.RSALeaf)
			},
			code: dsig.CodeDigestMismatch, envCode: "", payCode: dsig.CodeDigestMismatch},
		{name: "payload signature value altered, envelope signed over it",
			doc: func() []byte {
				i := strings.Index(aknSig, "<ds:SignatureValue>") + len("<ds:SignatureValue>")
				flip := aknSig[:i] + "A" + aknSig[i+1:]
				if flip == aknSig {
					flip = aknSig[:i] + "B" + aknSig[i+1:]
				}
				return signHub(t, wrapHub(t, bytes.Replace(akn, []byte(aknSig), []byte(flip), 1)), p.RSALeaf)
			},
			code: dsig.CodeInvalid, envCode: "", payCode: dsig.CodeInvalid},
		{name: "envelope signature value altered, payload valid",
			doc: func() []byte {
				i := bytes.LastIndex(good, []byte("<ds:SignatureValue>")) + len("<ds:SignatureValue>")
				bad := bytes.Clone(good)
				bad[i] ^= 'A' ^ 'B'
				if bad[i] == good[i] || !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", rune(bad[i])) {
					bad[i] = 'A'
					if good[i] == 'A' {
						bad[i] = 'B'
					}
				}
				return bad
			},
			code: dsig.CodeInvalid, envCode: dsig.CodeInvalid, payCode: ""},
		{name: "envelope signed by an expired certificate, payload valid",
			doc:  func() []byte { return signHub(t, wrapHub(t, akn), p.ExpiredLeaf) },
			code: dsig.CodeExpired, envCode: dsig.CodeExpired, payCode: ""},
		{name: "signed payload in an unsigned envelope, policy require",
			doc:  func() []byte { return wrapHub(t, akn) },
			code: dsig.CodeMissing, envCode: "-", payCode: ""},
		{name: "invalid payload in an unsigned envelope, policy record",
			doc:    func() []byte { return wrapHub(t, signedAKN(t, p.UnknownLeaf, aknText)) },
			domain: domainRecord, code: dsig.CodeUnknownSigner, envCode: "-", payCode: dsig.CodeUnknownSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dom := tc.domain
			if dom == "" {
				dom = domainRequire
			}
			doc := tc.doc()
			for range 3 { // the verdict is the same every time
				rep, el, err := v.Verify(context.Background(), doc, dom, hubOpts)
				sameAsTree(t, v, doc, dom, hubOpts) // the bytes path
				if dsig.CodeOf(err) != tc.code || el != nil {
					t.Fatalf("got %s, want %s", fmtCodes(err), tc.code)
				}
				if rep.Outcome != dsig.OutcomeInvalid || rep.Code != tc.code {
					t.Fatalf("report %s/%s", rep.Outcome, rep.Code)
				}
				if tc.payCode != "-" {
					if rep.Embedded == nil {
						t.Fatal("no embedded report")
					}
					if got := verdictCode(rep.Embedded); got != tc.payCode {
						t.Errorf("payload signature: %q, want %q (%s)", got, tc.payCode, rep.Embedded.Reason)
					}
				}
				switch {
				case tc.envCode == "" && !rep.EmbeddedRefused:
					t.Errorf("envelope signature should have verified (%s)", rep.Reason)
				case tc.envCode != "" && tc.envCode != "-" && rep.EmbeddedRefused:
					t.Errorf("refusal attributed to the payload, want the envelope's %s", tc.envCode)
				}
			}
		})
	}

	// Policy record: the unsigned envelope with a valid signed payload is
	// accepted as absent, the payload's verdict reported.
	rep, el, err := v.Verify(context.Background(), wrapHub(t, akn), domainRecord, hubOpts)
	sameAsTree(t, v, wrapHub(t, akn), domainRecord, hubOpts) // the bytes path
	if err != nil || rep.Outcome != dsig.OutcomeAbsent || el != nil || rep.Embedded == nil || rep.Embedded.Outcome != dsig.OutcomeValid {
		t.Fatalf("record, unsigned envelope: %v %+v", err, rep)
	}
}

func verdictCode(r *dsig.Report) string {
	if r.Outcome == dsig.OutcomeValid {
		return ""
	}
	return r.Code
}

// The independent signer: xmlsec1 signs the Akoma Ntoso document on its
// own; the hub wraps it and signs the envelope; both verify here, and
// xmlsec1 verifies the envelope signature (selected by XPath) too.
func TestEmbeddedXmlsec1Payload(t *testing.T) {
	bin := xmlsec1(t)
	p := pki(t)
	v := newVerifier(t)
	for _, tc := range []struct {
		name      string
		signer    *testpki.Cert
		c14n, alg string
		code      string
	}{
		{"RSA-SHA256 exc-c14n", p.RSALeaf2, dsig.AlgExcC14N, dsig.AlgRSASHA256, ""},
		{"ECDSA P-256 exc-c14n", p.ECLeaf, dsig.AlgExcC14N, dsig.AlgECDSASHA256, ""},
		// inclusive c14n would take in the envelope's namespaces: refused
		{"RSA-SHA256 c14n 1.0", p.RSALeaf2, dsig.AlgC14N10, dsig.AlgRSASHA256, dsig.CodeAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, err := p.WriteFiles(dir, tc.signer)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := filepath.Join(dir, "akn-tmpl.xml")
			if err := os.WriteFile(tmpl, aknDoc(aknText, template(tc.c14n, tc.alg)), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "akn-signed.xml")
			run(t, bin, "--sign", "--privkey-pem", f.Key+","+f.Cert+","+f.Intermediate, "--output", out, tmpl)
			run(t, bin, "--verify", "--trusted-pem", f.Root, "--enabled-key-data", "x509", out)
			akn, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// The AKN document verifies on its own, too.
			if _, _, err := v.Verify(context.Background(), akn, domainRequire, dsig.Options{Location: aknLoc}); err != nil {
				t.Fatalf("standalone AKN: %v", err)
			}

			doc := signHub(t, wrapHub(t, akn), p.RSALeaf)
			rep, el, err := v.Verify(context.Background(), doc, domainRequire, hubOpts)
			sameAsTree(t, v, doc, domainRequire, hubOpts) // the bytes path
			if tc.code != "" {
				if dsig.CodeOf(err) != tc.code || !rep.EmbeddedRefused {
					t.Fatalf("got %s, want %s", fmtCodes(err), tc.code)
				}
				return
			}
			if err != nil || el == nil {
				t.Fatalf("Verify: %v", err)
			}
			if e := rep.Embedded; e == nil || e.Outcome != dsig.OutcomeValid || !e.Signer.Equal(tc.signer.Cert) || e.Algorithm != tc.alg {
				t.Fatalf("embedded report %+v", rep.Embedded)
			}

			// xmlsec1 checks the envelope's signature (the root's child).
			env := filepath.Join(dir, "env.xml")
			if err := os.WriteFile(env, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			xp := "/*/*[local-name()='Signature']"
			run(t, bin, "--verify", "--node-xpath", xp, "--trusted-pem", f.Root, "--enabled-key-data", "x509", env)
			bad := filepath.Join(dir, "bad.xml")
			if err := os.WriteFile(bad, replaceOnce(t, doc, aknText, "Điều 1. Đã sửa."), 0o600); err != nil {
				t.Fatal(err)
			}
			fail(t, bin, "--verify", "--node-xpath", xp, "--trusted-pem", f.Root, "--enabled-key-data", "x509", bad)

			// And xmlsec1 as the sender too: it signs the envelope around
			// the signed payload (exclusive and inclusive c14n), the hub
			// checks that signature with validateAt.
			ef, err := p.WriteFiles(dir, p.RSALeaf)
			if err != nil {
				t.Fatal(err)
			}
			for _, c14n := range []string{dsig.AlgExcC14N, dsig.AlgC14N10} {
				etmpl := filepath.Join(dir, "env-tmpl.xml")
				unsigned := wrapHub(t, akn)
				if err := os.WriteFile(etmpl, replaceOnce(t, unsigned, "</lt:Envelope>", template(c14n, dsig.AlgRSASHA256)+"</lt:Envelope>"), 0o600); err != nil {
					t.Fatal(err)
				}
				eout := filepath.Join(dir, "env-xmlsec.xml")
				run(t, bin, "--sign", "--node-xpath", xp, "--privkey-pem", ef.Key+","+ef.Cert+","+ef.Intermediate, "--output", eout, etmpl)
				raw, err := os.ReadFile(eout)
				if err != nil {
					t.Fatal(err)
				}
				rep, el, err := v.Verify(context.Background(), raw, domainRequire, hubOpts)
				sameAsTree(t, v, raw, domainRequire, hubOpts) // the bytes path
				if err != nil || el == nil || rep.C14N != c14n || !rep.Signer.Equal(p.RSALeaf.Cert) || rep.Embedded == nil || rep.Embedded.Outcome != dsig.OutcomeValid {
					t.Fatalf("xmlsec1-signed envelope (%s): %v %+v", c14n, err, rep)
				}
				bad := replaceOnce(t, raw, aknText, "Điều 1. Đã sửa.")
				sameAsTree(t, v, bad, domainRequire, hubOpts) // the bytes path
				if _, _, err := v.Verify(context.Background(), bad, domainRequire, hubOpts); dsig.CodeOf(err) != dsig.CodeDigestMismatch {
					t.Errorf("altered xmlsec1-signed envelope (%s): %s", c14n, fmtCodes(err))
				}
			}
		})
	}
}

// FuzzVerifyEmbedded: with Options.Embedded, Verify never panics; a valid
// verdict returns the envelope root without its own signature, and the
// payload's signature, when reported, is valid too.
func FuzzVerifyEmbedded(f *testing.F) {
	p, err := testpki.NewEC(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	s := trust.NewStore()
	if err := s.Add(&trust.Domain{Name: domainRequire, Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
		f.Fatal(err)
	}
	v := &dsig.Verifier{Trust: s, Now: time.Now}
	akn, err := dsig.Sign(aknDoc(aknText, ""), p.ECLeaf.Key, p.Chain(p.ECLeaf), dsig.SignOptions{Location: aknLoc})
	if err != nil {
		f.Fatal(err)
	}
	env := wrapHub(f, akn)
	good, err := dsig.Sign(env, p.ECLeaf.Key, p.Chain(p.ECLeaf), dsig.SignOptions{Location: dsig.RootChild, KeepSignatures: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(env)
	f.Add(bytes.Replace(good, []byte(aknText), []byte("x"), 1))
	f.Add(bytes.Replace(good, []byte("</lt:Header>"), []byte(sigBlock(f, akn)+"</lt:Header>"), 1))
	f.Add(bytes.Replace(good, []byte(`source="#tacgia">`), []byte(`source="">`), 1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, el, err := v.Verify(context.Background(), raw, domainRequire, hubOpts)
		sameAsTree(t, v, raw, domainRequire, hubOpts) // the bytes path
		if rep == nil {
			t.Fatalf("no report (err %v)", err)
		}
		if err != nil {
			if el != nil || rep.Outcome != dsig.OutcomeInvalid || dsig.CodeOf(err) == "" {
				t.Fatalf("error %v with element %v, outcome %q", err, el, rep.Outcome)
			}
			return
		}
		if rep.Outcome != dsig.OutcomeValid || el == nil {
			t.Fatalf("no error, outcome %q", rep.Outcome)
		}
		if rep.Embedded != nil && rep.Embedded.Outcome != dsig.OutcomeValid {
			t.Fatalf("valid document with an embedded verdict %q", rep.Embedded.Outcome)
		}
		for _, c := range el.ChildElements() {
			if c.Tag == "Signature" && c.NamespaceURI() == dsig.NamespaceDSig {
				t.Fatal("verified element still carries the envelope signature")
			}
		}
	})
}

// BenchmarkVerifyEmbedded: a hub envelope with a signed AKN payload (two
// signatures, RSA-2048) against the same envelope signed once.
func BenchmarkVerifyEmbedded(b *testing.B) {
	p := pki(b)
	v := newVerifier(b)
	for _, bc := range []struct {
		name string
		doc  []byte
	}{
		{"envelope+payload", signHub(b, wrapHub(b, signedAKN(b, p.RSALeaf2, aknText)), p.RSALeaf)},
		{"envelope only", signHub(b, wrapHub(b, aknDoc(aknText, "")), p.RSALeaf)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.Verify(context.Background(), bc.doc, domainRequire, hubOpts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
