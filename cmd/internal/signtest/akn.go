package signtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// AKNSource is the proprietary/@source under which the author of an Akoma
// Ntoso test document signs it.
const AKNSource = "#tacgia"

// AKNText is the text of the body of AKNDoc, for tampering.
const AKNText = "Điều 1. Luật thử nghiệm chữ ký (TEST)."

// AKNDoc is a small Akoma Ntoso act (n makes it unique) with an empty
// meta/proprietary[@source=AKNSource] for its author's signature, sig inside
// it (an xmlsec1 template, or "").
func AKNDoc(n int, sig string) []byte {
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0">
  <act name="act">
    <meta>
      <identification source="%[1]s">
        <FRBRWork><FRBRthis value="/akn/vn/act/2026/%[2]d/!main"/><FRBRuri value="/akn/vn/act/2026/%[2]d"/><FRBRdate date="2026-03-02" name="Generation"/><FRBRauthor href="%[1]s"/><FRBRcountry value="vn"/></FRBRWork>
      </identification>
      <proprietary source="%[1]s">%[3]s</proprietary>
    </meta>
    <body><p>%[4]s</p></body>
  </act>
</akomaNtoso>
`, AKNSource, n, sig, AKNText))
}

// SignAKN signs an Akoma Ntoso document with the hub's signer at
// meta/proprietary[@source=AKNSource].
func (p *PKI) SignAKN(akn []byte, c *Cert) ([]byte, error) {
	return dsig.Sign(akn, c.Key, p.Chain(c), dsig.SignOptions{Location: dsig.AKNProprietary(AKNSource)})
}

// XmlsecSignAKN signs AKNDoc(n) with xmlsec1 (exclusive c14n, sigMethod),
// the independent signer of an author.
func (p *PKI) XmlsecSignAKN(bin, dir string, n int, c *Cert, sigMethod string) ([]byte, error) {
	f, err := p.WriteFiles(dir, c)
	if err != nil {
		return nil, err
	}
	tmpl := filepath.Join(dir, "akn-template.xml")
	if err := os.WriteFile(tmpl, AKNDoc(n, Template(dsig.AlgExcC14N, sigMethod)), 0o600); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "akn-signed.xml")
	keys := f.Key + "," + f.Cert
	if len(p.Chain(c)) > 1 {
		keys += "," + f.Inter
	}
	if b, err := exec.Command(bin, "--sign", "--privkey-pem", keys, "--output", out, tmpl).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("xmlsec1 --sign: %v: %s", err, b)
	}
	return os.ReadFile(out)
}

// HubAKN wraps akn inline in an unsigned hub envelope from → to (n makes
// its DocumentId unique).
func HubAKN(from string, to []string, n int, akn []byte) ([]byte, error) {
	h := envelope.HubHeader{From: envelope.Organ{Code: from}, DocumentID: fmt.Sprintf("%s,2026/03/02,%d/TEST-AKN", from, n),
		Subject: fmt.Sprintf("Văn bản AKN ký hai lớp %d (TEST)", n), Created: time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)}
	for _, o := range to {
		h.To = append(h.To, envelope.Organ{Code: o})
	}
	return envelope.BuildHubEnvelope(h, "application/akn+xml", akn, true)
}

// SignHub signs a hub envelope with the hub's signer, keeping the signature
// of its payload (which the envelope signature then covers).
func (p *PKI) SignHub(env []byte, c *Cert) ([]byte, error) {
	return dsig.Sign(env, c.Key, p.Chain(c), dsig.SignOptions{Location: dsig.RootChild, KeepSignatures: true})
}

// SignedHubAKN is a hub envelope from a (signed by a's Signer) carrying an
// AKN act signed by author.
func (p *PKI) SignedHubAKN(a string, to []string, n int, author *Cert) ([]byte, error) {
	akn, err := p.SignAKN(AKNDoc(n, ""), author)
	if err != nil {
		return nil, err
	}
	env, err := HubAKN(a, to, n, akn)
	if err != nil {
		return nil, err
	}
	return p.SignHub(env, p.Signer)
}

// AKNHostile returns tampered variants of a hub envelope from a carrying a
// signed Akoma Ntoso payload, each with the code it must be refused with.
// The author is organ B's signer (Other): the payload's signer is reported,
// not bound to an organ.
func (p *PKI) AKNHostile(a string, to []string, base int) ([]Case, error) {
	var err error
	must := func(b []byte, e error) []byte {
		if err == nil {
			err = e
		}
		return b
	}
	wrapSign := func(n int, akn []byte, c *Cert) []byte {
		env := must(HubAKN(a, to, n, akn))
		if err != nil {
			return nil
		}
		return must(p.SignHub(env, c))
	}
	n := base
	next := func() int { n++; return n }

	k := next()
	akn := must(p.SignAKN(AKNDoc(k, ""), p.Other))
	good := wrapSign(k, akn, p.Signer)
	if err != nil {
		return nil, err
	}
	sig := sigOf(akn)
	out := []Case{{Name: "AKN payload text altered after both signatures (the envelope's code is reported)",
		Raw: bytes.Replace(good, []byte(AKNText), []byte("Điều 1. Luật đã bị sửa (TEST)."), 1), Code: dsig.CodeDigestMismatch}}

	k = next()
	a2 := must(p.SignAKN(AKNDoc(k, ""), p.Other))
	s2 := sigOf(a2)
	moved := bytes.Replace(bytes.Replace(a2, s2, nil, 1), []byte("</p></body>"), append(append([]byte("</p>"), s2...), "</body>"...), 1)
	out = append(out, Case{Name: "AKN payload signature moved out of meta/proprietary", Raw: wrapSign(k, moved, p.Signer), Code: dsig.CodeMisplaced})

	k = next()
	a3 := must(p.SignAKN(AKNDoc(k, ""), p.Other))
	third := bytes.Replace(a3, []byte("</meta>"), append(append([]byte(`<proprietary source="#khac">`), sigOf(a3)...), "</proprietary></meta>"...), 1)
	out = append(out, Case{Name: "a third signature beside the envelope's and the AKN payload's", Raw: wrapSign(k, third, p.Signer), Code: dsig.CodeMultiple})

	k = next()
	out = append(out, Case{Name: "AKN payload signed by an unknown CA",
		Raw: wrapSign(k, must(p.SignAKN(AKNDoc(k, ""), p.Unknown)), p.Signer), Code: dsig.CodeUnknownSigner})

	k = next()
	a5 := must(p.SignAKN(AKNDoc(k, ""), p.Other))
	swapped := bytes.Replace(a5, sigOf(a5), sig, 1) // another document's signature
	out = append(out, Case{Name: "envelope signed over an AKN payload whose signature was swapped", Raw: wrapSign(k, swapped, p.Signer), Code: dsig.CodeDigestMismatch})

	k = next()
	out = append(out, Case{Name: "signed AKN payload in an unsigned envelope",
		Raw: must(HubAKN(a, to, k, must(p.SignAKN(AKNDoc(k, ""), p.Other)))), Code: dsig.CodeMissing})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sigOf returns the bytes of the first ds:Signature element of doc.
func sigOf(doc []byte) []byte {
	i := bytes.Index(doc, []byte("<ds:Signature"))
	j := bytes.Index(doc, []byte("</ds:Signature>"))
	if i < 0 || j < i {
		return nil
	}
	return doc[i : j+len("</ds:Signature>")]
}
