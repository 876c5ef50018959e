package trust_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"lienthong/envelope/trust"
)

// FuzzRecheckEvidence: stored evidence is parsed again on re-check (CRLs
// with crypto/x509, OCSP responses with golang.org/x/crypto/ocsp plus the
// hub's own CertID parser). Hostile bytes never panic, and the only
// answers are good, revoked or unknown.
func FuzzRecheckEvidence(f *testing.F) {
	w := newWorld(f)
	c := w.checker(f, trust.RevocationConfig{})
	ctx := context.Background()
	var seeds []trust.Evidence
	for _, leaf := range w.seedLeaves() {
		res, _ := c.CheckRevocationEvidence(ctx, w.chain(leaf), w.now)
		if res != nil {
			seeds = append(seeds, res.Evidence...)
		}
	}
	for _, e := range seeds {
		if len(e.DER) > 0 {
			f.Add(e.Method == trust.MethodOCSP, e.DER)
		}
	}
	chain := w.chain(w.ocspGood)
	f.Fuzz(func(t *testing.T, isOCSP bool, der []byte) {
		m := trust.MethodCRL
		if isOCSP {
			m = trust.MethodOCSP
		}
		res := &trust.RevocationResult{Evidence: []trust.Evidence{
			{Method: m, Serial: chain[0].SerialNumber.Text(16), DER: der},
			{Method: trust.MethodCRL, Serial: chain[1].SerialNumber.Text(16), DER: der},
		}}
		err := trust.RecheckRevocation(chain, res, w.now.Add(time.Minute))
		if err != nil && !errors.Is(err, trust.ErrRevoked) && !errors.Is(err, trust.ErrRevocationUnknown) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
