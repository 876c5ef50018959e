package dsig_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	goxmldsig "github.com/russellhaering/goxmldsig"

	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	for _, c := range []*testpki.Cert{p.RSALeaf, p.ECLeaf, p.ECLeaf384} {
		t.Run(c.Cert.Subject.CommonName, func(t *testing.T) {
			doc := signed(t, c, 2000)
			rep, el, err := v.Verify(context.Background(), doc, domainRequire, edxmlOpts)
			sameAsTree(t, v, doc, domainRequire, edxmlOpts) // the bytes path
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.Outcome != dsig.OutcomeValid || !rep.Signer.Equal(c.Cert) || len(rep.Chain) != 3 {
				t.Fatalf("report %+v", rep)
			}
			if rep.C14N != dsig.AlgExcC14N || rep.Reference != "" || rep.Digest != dsig.AlgDigestSHA256 {
				t.Errorf("algorithms %q %q %q", rep.C14N, rep.Reference, rep.Digest)
			}
			// The verified element is the whole document without the signature.
			if el.Tag != "edXML" || el.FindElement("//Signature") != nil {
				t.Errorf("verified element %s has a signature", el.Tag)
			}
			if got := el.FindElement("./edXMLEnvelope/edXMLHeader/MessageHeader/Subject").Text(); !strings.Contains(got, "ký số") {
				t.Errorf("subject %q", got)
			}
			// The report survives JSON with its certificates.
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back dsig.Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !back.Signer.Equal(c.Cert) || len(back.Chain) != 3 || back.Outcome != dsig.OutcomeValid ||
				!strings.Contains(string(b), `"signer_subject":"CN=`+c.Cert.Subject.CommonName) {
				t.Errorf("JSON round trip: %s", b)
			}
		})
	}
}

func TestVerifyToleratesTrailingNewlineAndBOM(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	doc := signed(t, p.RSALeaf, 100)
	for name, raw := range map[string][]byte{
		"no trailing newline": []byte(strings.TrimRight(string(doc), "\n")),
		"CRLF tail":           append([]byte(strings.TrimRight(string(doc), "\n")), "\r\n\r\n"...),
		"BOM":                 append([]byte("\xef\xbb\xbf"), doc...),
	} {
		t.Run(name, func(t *testing.T) { mustVerify(t, v, raw, domainRequire) })
	}
}

func TestVerifyDoesNotModifyInput(t *testing.T) {
	doc := signed(t, pki(t).ECLeaf, 100)
	keep := string(doc)
	mustVerify(t, newVerifier(t), doc, domainRequire)
	if string(doc) != keep {
		t.Fatal("Verify changed its input")
	}
}

func TestSignHubEnvelopeAtRoot(t *testing.T) {
	p := pki(t)
	raw := []byte(`<Envelope xmlns="urn:lienthong:envelope:1" ID="e1"><From>000.00.00.H01</From><Payload type="akn">` +
		`<x a="tab&#9;and&#10;newline">carriage&#13;return</x></Payload></Envelope>`)
	out, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.RootChild})
	if err != nil {
		t.Fatal(err)
	}
	rep, el, err := newVerifier(t).Verify(context.Background(), out, domainRequire, dsig.Options{Location: dsig.RootChild})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Reference != "" {
		t.Errorf("Sign wrote Reference %q, want whole document", rep.Reference)
	}
	if got := el.FindElement("//x").SelectAttrValue("a", ""); got != "tab\tand\nnewline" {
		t.Errorf("attribute %q", got)
	}
}

func TestSignReplacesPlaceholder(t *testing.T) {
	p := pki(t)
	raw := edxml(placeholderSig, 100)
	if _, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader}); err == nil {
		t.Fatal("Sign over a placeholder without ReplacePlaceholder succeeded")
	}
	out, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "GbVb8n9") {
		t.Fatal("placeholder kept")
	}
	mustVerify(t, newVerifier(t), out, domainRequire)
	if _, err := dsig.Sign(out, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader}); err == nil {
		t.Fatal("signing a signed document succeeded")
	}
	if _, err := dsig.Sign(raw, p.ECLeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true}); err == nil {
		t.Fatal("signing with a key that does not match the certificate succeeded")
	}
}

func TestAbsentAndPlaceholderByPolicy(t *testing.T) {
	v := newVerifier(t)
	for _, tc := range []struct {
		name, domain, tail string
		outcome, code      string
	}{
		{"absent/require", domainRequire, "", dsig.OutcomeInvalid, dsig.CodeMissing},
		{"absent/record", domainRecord, "", dsig.OutcomeAbsent, ""},
		{"placeholder/require", domainRequire, placeholderSig, dsig.OutcomeInvalid, dsig.CodePlaceholder},
		{"placeholder/record", domainRecord, placeholderSig, dsig.OutcomePlaceholder, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, el, err := v.Verify(context.Background(), edxml(tc.tail, 100), tc.domain, edxmlOpts)
			sameAsTree(t, v, edxml(tc.tail, 100), tc.domain, edxmlOpts) // the bytes path
			if dsig.CodeOf(err) != tc.code || rep == nil || rep.Outcome != tc.outcome || el != nil {
				t.Fatalf("got %v, report %+v; want code %q outcome %q", err, rep, tc.code, tc.outcome)
			}
			if tc.code != "" && (!errors.Is(err, dsig.ErrSignatureMissing) || errors.Is(err, dsig.ErrSignatureInvalid)) {
				t.Errorf("errors.Is mismatch for %v", err)
			}
			if tc.code == "" && len(rep.Warnings) == 0 {
				t.Error("record policy: no warning in the report")
			}
		})
	}
}

func TestUnknownDomain(t *testing.T) {
	_, _, err := newVerifier(t).Verify(context.Background(), edxml("", 10), "nope", edxmlOpts)
	if !errors.Is(err, dsig.ErrUnknownDomain) || dsig.CodeOf(err) != "" {
		t.Fatalf("got %v", err)
	}
}

// goxSign signs doc with goxmldsig directly, for shapes dsig.Sign refuses to
// make: a reference to an id (target picks the element), or another hash.
// The signature goes at the end of edXMLHeader.
func goxSign(t *testing.T, doc []byte, c *testpki.Cert, hash crypto.Hash, target func(root *etree.Element) *etree.Element) []byte {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatal(err)
	}
	var certs [][]byte
	for _, x := range pki(t).Chain(c) {
		certs = append(certs, x.Raw)
	}
	ctx, err := goxmldsig.NewSigningContext(c.Key, certs)
	if err != nil {
		t.Fatal(err)
	}
	ctx.Hash = hash
	ctx.Canonicalizer = goxmldsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	sig, err := ctx.ConstructSignature(target(d.Root()), true)
	if err != nil {
		t.Fatal(err)
	}
	d.Root().FindElement("./edXMLEnvelope/edXMLHeader").AddChild(sig)
	out, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func root(el *etree.Element) *etree.Element { return el }

func TestHostile(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	good := signed(t, p.RSALeaf, 500)
	goodEC := signed(t, p.ECLeaf, 500)
	sig := sigBlock(t, good)
	const header = "</edXML:TraceHeaderList>"
	withID := []byte(strings.Replace(string(edxml("", 500)), "<edXML xmlns=", `<edXML ID="doc1" xmlns=`, 1))
	// A valid signature over the root by id: the base of the id attacks.
	byID := goxSign(t, withID, p.RSALeaf, crypto.SHA256, root)
	mustVerify(t, v, byID, domainRequire)
	// sig2 is the signature of another document: a second signature.
	other := signed(t, p.ECLeaf, 10)

	for _, tc := range []struct {
		name string
		doc  func(t *testing.T) []byte
		code string
	}{
		{"altered text", func(t *testing.T) []byte {
			return replaceOnce(t, good, "Nguyễn Văn A", "Nguyễn Văn B")
		}, dsig.CodeDigestMismatch},
		{"altered attachment", func(t *testing.T) []byte {
			return replaceOnce(t, goodEC, "<ContentId>cid:209</ContentId>", "<ContentId>cid:210</ContentId>")
		}, dsig.CodeDigestMismatch},
		{"re-indented", func(t *testing.T) []byte {
			return replaceOnce(t, good, "\n        <edXML:Code>", "\n\n        <edXML:Code>")
		}, dsig.CodeDigestMismatch},
		{"swapped certificate (valid chain, other key)", func(t *testing.T) []byte {
			return replaceOnce(t, good, b64(p.RSALeaf.Cert.Raw), b64(p.RSALeaf2.Cert.Raw))
		}, dsig.CodeInvalid},
		{"certificate of another key type", func(t *testing.T) []byte {
			return replaceOnce(t, good, b64(p.RSALeaf.Cert.Raw), b64(p.ECLeaf.Cert.Raw))
		}, dsig.CodeInvalid},
		{"signature value altered", func(t *testing.T) []byte {
			i := strings.Index(string(goodEC), "<ds:SignatureValue>") + len("<ds:SignatureValue>")
			b := []byte(string(goodEC))
			if b[i+5] == 'A' {
				b[i+5] = 'B'
			} else {
				b[i+5] = 'A'
			}
			return b
		}, dsig.CodeInvalid},
		{"XSW: signature moved into a wrapped copy of the original", func(t *testing.T) []byte {
			// The attacker's envelope is unsigned; the signed original,
			// signature included, hides in the attachment section.
			orig := string(good)
			env := orig[strings.Index(orig, "<edXML:edXMLEnvelope"):strings.Index(orig, "<AttachmentEncoded>")]
			evil := strings.Replace(string(edxml("", 10)), "Nguyễn Văn A", "Kẻ Mạo Danh", 1)
			return []byte(strings.Replace(evil, "<AttachmentEncoded>", "<AttachmentEncoded><Wrapper>"+env+"</Wrapper>", 1))
		}, dsig.CodeMisplaced},
		{"XSW: signature references another element", func(t *testing.T) []byte {
			s := strings.Replace(string(byID), "<edXML:MessageHeader>", `<edXML:MessageHeader ID="m1">`, 1)
			return replaceOnce(t, []byte(s), `URI="#doc1"`, `URI="#m1"`)
		}, dsig.CodeNotWholeDoc},
		{"XSW: original moved into ds:Object, root replaced", func(t *testing.T) []byte {
			s := string(byID)
			obj := `<ds:Object><edXML ID="doc1" xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/></ds:Object>`
			s = strings.Replace(s, `<edXML ID="doc1"`, `<edXML ID="evil"`, 1)
			return []byte(strings.Replace(s, "</ds:Signature>", obj+"</ds:Signature>", 1))
		}, dsig.CodeMalformed},
		{"duplicate id", func(t *testing.T) []byte {
			return replaceOnce(t, byID, "<AttachmentEncoded>", `<AttachmentEncoded ID="doc1">`)
		}, dsig.CodeDuplicateID},
		{"second signature", func(t *testing.T) []byte {
			return replaceOnce(t, good, header, header+sigBlock(t, other))
		}, dsig.CodeMultiple},
		{"second signature elsewhere", func(t *testing.T) []byte {
			return replaceOnce(t, good, "<AttachmentEncoded>", "<AttachmentEncoded>"+sigBlock(t, other))
		}, dsig.CodeMultiple},
		{"signature at the wrong place", func(t *testing.T) []byte {
			out, err := dsig.Sign(edxml("", 10), p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.RootChild})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, dsig.CodeMisplaced},
		{"two references", func(t *testing.T) []byte {
			i := strings.Index(sig, "<ds:Reference")
			j := strings.Index(sig, "</ds:Reference>") + len("</ds:Reference>")
			return replaceOnce(t, good, sig[i:j], sig[i:j]+sig[i:j])
		}, dsig.CodeNotWholeDoc},
		{"reference to an external URI", func(t *testing.T) []byte {
			return replaceOnce(t, good, `<ds:Reference URI="">`, `<ds:Reference URI="http://evil.example/x.xml">`)
		}, dsig.CodeNotWholeDoc},
		{"expired signer", func(t *testing.T) []byte { return signed(t, p.ExpiredLeaf, 10) }, dsig.CodeExpired},
		{"not yet valid signer", func(t *testing.T) []byte { return signed(t, p.FutureLeaf, 10) }, dsig.CodeNotYetValid},
		{"unknown CA", func(t *testing.T) []byte { return signed(t, p.UnknownLeaf, 10) }, dsig.CodeUnknownSigner},
		{"intermediate omitted from KeyInfo", func(t *testing.T) []byte {
			return replaceOnce(t, good, "<ds:X509Certificate>"+b64(p.Intermediate.Cert.Raw)+"</ds:X509Certificate>", "")
		}, dsig.CodeUnknownSigner},
		{"intermediate first in KeyInfo", func(t *testing.T) []byte {
			leaf := "<ds:X509Certificate>" + b64(p.RSALeaf.Cert.Raw) + "</ds:X509Certificate>"
			inter := "<ds:X509Certificate>" + b64(p.Intermediate.Cert.Raw) + "</ds:X509Certificate>"
			return replaceOnce(t, good, leaf+inter, inter+leaf)
		}, dsig.CodeKeyUsage},
		{"keyEncipherment-only signer", func(t *testing.T) []byte { return signed(t, p.KeyEncLeaf, 10) }, dsig.CodeKeyUsage},
		{"serverAuth-only signer", func(t *testing.T) []byte { return signed(t, p.ServerLeaf, 10) }, dsig.CodeKeyUsage},
		{"RSA-1024 signer", func(t *testing.T) []byte { return signed(t, p.WeakRSALeaf, 10) }, dsig.CodeWeakKey},
		{"no KeyInfo", func(t *testing.T) []byte {
			i := strings.Index(sig, "<ds:KeyInfo>")
			return replaceOnce(t, good, sig[i:len(sig)-len("</ds:Signature>")], "")
		}, dsig.CodeNoCertificate},
		{"SHA-1 (rsa-sha1 + sha1)", func(t *testing.T) []byte {
			return goxSign(t, edxml("", 10), p.RSALeaf, crypto.SHA1, root)
		}, dsig.CodeSHA1},
		{"SHA-1 digest only", func(t *testing.T) []byte {
			return replaceOnce(t, good, dsig.AlgDigestSHA256, "http://www.w3.org/2000/09/xmldsig#sha1")
		}, dsig.CodeSHA1},
		{"MD5 digest", func(t *testing.T) []byte {
			return replaceOnce(t, good, dsig.AlgDigestSHA256, "http://www.w3.org/2001/04/xmldsig-more#md5")
		}, dsig.CodeMD5},
		{"HMAC-SHA256", func(t *testing.T) []byte {
			return replaceOnce(t, good, dsig.AlgRSASHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")
		}, dsig.CodeHMAC},
		{"HMAC-SHA1 truncated (CVE-2009-0217)", func(t *testing.T) []byte {
			return replaceOnce(t, good, `<ds:SignatureMethod Algorithm="`+dsig.AlgRSASHA256+`"/>`,
				`<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"><ds:HMACOutputLength>8</ds:HMACOutputLength></ds:SignatureMethod>`)
		}, dsig.CodeHMAC},
		{"c14n with comments", func(t *testing.T) []byte {
			return replaceOnce(t, good, `<ds:CanonicalizationMethod Algorithm="`+dsig.AlgExcC14N+`"/>`,
				`<ds:CanonicalizationMethod Algorithm="`+dsig.AlgExcC14N+`WithComments"/>`)
		}, dsig.CodeAlgorithm},
		{"XPath transform", func(t *testing.T) []byte {
			return replaceOnce(t, good, `<ds:Transform Algorithm="`+dsig.AlgEnveloped+`"/>`,
				`<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>`)
		}, dsig.CodeAlgorithm},
		{"RSA-PSS", func(t *testing.T) []byte {
			return replaceOnce(t, good, dsig.AlgRSASHA256, "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1")
		}, dsig.CodeAlgorithm},
		{"comment injection", func(t *testing.T) []byte {
			return replaceOnce(t, good, "Nguyễn Văn A", "Nguyễn<!----> Văn A")
		}, dsig.CodeCommentInjection},
		{"DOCTYPE", func(t *testing.T) []byte {
			return replaceOnce(t, good, "?>\n<edXML", "?>\n<!DOCTYPE edXML>\n<edXML")
		}, dsig.CodeDoctype},
		{"entity declaration", func(t *testing.T) []byte {
			return replaceOnce(t, good, "?>\n<edXML", "?>\n<!DOCTYPE edXML [<!ENTITY x \"y\">]>\n<edXML")
		}, dsig.CodeDoctype},
		{"duplicate attribute", func(t *testing.T) []byte {
			return replaceOnce(t, good, `<edXML:edXMLManifest version="1.0">`, `<edXML:edXMLManifest version="1.0" version="2.0">`)
		}, dsig.CodeDuplicateAttr},
		{"ISO-8859-1 declaration", func(t *testing.T) []byte {
			return replaceOnce(t, good, `encoding="UTF-8"`, `encoding="ISO-8859-1"`)
		}, dsig.CodeBadEncoding},
		{"invalid UTF-8", func(t *testing.T) []byte {
			return replaceOnce(t, good, "Hà Nội", "H\xe0 N\xf4i")
		}, dsig.CodeBadEncoding},
		{"not XML", func(t *testing.T) []byte { return good[:len(good)/2] }, dsig.CodeNotXML},
		{"trailing garbage", func(t *testing.T) []byte { return append(good, "<x/>"...) }, dsig.CodeNotXML},
		{"comment after the root", func(t *testing.T) []byte { return append(slices.Clone(good), "<!-- x -->"...) }, dsig.CodeNotXML},
		{"processing instruction after the root", func(t *testing.T) []byte { return append(slices.Clone(good), "<?x y?>"...) }, dsig.CodeNotXML},
		{"too deep", func(t *testing.T) []byte {
			return replaceOnce(t, good, "<AttachmentEncoded>", "<AttachmentEncoded>"+strings.Repeat("<d>", 300)+strings.Repeat("</d>", 300))
		}, dsig.CodeTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.doc(t)
			rep, el, err := v.Verify(context.Background(), raw, domainRequire, edxmlOpts)
			sameAsInMemory(t, v, raw, domainRequire, edxmlOpts) // the streaming path (stream.go)
			if got := dsig.CodeOf(err); got != tc.code {
				t.Fatalf("code %s, want %s", fmtCodes(err), tc.code)
			}
			if el != nil || rep == nil || rep.Outcome != dsig.OutcomeInvalid || rep.Code != tc.code {
				t.Fatalf("element %v, report %+v", el, rep)
			}
			var ve *dsig.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, &dsig.VerifyError{Code: tc.code}) {
				t.Errorf("%v is not a *VerifyError with code %s", err, tc.code)
			}
			doccode := map[string]bool{dsig.CodeNotXML: true, dsig.CodeBadEncoding: true, dsig.CodeDoctype: true,
				dsig.CodeDuplicateAttr: true, dsig.CodeTooDeep: true}
			if errors.Is(err, dsig.ErrSignatureInvalid) == doccode[tc.code] {
				t.Errorf("errors.Is(%v, ErrSignatureInvalid) = %v", err, !doccode[tc.code])
			}
		})
	}
}

// The injected comment would pass goxmldsig alone (c14n drops comments);
// with the detection off, the verified element would still hold the whole
// text. This documents why comment_injection is a separate code.
func TestCommentInjectionIsInvisibleToC14N(t *testing.T) {
	p := pki(t)
	doc := replaceOnce(t, signed(t, p.RSALeaf, 10), "Nguyễn Văn A", "Nguyễn<!----> Văn A")
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatal(err)
	}
	vctx := goxmldsig.NewDefaultValidationContext(&goxmldsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{p.RSALeaf.Cert}})
	el, err := vctx.Validate(d.Root())
	if err != nil {
		t.Fatalf("goxmldsig rejected the comment: %v", err)
	}
	if got := el.FindElement("//FullName").Text(); got != "Nguyễn Văn A" {
		t.Errorf("verified text %q", got)
	}
}

func TestRevocationChecker(t *testing.T) {
	p := pki(t)
	doc := signed(t, p.RSALeaf, 10)
	for _, tc := range []struct {
		name    string
		err     error
		code    string
		wantErr bool
	}{
		{"good", nil, "", false},
		{"revoked", trust.ErrRevoked, dsig.CodeRevoked, true},
		{"responder down", errors.New("ocsp: timeout"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := trust.NewStore()
			var seen []*x509.Certificate
			rc := revocationFunc(func(_ context.Context, chain []*x509.Certificate) error { seen = chain; return tc.err })
			if err := s.Add(&trust.Domain{Name: "d", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}, Revocation: rc}); err != nil {
				t.Fatal(err)
			}
			v := &dsig.Verifier{Trust: s}
			_, _, err := v.Verify(context.Background(), doc, "d", edxmlOpts)
			sameAsTree(t, v, doc, "d", edxmlOpts) // the bytes path
			if (err != nil) != tc.wantErr || dsig.CodeOf(err) != tc.code {
				t.Fatalf("got %v", err)
			}
			if len(seen) != 3 || !seen[0].Equal(p.RSALeaf.Cert) {
				t.Errorf("checker saw chain of %d", len(seen))
			}
		})
	}
}

type revocationFunc func(ctx context.Context, chain []*x509.Certificate) error

func (f revocationFunc) CheckRevocation(ctx context.Context, chain []*x509.Certificate, _ time.Time) error {
	return f(ctx, chain)
}

// goxmldsig signs ECDSA as DER (upstream #163); such signatures are accepted
// too, next to the standard r‖s form that Sign and xmlsec1 produce.
func TestECDSADERAccepted(t *testing.T) {
	p := pki(t)
	doc := goxSign(t, edxml("", 100), p.ECLeaf, crypto.SHA256, root)
	rep := mustVerify(t, newVerifier(t), doc, domainRequire)
	if rep.Algorithm != dsig.AlgECDSASHA256 {
		t.Errorf("algorithm %s", rep.Algorithm)
	}
}

func TestAKNLocation(t *testing.T) {
	p := pki(t)
	const akn = `<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0"><act name="luat"><meta>` +
		`<identification source="#qh"/><proprietary source="#hub"/></meta><body><p>Điều 1.</p></body></act></akomaNtoso>`
	loc := dsig.AKNProprietary("#hub")
	out, err := dsig.Sign([]byte(akn), p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t)
	sameAsTree(t, v, out, domainRequire, dsig.Options{Location: loc}) // the bytes path
	if _, _, err := v.Verify(context.Background(), out, domainRequire, dsig.Options{Location: loc}); err != nil {
		t.Fatal(err)
	}
	_, _, err = v.Verify(context.Background(), out, domainRequire, dsig.Options{Location: dsig.AKNProprietary("#other")})
	sameAsTree(t, v, out, domainRequire, dsig.Options{Location: dsig.AKNProprietary("#other")}) // the bytes path
	if dsig.CodeOf(err) != dsig.CodeMisplaced {
		t.Fatalf("other source: %v", err)
	}
}

// Sign refuses to hand out a signature its own verifier (and xmlsec1) would
// refuse: goxmldsig's signing canonicalizer orders xml:lang before xsi:type,
// the c14n specs the other way round.
func TestSignRefusesNonSpecCanonicalForm(t *testing.T) {
	p := pki(t)
	doc := replaceOnce(t, edxml("", 100), "<edXML:Place>",
		`<edXML:Place xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xml:lang="vi" xsi:type="t">`)
	if _, err := dsig.Sign(doc, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("Sign: %v, want a failed self-check", err)
	}
	// The common case still signs.
	if _, err := dsig.Sign(edxml("", 100), p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader}); err != nil {
		t.Fatal(err)
	}
}
