package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

const (
	orgFrom = "000.00.00.C01"
	orgTo   = "000.00.00.C02"
)

var testPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.New(time.Now()) })

func pki(tb testing.TB) *testpki.PKI {
	tb.Helper()
	p, err := testPKI()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func fixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../testdata/edxml/new-1-recipient-pdf.edxml")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func signWith(tb testing.TB, raw []byte, c *testpki.Cert) *envelope.Document {
	tb.Helper()
	out, err := dsig.Sign(raw, c.Key, pki(tb).Chain(c), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := envelope.Parse(out, envelope.Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

func store(tb testing.TB) *trust.Store {
	tb.Helper()
	s := trust.NewStore()
	for name, pol := range map[string]trust.Policy{DomainAgency: trust.PolicyRequire, DomainAxis: trust.PolicyRecord, DomainPartner: trust.PolicyRequire} {
		if err := s.Add(&trust.Domain{Name: name, Policy: pol, Roots: []*x509.Certificate{pki(tb).Root.Cert}}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

type dirMap map[string]Binding

func (d dirMap) Binding(_ context.Context, code string) (Binding, error) {
	b, ok := d[code]
	if !ok {
		return Binding{}, errors.New("unknown organ")
	}
	return b, nil
}

func TestDomainBindingAndPolicy(t *testing.T) {
	p := pki(t)
	good := signWith(t, fixture(t), p.RSALeaf)
	raw := fixture(t) // carries a VNPT placeholder Signature
	i, j := strings.Index(string(raw), "<Signature>"), strings.Index(string(raw), "</Signature>")+len("</Signature>")
	unsigned, err := envelope.Parse([]byte(string(raw[:i])+string(raw[j:])), envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	placeholder, err := envelope.Parse(raw, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bound := Binding{Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}, Delivery: "push"}
	other := Binding{Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf2.Cert)}, Delivery: "push"}
	unboundB := Binding{Code: orgFrom, Delivery: "push"}
	partner := Binding{Code: orgFrom, CertFingerprints: bound.CertFingerprints, Delivery: ChannelPartner}

	for _, tc := range []struct {
		name    string
		doc     *envelope.Document
		channel string
		dir     Directory
		outcome string
		code    string
		domain  string
		binding string
	}{
		{"api, bound by fingerprint", good, ChannelAPI, dirMap{orgFrom: bound}, OutcomeValid, "", DomainAgency, "cert_fingerprint"},
		{"api, bound to another certificate", good, ChannelAPI, dirMap{orgFrom: other}, OutcomeInvalid, CodeSignerMismatch, DomainAgency, ""},
		{"api, no binding at all (require)", good, ChannelAPI, dirMap{orgFrom: unboundB}, OutcomeInvalid, CodeSignerNotBound, DomainAgency, ""},
		{"axis, no binding at all (record)", good, ChannelAxis, dirMap{orgFrom: unboundB}, OutcomeValid, "", DomainAxis, ""},
		{"api, unsigned", unsigned, ChannelAPI, dirMap{orgFrom: bound}, OutcomeInvalid, dsig.CodeMissing, DomainAgency, ""},
		{"axis, unsigned", unsigned, ChannelAxis, dirMap{orgFrom: bound}, OutcomeAbsent, "", DomainAxis, ""},
		{"axis, VNPT placeholder", placeholder, ChannelAxis, dirMap{orgFrom: bound}, OutcomePlaceholder, "", DomainAxis, ""},
		{"api, VNPT placeholder", placeholder, ChannelAPI, dirMap{orgFrom: bound}, OutcomeInvalid, dsig.CodePlaceholder, DomainAgency, ""},
		{"partner organ through the API uses the partner domain", good, ChannelAPI, dirMap{orgFrom: partner}, OutcomeValid, "", DomainPartner, "cert_fingerprint"},
		{"unknown channel", good, "carrier-pigeon", dirMap{orgFrom: bound}, OutcomeInvalid, CodeUntrustedChannel, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(Config{Trust: store(t), Directory: tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := v.Verify(context.Background(), tc.doc, tc.channel)
			if rep == nil {
				t.Fatalf("no report: %v", err)
			}
			if dsig.CodeOf(err) != tc.code || rep.Outcome != tc.outcome || rep.Code != tc.code || rep.Domain != tc.domain {
				t.Fatalf("err %v, report %s/%s in %q; want %s/%s in %q", err, rep.Outcome, rep.Code, rep.Domain, tc.outcome, tc.code, tc.domain)
			}
			if tc.binding != "" && (len(rep.Signatures) != 1 || rep.Signatures[0].Binding != tc.binding || rep.Signatures[0].Organ != orgFrom) {
				t.Fatalf("signatures %+v", rep.Signatures)
			}
			if rep.Signatures == nil || rep.Attachments == nil {
				t.Error("signatures and attachments must be lists, never null")
			}
			// The streaming path (large bodies, stream.go) decides the same.
			srep, serr := streamVerify(t, v, tc.doc, tc.channel)
			if dsig.CodeOf(serr) != tc.code || srep.Outcome != rep.Outcome || srep.Code != rep.Code || srep.Domain != rep.Domain ||
				len(srep.Signatures) != len(rep.Signatures) {
				t.Fatalf("streaming: err %v, report %+v; in memory %+v", serr, srep, rep)
			}
		})
	}
}

// The metadata the hub uses must be the metadata the signature covers: a
// document whose received tree says something else than its verified
// element is refused.
func TestSignedMetadataMustMatch(t *testing.T) {
	p := pki(t)
	good := signWith(t, fixture(t), p.RSALeaf)
	el := func(raw []byte) *etree.Element {
		d := etree.NewDocument()
		if err := d.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		return d.Root()
	}
	same, err := signedDocument(el(good.Raw), envelope.Limits{}, good)
	if err != nil {
		t.Fatal(err)
	}
	if d := metadataDiff(good, same); d != "" {
		t.Fatalf("the document differs from itself in %s", d)
	}
	for _, tc := range []struct{ old, new, field string }{
		{"<edXML:OrganId>000.00.00.C02</edXML:OrganId>", "<edXML:OrganId>000.00.00.C03</edXML:OrganId>", "To"},
		{"V/v thử nghiệm trao đổi", "V/v giả mạo trao đổi", "Subject"},
		// The attachment text is compared, not assumed: other base64 in the
		// signed content than in the received tree is other content.
		{">JVBERi0", ">JVBERi1", "attachments"},
	} {
		other, err := signedDocument(el([]byte(strings.Replace(string(good.Raw), tc.old, tc.new, 1))), envelope.Limits{}, good)
		if err != nil {
			t.Fatal(err)
		}
		if d := metadataDiff(good, other); d != tc.field {
			t.Errorf("%s changed: diff %q", tc.field, d)
		}
	}
}

type attFunc func() ([]Attachment, error)

func (f attFunc) VerifyAttachments(context.Context, *envelope.Document, *trust.Domain, time.Time) ([]Attachment, error) {
	return f()
}

type goodWithEvidence struct{}

func (goodWithEvidence) CheckRevocation(context.Context, []*x509.Certificate, time.Time) error {
	return nil
}
func (goodWithEvidence) RevocationEvidence(_ context.Context, chain []*x509.Certificate, _ time.Time) ([]Evidence, error) {
	return []Evidence{{Kind: "crl", Source: "file:test.crl", DER: []byte{0x30}}}, nil
}

// The extension points the attachment and revocation verifiers plug into:
// attachment verdicts land in the report and an invalid one refuses the
// document; a checker's evidence is kept with the signature.
func TestAttachmentAndRevocationHooks(t *testing.T) {
	p := pki(t)
	good := signWith(t, fixture(t), p.RSALeaf)
	dir := dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}}
	s := store(t)
	d, _ := s.Domain(DomainAgency)
	cp := *d
	cp.Revocation = goodWithEvidence{}
	if err := s.Add(&cp); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		atts []Attachment
		code string
	}{
		{"valid attachment", []Attachment{{ContentID: "1", Verdict: OutcomeValid}}, ""},
		{"invalid attachment", []Attachment{{ContentID: "1", Name: "a.pdf", Verdict: OutcomeInvalid, Code: "cms_signature_invalid"}}, "cms_signature_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(Config{Trust: s, Directory: dir, Attachments: attFunc(func() ([]Attachment, error) { return tc.atts, nil })})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := v.Verify(context.Background(), good, ChannelAPI)
			if dsig.CodeOf(err) != tc.code || rep.Code != tc.code || len(rep.Attachments) != len(tc.atts) {
				t.Fatalf("err %v, report %+v", err, rep)
			}
			r := rep.Signatures[0].Revocation
			if r.Status != "good" || len(r.Evidence) != 1 || r.Evidence[0].Kind != "crl" {
				t.Fatalf("revocation %+v", r)
			}
		})
	}
}
