package dsig

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/beevik/etree"
	goxmldsig "github.com/russellhaering/goxmldsig"

	"lienthong/envelope/testpki"
)

// validateAt must agree with goxmldsig wherever goxmldsig can choose the
// signature (a document with one): same verdict, same verified bytes.
func TestValidateAtAgreesWithGoxmldsig(t *testing.T) {
	p, err := testpki.NewEC(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<lt:Envelope xmlns:lt="urn:lienthong:envelope:1" version="1"><lt:Header a="1&#9;2">
  <lt:Subject>Văn bản &amp; ký số</lt:Subject></lt:Header>
  <lt:Payload contentType="application/akn+xml"><x:doc xmlns:x="urn:x" xmlns:unused="urn:u"><x:p>văn bản</x:p></x:doc></lt:Payload>
</lt:Envelope>`
	signed, err := Sign([]byte(doc), p.ECLeaf.Key, p.Chain(p.ECLeaf), SignOptions{Location: RootChild})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"signed", signed, true},
		{"altered text", bytes.Replace(signed, []byte("văn bản</x:p>"), []byte("văn bản.</x:p>"), 1), false},
		{"altered attribute", bytes.Replace(signed, []byte(`a="1`), []byte(`a="3`), 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			root := d.Root()
			var sig *etree.Element
			walk(root, func(el *etree.Element) bool {
				if el.Tag == "Signature" {
					sig = el
				}
				return sig == nil
			})
			if ve := normaliseSignatureValue(sig, p.ECLeaf.Cert); ve != nil {
				t.Fatal(ve)
			}
			vctx := goxmldsig.NewDefaultValidationContext(&goxmldsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{p.ECLeaf.Cert}})
			vctx.Clock = goxmldsig.NewFakeClockAt(time.Now())
			want, werr := vctx.Validate(root)
			got, gerr := validateAt(root, sig, p.ECLeaf.Cert, goxmldsig.DefaultIdAttr)
			if (werr == nil) != tc.ok || (gerr == nil) != tc.ok {
				t.Fatalf("goxmldsig: %v, validateAt: %v, want ok=%v", werr, gerr, tc.ok)
			}
			if !tc.ok {
				if invalidError(werr).Code != invalidError(gerr).Code {
					t.Errorf("codes differ: %v / %v", werr, gerr)
				}
				return
			}
			wb, gb := canon(t, want), canon(t, got)
			if !bytes.Equal(wb, gb) {
				t.Errorf("verified content differs:\n%s\n%s", wb, gb)
			}
		})
	}
}

func canon(t *testing.T, el *etree.Element) []byte {
	t.Helper()
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
