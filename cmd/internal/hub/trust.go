package hub

import (
	"context"
	"fmt"

	"lienthong/envelope"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// TrustConfig is the hub's signature verification configuration.
type TrustConfig struct {
	// Store holds the trust domains (anchors and policy per domain).
	Store *trust.Store
	// Domains maps a submission channel to a domain name; nil means
	// verify.DefaultDomains (api → agency, axis → axis, partner → partner).
	Domains map[string]string
	// Attachments, when set, verifies the signatures of attachments (CMS,
	// PAdES); its verdicts go into the report.
	Attachments verify.AttachmentVerifier
}

// verifierOf returns the verification step of the accept path: cfg.Verifier
// if set, else one built from cfg.Trust over the ledger's directory, else nil
// (documents are recorded as not_checked).
func verifierOf(cfg Config, l *ledger.Ledger) (intake.Verifier, error) {
	if cfg.Verifier != nil {
		return cfg.Verifier, nil
	}
	if cfg.Trust == nil || cfg.Trust.Store == nil {
		return nil, nil
	}
	v, err := verify.New(verify.Config{Trust: cfg.Trust.Store, Domains: cfg.Trust.Domains,
		Directory: ledgerDirectory{l}, Limits: envelope.Limits{MaxBytes: cfg.MaxBody}, Attachments: cfg.Trust.Attachments})
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return v, nil
}

// ledgerDirectory gives the verifier the directory's signing bindings.
type ledgerDirectory struct{ l *ledger.Ledger }

func (d ledgerDirectory) Binding(ctx context.Context, code string) (verify.Binding, error) {
	o, err := d.l.Organ(ctx, code)
	if err != nil {
		return verify.Binding{}, err
	}
	return verify.Binding{Code: o.Code, OldCodes: o.OldCodes, CertFingerprints: o.CertFingerprints, Delivery: o.Channel}, nil
}
