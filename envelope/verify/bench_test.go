package verify

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// BenchmarkVerifyStep measures the accept path's whole verification step
// on signed edXML of about 20 KB and 2 MB: envelope parse, XML-DSig (chain,
// c14n, digest, RSA), re-reading the signed content and the binding.
func BenchmarkVerifyStep(b *testing.B) { benchVerifyStep(b, false) }

// BenchmarkVerifyStepTree is BenchmarkVerifyStep on the tree path
// (Config.TreeVerify).
func BenchmarkVerifyStepTree(b *testing.B) { benchVerifyStep(b, true) }

func benchVerifyStep(b *testing.B, tree bool) {
	p := pki(b)
	v, err := New(Config{Trust: store(b), Directory: dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}}, TreeVerify: tree})
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
				if _, err := v.Verify(context.Background(), doc, ChannelAPI); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pad grows the fixture's base64 attachment (whole 76-column lines of "A",
// i.e. zero bytes, before its content) until the document is about size
// bytes.
func pad(tb testing.TB, doc []byte, size int) []byte {
	tb.Helper()
	j := bytes.Index(doc, []byte("ContentTransferEncoded"))
	if j < 0 {
		tb.Fatal("fixture has no ContentTransferEncoded")
	}
	i := j + bytes.IndexByte(doc[j:], '>') + 1
	n := (size - len(doc)) / 77
	if n <= 0 {
		return doc
	}
	line := append(bytes.Repeat([]byte("A"), 76), '\n')
	var b bytes.Buffer
	b.Write(doc[:i])
	b.Write(bytes.Repeat(line, n))
	b.Write(doc[i:])
	return b.Bytes()
}
