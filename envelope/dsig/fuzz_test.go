package dsig_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// FuzzVerify: Verify never panics, and a successful verification returns
// the root of the document (the whole document is what was signed).
func FuzzVerify(f *testing.F) {
	// An all-ECDSA PKI: RSA key generation is very slow under the fuzzer's
	// coverage instrumentation, and every worker process builds its own.
	p, err := testpki.NewEC(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	s := trust.NewStore()
	if err := s.Add(&trust.Domain{Name: domainRequire, Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
		f.Fatal(err)
	}
	v := &dsig.Verifier{Trust: s, Now: time.Now}
	sign := func(attach int) []byte {
		out, err := dsig.Sign(edxml("", attach), p.ECLeaf.Key, p.Chain(p.ECLeaf), dsig.SignOptions{Location: dsig.EdXMLHeader})
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	good, goodEC := sign(200), sign(50)
	f.Add(good)
	f.Add(goodEC)
	f.Add(edxml(placeholderSig, 10))
	f.Add(edxml("", 10))
	f.Add([]byte(strings.Replace(string(good), "Nguyễn Văn A", "Nguyễn<!----> Văn A", 1)))
	f.Add([]byte(strings.Replace(string(good), "<AttachmentEncoded>", "<AttachmentEncoded>"+sigBlock(f, goodEC), 1)))
	f.Add([]byte(strings.Replace(string(goodEC), `URI=""`, `URI="#x"`, 1)))
	f.Add([]byte(`<a><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></a>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, el, err := v.Verify(context.Background(), raw, domainRequire, edxmlOpts)
		sameAsTree(t, v, raw, domainRequire, edxmlOpts) // the bytes path
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
		d := etree.NewDocument()
		if err := d.ReadFromBytes(raw); err != nil {
			t.Fatalf("verified input does not parse: %v", err)
		}
		r := d.Root()
		if el.Tag != r.Tag || el.NamespaceURI() != r.NamespaceURI() || len(el.ChildElements()) != len(r.ChildElements()) {
			t.Fatalf("verified element <%s> (%d children) is not the root <%s> (%d children)",
				el.Tag, len(el.ChildElements()), r.Tag, len(r.ChildElements()))
		}
		if el.FindElement("//Signature[namespace-uri()='"+dsig.NamespaceDSig+"']") != nil {
			t.Fatal("verified element still carries the signature")
		}
	})
}
