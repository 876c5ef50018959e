package signtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"lienthong/cmd/internal/sample"
	"lienthong/envelope/dsig"
	"lienthong/envelope/verify"
)

// Doc is an unsigned edXML package from → to; n makes its DocumentId unique.
func Doc(from string, to []string, n int) []byte {
	return sample.EdXML(sample.Doc{From: from, To: to, Number: fmt.Sprint(n), Notation: "TEST-KY",
		Subject: fmt.Sprintf("V/v kiểm thử chữ ký số %d (TEST)", n)})
}

// Template is an empty ds:Signature for xmlsec1 --sign.
func Template(c14n, sigMethod string) string {
	return `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:SignedInfo>
          <ds:CanonicalizationMethod Algorithm="` + c14n + `"/>
          <ds:SignatureMethod Algorithm="` + sigMethod + `"/>
          <ds:Reference URI="">
            <ds:Transforms>
              <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
              <ds:Transform Algorithm="` + c14n + `"/>
            </ds:Transforms>
            <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <ds:DigestValue/>
          </ds:Reference>
        </ds:SignedInfo>
        <ds:SignatureValue/>
        <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
      </ds:Signature>
    `
}

const headerEnd = "</edXML:edXMLHeader>"

// XmlsecSign signs doc (edXML) with xmlsec1 into edXMLHeader, as an
// independent implementation would, with c's key and chain.
func (p *PKI) XmlsecSign(bin, dir string, doc []byte, c *Cert, c14n, sigMethod string) ([]byte, error) {
	f, err := p.WriteFiles(dir, c)
	if err != nil {
		return nil, err
	}
	if bytes.Count(doc, []byte(headerEnd)) != 1 {
		return nil, fmt.Errorf("signtest: not a sample edXML")
	}
	tmpl := filepath.Join(dir, "template.xml")
	if err := os.WriteFile(tmpl, bytes.Replace(doc, []byte(headerEnd), []byte(Template(c14n, sigMethod)+headerEnd), 1), 0o600); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "signed.xml")
	keys := f.Key + "," + f.Cert
	if len(p.Chain(c)) > 1 {
		keys += "," + f.Inter
	}
	if b, err := exec.Command(bin, "--sign", "--privkey-pem", keys, "--output", out, tmpl).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("xmlsec1 --sign: %v: %s", err, b)
	}
	return os.ReadFile(out)
}

// XmlsecVerify checks a signed document with xmlsec1 against root (and
// intermediates taken from the document), with explicit trust only.
func XmlsecVerify(bin, rootPEM, file string) error {
	b, err := exec.Command(bin, "--verify", "--trusted-pem", rootPEM, "--enabled-key-data", "x509", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xmlsec1 --verify: %v: %s", err, b)
	}
	return nil
}

// Sign signs doc with the hub's signer (dsig.Sign) and c's chain.
func (p *PKI) Sign(doc []byte, c *Cert) ([]byte, error) {
	return dsig.Sign(doc, c.Key, p.Chain(c), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
}

// Valid is a correctly signed document.
type Valid struct {
	Name      string
	Raw       []byte
	Algorithm string // SignatureMethod
	C14N      string
}

// XmlsecCorpus signs three documents from a to to with xmlsec1: RSA-SHA256
// with exclusive c14n, RSA-SHA256 with c14n 1.0, ECDSA P-256 with SHA-256.
func (p *PKI) XmlsecCorpus(bin, dir, a string, to []string, base int) ([]Valid, error) {
	var out []Valid
	for i, v := range []struct {
		name      string
		c         *Cert
		c14n, alg string
	}{
		{"xmlsec1 RSA-SHA256 exc-c14n", p.Signer, dsig.AlgExcC14N, dsig.AlgRSASHA256},
		{"xmlsec1 RSA-SHA256 c14n 1.0", p.Signer, dsig.AlgC14N10, dsig.AlgRSASHA256},
		{"xmlsec1 ECDSA P-256 SHA-256", p.SignerEC, dsig.AlgExcC14N, dsig.AlgECDSASHA256},
	} {
		d := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		raw, err := p.XmlsecSign(bin, d, Doc(a, to, base+i), v.c, v.c14n, v.alg)
		if err != nil {
			return nil, err
		}
		out = append(out, Valid{Name: v.name, Raw: raw, Algorithm: v.alg, C14N: v.c14n})
	}
	return out, nil
}

// Case is a hostile or tampered document and the code it must be refused with.
type Case struct {
	Name string
	Raw  []byte
	Code string
}

// HugeBytes is the size of the "huge body" case; run the verifier with a
// limit below it (and the other cases fit under 1 MiB).
const HugeBytes = 2 << 20

// Hostile returns the tampered and hostile variants of documents from organ
// a to to (b is another organ, whose key must not sign for a).
func (p *PKI) Hostile(a string, to []string, base int) ([]Case, error) {
	var err error
	sign := func(doc []byte, c *Cert) []byte {
		if err != nil {
			return nil
		}
		var out []byte
		out, err = p.Sign(doc, c)
		return out
	}
	n := base
	doc := func() []byte { n++; return Doc(a, to, n) }
	good := sign(doc(), p.Signer)
	other := sign(doc(), p.SignerEC)
	huge := sign(sample.EdXML(sample.Doc{From: a, To: to, Number: fmt.Sprint(base + 99), Pad: HugeBytes}), p.Signer)
	if err != nil {
		return nil, err
	}
	g := string(good)
	rep := func(s, old, new string) []byte {
		if strings.Count(s, old) != 1 && err == nil {
			err = fmt.Errorf("signtest: want one %q", old)
		}
		return []byte(strings.Replace(s, old, new, 1))
	}
	b64 := func(c *Cert) string { return base64.StdEncoding.EncodeToString(c.Cert.Raw) }
	sigOf := func(s string) string {
		return s[strings.Index(s, "<ds:Signature") : strings.Index(s, "</ds:Signature>")+len("</ds:Signature>")]
	}
	const trace = "</edXML:TraceHeaderList>"
	// The XSW attacker's envelope: unsigned, with the signed original
	// (signature included) hidden in a wrapper of the attachment section.
	env := g[strings.Index(g, "<edXML:edXMLEnvelope"):strings.Index(g, "<AttachmentEncoded>")]
	evil := strings.Replace(string(doc()), "Nguyễn Văn Mẫu", "Kẻ Mạo Danh", 1)

	cases := []Case{
		{"altered text", rep(g, "Nguyễn Văn Mẫu", "Nguyễn Văn Mạo"), dsig.CodeInvalid},
		{"XSW: signed envelope moved into a wrapper, decoy in its place",
			rep(evil, "<AttachmentEncoded>", "<AttachmentEncoded><Wrapper>"+env+"</Wrapper>"), dsig.CodeMisplaced},
		{"XSW: reference to an inner element",
			rep(strings.Replace(g, "<edXML:MessageHeader>", `<edXML:MessageHeader ID="m1">`, 1), `URI=""`, `URI="#m1"`), dsig.CodeNotWholeDoc},
		{"second signature", rep(g, trace, trace+sigOf(string(other))), dsig.CodeMultiple},
		{"swapped certificate in KeyInfo", rep(g, b64(p.Signer), b64(p.Swap)), dsig.CodeInvalid},
		{"expired certificate", sign(doc(), p.Expired), dsig.CodeExpired},
		{"not yet valid certificate", sign(doc(), p.Future), dsig.CodeNotYetValid},
		{"unknown CA", sign(doc(), p.Unknown), dsig.CodeUnknownSigner},
		{"another organ's key", sign(doc(), p.Other), verify.CodeSignerMismatch},
		{"wrong key usage", sign(doc(), p.KeyEnc), dsig.CodeKeyUsage},
		{"RSA-1024 key", sign(doc(), p.Weak), dsig.CodeWeakKey},
		{"SHA-1 digest", rep(g, dsig.AlgDigestSHA256, "http://www.w3.org/2000/09/xmldsig#sha1"), dsig.CodeSHA1},
		{"HMAC signature method", rep(g, dsig.AlgRSASHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"), dsig.CodeHMAC},
		{"comment injection", rep(g, "Nguyễn Văn Mẫu", "Nguyễn<!----> Văn Mẫu"), dsig.CodeCommentInjection},
		{"duplicate id", rep(strings.Replace(strings.Replace(g, "<edXML xmlns=", `<edXML ID="doc1" xmlns=`, 1),
			"<AttachmentEncoded>", `<AttachmentEncoded ID="doc1">`, 1), `URI=""`, `URI="#doc1"`), dsig.CodeDuplicateID},
		{"duplicate attribute", rep(g, `<edXML:edXMLManifest version="1.0">`, `<edXML:edXMLManifest version="1.0" version="2.0">`), dsig.CodeDuplicateAttr},
		{"non-UTF-8", rep(g, "Hà Nội", "H\xe0 N\xf4i"), dsig.CodeBadEncoding},
		{"deep nesting", rep(g, "<AttachmentEncoded>", "<AttachmentEncoded>"+strings.Repeat("<d>", 300)+strings.Repeat("</d>", 300)), dsig.CodeTooDeep},
		{"huge body", huge, "too_large"},
		{"unsigned", doc(), dsig.CodeMissing},
		{"placeholder signature only", rep(string(doc()), headerEnd, placeholder+headerEnd), dsig.CodePlaceholder},
		{"DOCTYPE", rep(g, "?>\n<edXML", "?>\n<!DOCTYPE edXML>\n<edXML"), "not_xml"},
	}
	if err != nil {
		return nil, err
	}
	return cases, nil
}

// placeholder is the VNPT-shaped Signature outside the XML-DSig namespace.
const placeholder = `<Signature>
        <SignedInfo><SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/></SignedInfo>
        <SignatureValue>GbVb8n9AAAA</SignatureValue>
      </Signature>
    `
