package main

import (
	"fmt"
	"log/slog"
	"strings"

	"lienthong/cmd/internal/hub"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

// trustConfig reads --trust-dir: one subfolder per trust domain holding its
// anchors (*.pem, *.crt) and an optional "policy" file (require or record),
// e.g.
//
//	trust/agency/national-ca.pem   trust/agency/policy  → require
//	trust/axis/national-ca.pem     trust/axis/policy    → record
//	trust/partner/ipu-members.pem
//
// channels ("api=agency,axis=axis,partner=partner") maps submission channels
// to domains; empty means the default mapping. An empty dir turns
// verification off (documents are reported not_checked).
func trustConfig(dir, channels string, log *slog.Logger) (*hub.TrustConfig, error) {
	if dir == "" {
		log.Warn("không cấu hình tin cậy: chữ ký số không được kiểm tra / no --trust-dir: signatures are not verified (not_checked)")
		return nil, nil
	}
	store, err := trust.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--trust-dir: %w", err)
	}
	cfg := &hub.TrustConfig{Store: store}
	if channels != "" {
		cfg.Domains = map[string]string{}
		for _, kv := range splitList(channels) {
			ch, dom, ok := strings.Cut(kv, "=")
			if !ok || ch == "" || dom == "" {
				return nil, fmt.Errorf("--trust-channels: %q is not channel=domain", kv)
			}
			cfg.Domains[ch] = dom
		}
	}
	domains := cfg.Domains
	if domains == nil {
		domains = verify.DefaultDomains
	}
	for ch, dom := range domains {
		if d, ok := store.Domain(dom); ok {
			log.Info("miền tin cậy / trust domain", "channel", ch, "domain", dom, "policy", string(d.Policy), "anchors", len(d.Roots))
		} else {
			log.Warn("kênh không có miền tin cậy: văn bản sẽ bị từ chối / channel without a trust domain: its documents will be refused",
				"channel", ch, "domain", dom)
		}
	}
	return cfg, nil
}
