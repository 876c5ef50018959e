package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"os"
	"strconv"
	"syscall"
	"testing"
	"testing/cryptotest"
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
// intakeCheck is the verifier hubd configures (directory bindings,
// attachment signatures) and a 20 KB hubbench document signed for it.
func intakeCheck(b testing.TB, now time.Time) (*verify.Verifier, []byte, envelope.Limits) {
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
		Notation: "BENCH", Subject: "Văn bản đo tải 1", Pad: 20 << 10, Date: now})
	if err != nil {
		b.Fatal(err)
	}
	signed, err := dsig.Sign(raw, p.RSALeaf.Key, p.Chain(p.RSALeaf), dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		b.Fatal(err)
	}
	return v, signed, lim
}

func BenchmarkIntakeCheck(b *testing.B) {
	v, signed, lim := intakeCheck(b, time.Now())
	for _, route := range []struct {
		name  string
		parse func([]byte, envelope.Limits) (*envelope.Document, error)
	}{{"single-pass", envelope.ParseRecorded}, {"two-pass", envelope.Parse}} {
		b.Run(route.name, func(b *testing.B) {
			b.SetBytes(int64(len(signed)))
			b.ReportAllocs()
			cpu0 := threadCPU()
			for b.Loop() {
				checkOnce(b, v, route.parse, signed, lim)
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

// checkOnce is the accept path's CPU work on one document before the
// ledger: parse, verification step, SHA-256 of the body.
func checkOnce(tb testing.TB, v *verify.Verifier, parse func([]byte, envelope.Limits) (*envelope.Document, error), raw []byte, lim envelope.Limits) {
	doc, err := parse(raw, lim)
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := v.Check(context.Background(), doc, verify.ChannelAPI)
	if err != nil {
		tb.Fatal(err)
	}
	if rep.(*verify.Report).Outcome != verify.OutcomeValid {
		tb.Fatalf("report %+v", rep)
	}
	sha256.Sum256(raw)
}

// TestIntakeCheckInstructions is a harness for a load-independent count:
// with INTAKE_CHECK_N set it runs checkOnce that many times on the
// single-pass route (INTAKE_CHECK_ROUTE=two: the two-pass route), with
// crypto/rand made deterministic so that the setup (keys, signature) is the
// same work every run. The instructions of a run under valgrind
// (callgrind's "Collected") with N and with 0, divided by N, are the
// instructions per document:
//
//	go test -c -o bin/hubbench.test ./cmd/hubbench
//	INTAKE_CHECK_N=300 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
//	  --callgrind-out-file=/dev/null bin/hubbench.test -test.run TestIntakeCheckInstructions -test.cpu 1
//
// Without INTAKE_CHECK_N it is skipped.
func TestIntakeCheckInstructions(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("INTAKE_CHECK_N"))
	if err != nil {
		t.Skip("INTAKE_CHECK_N not set")
	}
	cryptotest.SetGlobalRandom(t, 1)
	v, signed, lim := intakeCheck(t, time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	parse := envelope.ParseRecorded
	if os.Getenv("INTAKE_CHECK_ROUTE") == "two" {
		parse = envelope.Parse
	}
	for range n {
		checkOnce(t, v, parse, signed, lim)
	}
}
