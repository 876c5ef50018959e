package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"lienthong/routing/pgtest"
)

func benchLedger(b *testing.B) *Ledger {
	b.Helper()
	if testing.Short() {
		b.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	l := New(pool, Config{})
	for _, o := range []Organ{{Code: "000.00.00.C01", Name: "A", Channel: "push", Endpoint: "http://x"},
		{Code: "000.00.00.C02", Name: "B", Channel: "pull"}} {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

func benchDoc(sender, ref, body string, f *Flow) NewDocument {
	sum := sha256.Sum256([]byte(body))
	to := "000.00.00.C02"
	if sender == to {
		to = "000.00.00.C01"
	}
	return NewDocument{Sender: sender, DocRef: ref, Format: "edxml", Recipients: []string{to}, Raw: []byte(body),
		SHA256: sum[:], Flow: f}
}

// The cost of the business flows on the accept transaction: a plain accept,
// an accept with the flow planner (lock + repeat check), and a status 01
// correlated with its original (lookup, state lock, transition, event).
func BenchmarkAcceptFlows(b *testing.B) {
	ctx := context.Background()
	b.Run("plain", func(b *testing.B) {
		l := benchLedger(b)
		for i := 0; b.Loop(); i++ {
			if _, err := l.Accept(ctx, benchDoc("000.00.00.C01", fmt.Sprint("P", i), fmt.Sprint("<p", i, "/>"), nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-with-flow", func(b *testing.B) {
		l := benchLedger(b)
		for i := 0; b.Loop(); i++ {
			if _, err := l.Accept(ctx, benchDoc("000.00.00.C01", fmt.Sprint("N", i), fmt.Sprint("<n", i, "/>"),
				&Flow{Kind: FlowNew, DueDate: "2026/12/31"})); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("status-01", func(b *testing.B) {
		l := benchLedger(b)
		const originals = 2000
		for i := range originals {
			if _, err := l.Accept(ctx, benchDoc("000.00.00.C01", fmt.Sprint("O", i), fmt.Sprint("<o", i, "/>"), &Flow{Kind: FlowNew})); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; b.Loop(); i++ {
			ref := fmt.Sprint("O", i%originals)
			code := []string{"01", "03", "04", "05", "06"}[(i/originals)%5]
			if i >= 5*originals {
				b.Fatal("benchmark ran past the prepared originals")
			}
			if _, err := l.Accept(ctx, benchDoc("000.00.00.C02", ref, fmt.Sprint("<s", i, "/>"),
				&Flow{Kind: FlowStatus, Target: ref, Addressee: "000.00.00.C01", Code: code})); err != nil {
				b.Fatal(err)
			}
		}
	})
}
