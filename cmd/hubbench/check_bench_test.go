package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"syscall"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

// BenchmarkIntakeCheck is the CPU the accept path spends on one 20 KB
// hubbench document before the ledger (routing/intake: parse, the
// verification step as hubd configures it, the SHA-256 of the body):
// "single-pass" is the route intake takes (envelope.ParseRecorded, the
// verifier replays Parse's tokens), "two-pass" the route before it
// (envelope.Parse, then dsig.VerifyBytes tokenizes the body again).
func BenchmarkIntakeCheck(b *testing.B) {
	now := time.Now()
	p, err := testpki.New(now)
	if err != nil {
		b.Fatal(err)
	}
	const from, to = "000.00.00.A01", "000.00.00.B02"
	store := trust.NewStore()
	if err := store.Add(&trust.Domain{Name: verify.DomainAgency, Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}); err != nil {
		b.Fatal(err)
	}
	dir := verify.DirectoryFunc(func(_ context.Context, organ string) (verify.Binding, error) {
		return verify.Binding{Code: organ, CertFingerprints: []string{verify.Fingerprint(p.RSALeaf.Cert)}}, nil
	})
	lim := envelope.Limits{MaxBytes: 32 << 20}
	v, err := verify.New(verify.Config{Trust: store, Directory: dir, Limits: lim,
		Attachments: verify.AttachmentSignatures{Envelope: lim}})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := sample.EdXMLSigned(sample.Doc{From: from, To: []string{to, "000.00.00.C03"}, Number: "1000001",
		Notation: "BENCH", Subject: "Văn bản đo tải 1", Pad: 20 << 10})
	if err != nil {
		b.Fatal(err)
	}
	signed, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, route := range []struct {
		name  string
		parse func([]byte, envelope.Limits) (*envelope.Document, error)
	}{{"single-pass", envelope.ParseRecorded}, {"two-pass", envelope.Parse}} {
		b.Run(route.name, func(b *testing.B) {
			b.SetBytes(int64(len(signed)))
			b.ReportAllocs()
			cpu0 := threadCPU()
			for b.Loop() {
				doc, err := route.parse(signed, lim)
				if err != nil {
					b.Fatal(err)
				}
				rep, err := v.Check(context.Background(), doc, verify.ChannelAPI)
				if err != nil {
					b.Fatal(err)
				}
				if rep.(*verify.Report).Outcome != verify.OutcomeValid {
					b.Fatalf("report %+v", rep)
				}
				sha256.Sum256(signed)
			}
			// CPU time of the process per document: unlike ns/op, not
			// inflated by other processes sharing the cores.
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(signed)), "doc-bytes")
		})
	}
}

// threadCPU is the user and system CPU time the process has used, in ns.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
