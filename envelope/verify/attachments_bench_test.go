package verify

import (
	"context"
	"fmt"
	"testing"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// BenchmarkVerifyStepWithAttachments is BenchmarkVerifyStep with the
// attachment step on (decoding the attachments again, scanning the PDF for
// signature dictionaries): its cost over BenchmarkVerifyStep is what
// attachment verification adds for an unsigned attachment.
func BenchmarkVerifyStepWithAttachments(b *testing.B) {
	p := pki(b)
	v, err := New(Config{Trust: store(b), Directory: dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}},
		Attachments: AttachmentSignatures{}})
	if err != nil {
		b.Fatal(err)
	}
	base := fixture(b)
	for _, size := range []int{20 << 10, 2 << 20} {
		raw := pad(b, base, size)
		signed, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dKB", len(signed)>>10), func(b *testing.B) {
			b.SetBytes(int64(len(signed)))
			b.ReportAllocs()
			for b.Loop() {
				doc, err := envelope.Parse(signed, envelope.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				rep, err := v.Verify(context.Background(), doc, ChannelAPI)
				if err != nil || len(rep.Attachments) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
