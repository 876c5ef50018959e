package dsig_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// The test PKI is expensive (RSA keys), immutable, and shared by every test
// of the binary; it is built around the real clock so that xmlsec1 (which
// uses the real clock) agrees with the verifier.
var testPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.New(time.Now()) })

func pki(tb testing.TB) *testpki.PKI {
	tb.Helper()
	p, err := testPKI()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

const (
	domainRequire = "national"
	domainRecord  = "axis"
)

// newVerifier trusts pki's root in two domains, one per policy.
func newVerifier(tb testing.TB) *dsig.Verifier {
	tb.Helper()
	p := pki(tb)
	s := trust.NewStore()
	for name, pol := range map[string]trust.Policy{domainRequire: trust.PolicyRequire, domainRecord: trust.PolicyRecord} {
		if err := s.Add(&trust.Domain{Name: name, Policy: pol, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
			tb.Fatal(err)
		}
	}
	return &dsig.Verifier{Trust: s, Now: time.Now}
}

var edxmlOpts = dsig.Options{Location: dsig.EdXMLHeader}

// edxml builds a synthetic edXML document package (edxml.md §4.1) with
// headerTail appended at the end of edXMLHeader (a signature template or a
// placeholder) and an attachment of about attach bytes of base64.
func edxml(headerTail string, attach int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName>
        </edXML:From>
        <edXML:To>
          <edXML:OrganId>000.00.00.H01</edXML:OrganId>
          <edXML:OrganName>Văn phòng Quốc hội</edXML:OrganName>
        </edXML:To>
        <edXML:DocumentId>000.00.00.G22,2025/03/14,7816/VPCP-TTĐT</edXML:DocumentId>
        <edXML:Code>
          <edXML:CodeNumber>7816</edXML:CodeNumber>
          <edXML:CodeNotation>VPCP-TTĐT</edXML:CodeNotation>
        </edXML:Code>
        <edXML:PromulgationInfo>
          <edXML:Place>Hà Nội</edXML:Place>
          <edXML:PromulgationDate>2025/03/14</edXML:PromulgationDate>
        </edXML:PromulgationInfo>
        <edXML:Subject>V/v triển khai liên thông văn bản điện tử &amp; ký số</edXML:Subject>
        <edXML:SignerInfo>
          <edXML:Competence>TL. BỘ TRƯỞNG</edXML:Competence>
          <edXML:FullName>Nguyễn Văn A</edXML:FullName>
        </edXML:SignerInfo>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader>
          <edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:Timestamp>2025/03/14 09:30:00</edXML:Timestamp>
        </edXML:TraceHeader>
        <edXML:Bussiness>
          <edXML:BussinessDocType>0</edXML:BussinessDocType>
          <edXML:BussinessDocReason>Văn bản điện tử mới</edXML:BussinessDocReason>
        </edXML:Bussiness>
      </edXML:TraceHeaderList>`)
	b.WriteString(headerTail)
	b.WriteString(`
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference>
          <edXML:ContentId>cid:209</edXML:ContentId>
          <edXML:ContentType>application/pdf</edXML:ContentType>
          <edXML:AttachmentName>7816_VPCP.pdf</edXML:AttachmentName>
        </edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:209</ContentId>
      <AttachmentName>7816_VPCP.pdf</AttachmentName>
      <ContentType>application/pdf</ContentType>
      <edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">`)
	b.WriteString(attachment(attach))
	b.WriteString(`</edXML:ContentTransferEncoded>
    </Attachment>
  </AttachmentEncoded>
</edXML>
`)
	return b.Bytes()
}

// attachment returns about n bytes of base64 (deterministic), in 76-column
// lines, starting like a PDF.
func attachment(n int) string {
	raw := make([]byte, n*3/4)
	copy(raw, "%PDF-1.7\n")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 9; i < len(raw); i++ {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

// placeholderSig is the VNPT-shaped, non-XML-DSig Signature (edxml.md §6).
const placeholderSig = `
      <Signature>
        <SignedInfo>
          <CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
          <SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>
          <Reference URI=""><DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue>AAAA</DigestValue></Reference>
        </SignedInfo>
        <SignatureValue>GbVb8n9AAAA</SignatureValue>
        <KeyInfo><X509Data><X509Certificate>MIIFqTCCBJG</X509Certificate></X509Data></KeyInfo>
      </Signature>`

// signed signs an edXML document of attach bytes with c into edXMLHeader.
func signed(tb testing.TB, c *testpki.Cert, attach int) []byte {
	tb.Helper()
	out, err := dsig.Sign(edxml("", attach), c.Key, pki(tb).Chain(c), dsig.SignOptions{Location: dsig.EdXMLHeader})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustVerify(tb testing.TB, v *dsig.Verifier, raw []byte, domain string) *dsig.Report {
	tb.Helper()
	rep, el, err := v.Verify(context.Background(), raw, domain, edxmlOpts)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	if rep.Outcome != dsig.OutcomeValid || el == nil {
		tb.Fatalf("Verify: outcome %q, element %v", rep.Outcome, el)
	}
	return rep
}

// replaceOnce replaces the only occurrence of old in s.
func replaceOnce(tb testing.TB, s []byte, old, new string) []byte {
	tb.Helper()
	if n := bytes.Count(s, []byte(old)); n != 1 {
		tb.Fatalf("want one %q, found %d", old, n)
	}
	return bytes.Replace(s, []byte(old), []byte(new), 1)
}

// sigBlock returns the ds:Signature element's bytes in a signed document.
func sigBlock(tb testing.TB, doc []byte) string {
	tb.Helper()
	s := string(doc)
	i := strings.Index(s, "<ds:Signature")
	j := strings.Index(s, "</ds:Signature>")
	if i < 0 || j < 0 {
		tb.Fatalf("no ds:Signature in %.200s", s)
	}
	return s[i : j+len("</ds:Signature>")]
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

func fmtCodes(err error) string { return fmt.Sprintf("%s (%v)", dsig.CodeOf(err), err) }
