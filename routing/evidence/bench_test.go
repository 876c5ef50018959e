package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"lienthong/routing/evidence/logverify"
)

// BenchmarkAppend measures the sequencer: b.N committed events become
// leaves, in batches of 1000 (one transaction each).
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	e.drain(b)
	seq, err := NewSequencer(e.pool, SequencerConfig{BatchSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	e.addEvents(b, doc, b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	total := 0
	for total < b.N {
		n, err := seq.Step(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("stalled at %d of %d", total, b.N)
		}
		total += n
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "leaves/s")
}

// BenchmarkCheckpoint measures one checkpoint: read the tree head, sign the
// note (Ed25519) and store it. The tree grows by one leaf between
// iterations, outside the timer.
func BenchmarkCheckpoint(b *testing.B) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a/>")
	e.drain(b)
	c, _ := e.checkpointer(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e.addEvents(b, doc, 1)
		e.drain(b)
		e.clk.add(time.Second)
		b.StartTimer()
		if ok, err := c.SignIfDue(ctx); err != nil || !ok {
			b.Fatalf("SignIfDue: %v %v", ok, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
}

// benchBundleEnv makes a log with one document and 20 events on it, signed
// by a key bound to a self-signed evidence certificate.
func benchBundleEnv(b *testing.B) (*env, string, *x509.Certificate) {
	e := newEnv(b)
	doc := e.accept(b, "A", "<a>"+strings.Repeat("x", 64<<10)+"</a>")
	e.addEvents(b, doc, 20)
	e.drain(b)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: origin},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	skey, _, err := logverify.NoteKeys(origin, key)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: skey, Now: e.clk.now})
	if err != nil {
		b.Fatal(err)
	}
	e.sign(b, c)
	return e, doc, cert
}

// BenchmarkBundle measures building a document's evidence bundle (21
// receipts and proofs, 64 KiB document) from PostgreSQL.
func BenchmarkBundle(b *testing.B) {
	e, doc, _ := benchBundleEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := e.log.Bundle(ctx, doc, BundleConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bundles/s")
}

// BenchmarkVerifyBundle measures the auditor's offline check of that bundle.
func BenchmarkVerifyBundle(b *testing.B) {
	e, doc, cert := benchBundleEnv(b)
	zb, err := e.log.Bundle(context.Background(), doc, BundleConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := logverify.VerifyBundle(zb, cert, logverify.BundleOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
