package verify

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"lienthong/envelope/trust"
)

// EvidenceOf converts a revocation checker's result into the report's form.
func EvidenceOf(res *trust.RevocationResult) Revocation {
	if res == nil {
		return Revocation{Status: "not_checked"}
	}
	out := Revocation{Status: res.Status, Mode: string(res.Mode), SoftFail: res.SoftFail, CheckedAt: res.CheckedAt.UTC()}
	for _, e := range res.Evidence {
		out.Evidence = append(out.Evidence, Evidence{Kind: e.Method, Source: e.Source, ThisUpdate: e.ThisUpdate, NextUpdate: e.NextUpdate,
			DER: e.DER, Subject: e.Subject, Serial: e.Serial, Status: e.Status, RevokedAt: e.RevokedAt, RevocationReason: e.RevocationReason,
			ProducedAt: e.ProducedAt, FetchedAt: e.FetchedAt, SHA256: e.SHA256, Error: e.Error})
	}
	return out
}

// ResultOf converts the report's form back into a checker's result, for
// trust.RecheckRevocation and trust.Domain.RecheckVerdict on a stored report.
func ResultOf(r Revocation) *trust.RevocationResult {
	res := &trust.RevocationResult{CheckedAt: r.CheckedAt, Mode: trust.FailureMode(r.Mode), Status: r.Status, SoftFail: r.SoftFail}
	for _, e := range r.Evidence {
		res.Evidence = append(res.Evidence, trust.Evidence{Method: e.Kind, Source: e.Source, Subject: e.Subject, Serial: e.Serial,
			Status: e.Status, RevokedAt: e.RevokedAt, RevocationReason: e.RevocationReason, Error: e.Error,
			ThisUpdate: e.ThisUpdate, NextUpdate: e.NextUpdate, ProducedAt: e.ProducedAt, FetchedAt: e.FetchedAt, DER: e.DER, SHA256: e.SHA256})
	}
	return res
}

// revocationOf asks an evidence-keeping checker (trust.Checker) again for
// chain; its caches answer what the verifier's own check fetched a moment
// before, so this costs no network round trip.
func revocationOf(ctx context.Context, ec trust.EvidenceChecker, chain []*x509.Certificate, at time.Time) (Revocation, error) {
	res, err := ec.CheckRevocationEvidence(ctx, chain, at)
	if res == nil {
		return Revocation{}, fmt.Errorf("verify: revocation evidence: %w", err)
	}
	return EvidenceOf(res), nil
}
