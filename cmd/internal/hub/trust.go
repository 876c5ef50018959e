package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// Attachments verifies the signatures of attachments (CMS, PAdES); its
	// verdicts go into the report. Nil means verify.AttachmentSignatures.
	Attachments verify.AttachmentVerifier
}

// verifierOf returns the verification step of the accept path: cfg.Verifier
// if set, else one built from cfg.Trust over the ledger's directory, else nil
// (documents are recorded as not_checked).
// Attachments decoded from a streamed body go to tempDir ("" = os.TempDir()).
func verifierOf(cfg Config, l *ledger.Ledger, tempDir string) (intake.Verifier, error) {
	if cfg.Verifier != nil {
		return cfg.Verifier, nil
	}
	if cfg.Trust == nil || cfg.Trust.Store == nil {
		return nil, nil
	}
	atts := cfg.Trust.Attachments
	if atts == nil { // detached CMS and PAdES signatures, revocation included
		atts = verify.AttachmentSignatures{Envelope: envelope.Limits{MaxBytes: cfg.MaxBody}, TempDir: tempDir}
	}
	v, err := verify.New(verify.Config{Trust: cfg.Trust.Store, Domains: cfg.Trust.Domains,
		Directory: ledgerDirectory{l}, Limits: envelope.Limits{MaxBytes: cfg.MaxBody}, Attachments: atts})
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

// recordTrust puts the trust anchors this process verifies with into the
// evidence log as an admin event (per domain: policy and the SHA-256 of
// each anchor), so that an auditor can tell which anchors judged a document
// accepted after it. It runs once at the start of every process with the
// api role and a trust configuration.
func recordTrust(ctx context.Context, l *ledger.Ledger, tc *TrustConfig) error {
	if tc == nil || tc.Store == nil {
		return nil
	}
	domains := map[string]any{}
	for _, name := range tc.Store.Names() {
		d, _ := tc.Store.Domain(name)
		anchors := make([]string, 0, len(d.Roots))
		for _, c := range d.Roots {
			sum := sha256.Sum256(c.Raw)
			anchors = append(anchors, hex.EncodeToString(sum[:]))
		}
		domains[name] = map[string]any{"policy": string(d.Policy), "anchors": anchors, "revocation": d.Revocation != nil}
	}
	_, err := l.AdminEvent(ctx, ledger.AdminTrustLoaded, "hubd", map[string]any{"domains": domains})
	return err
}
