package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"lienthong/cmd/internal/devpki"
	"lienthong/cmd/internal/hub"
	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// evidenceOpts are the evidence flags of hubd serve and hubd dev.
type evidenceOpts struct {
	cert, key, chain, trust *string
	tsaURL                  *string
	tsaTimeout              *time.Duration
	interval                *time.Duration
	retention               *time.Duration
}

func evidenceFlags(fs *flag.FlagSet) *evidenceOpts {
	return &evidenceOpts{
		cert:       fs.String("evidence-cert", "", "the hub's evidence certificate PEM: Ed25519 key = checkpoint key, CN = log origin (LT_EVIDENCE_CERT)"),
		key:        fs.String("evidence-key", "", "its Ed25519 private key, PKCS#8 PEM (LT_EVIDENCE_KEY, or LT_EVIDENCE_KEY_FILE)"),
		chain:      fs.String("evidence-chain", "", "PEM of the rest of the hub's certificate chain, put in evidence bundles"),
		trust:      fs.String("evidence-trust", "", "PEM of the trust anchors, put in evidence bundles for offline signature checks"),
		tsaURL:     fs.String("tsa-url", "", "RFC 3161 TSA URL to timestamp checkpoints (asynchronous; optional)"),
		tsaTimeout: fs.Duration("tsa-timeout", 20*time.Second, "timeout of one TSA request"),
		interval:   fs.Duration("checkpoint-interval", 900*time.Millisecond, "sign a checkpoint at most this often while the log grows (≤ 1s keeps at least one per second)"),
		retention:  fs.Duration("retention", 0, "purge document bytes this long after acceptance once delivered (0 = keep forever)"),
	}
}

// load reads the key material. Without a key the evidence role still
// sequences every event into the log but signs no checkpoint (hub.Run warns);
// with the certificate alone, an API process puts it into evidence bundles.
func (o *evidenceOpts) load() (hub.EvidenceConfig, error) {
	var ec hub.EvidenceConfig
	switch {
	case *o.key != "":
		var err error
		if ec, err = hub.LoadEvidence(*o.cert, *o.key, *o.chain); err != nil {
			return ec, err
		}
	case *o.cert != "": // an API-only process: the certificate goes into evidence bundles
		b, err := os.ReadFile(*o.cert)
		if err != nil {
			return ec, err
		}
		if ec.Cert, err = logverify.ParseCertPEM(b); err != nil {
			return ec, fmt.Errorf("--evidence-cert: %w", err)
		}
		ec.CertPEM = b
		if *o.chain != "" {
			if ec.ChainPEM, err = os.ReadFile(*o.chain); err != nil {
				return ec, err
			}
		}
	}
	if *o.trust != "" {
		b, err := os.ReadFile(*o.trust)
		if err != nil {
			return ec, err
		}
		ec.TrustPEM = b
	}
	ec.TSAURL, ec.TSATimeout, ec.Interval, ec.Retention = *o.tsaURL, *o.tsaTimeout, *o.interval, *o.retention
	return ec, nil
}

// recordDirectoryLoad puts the directory load into the evidence log as an
// admin event: which file (name and SHA-256), which organs and how many
// principals.
func recordDirectoryLoad(ctx context.Context, l *ledger.Ledger, path string, b []byte, df directoryFile) error {
	sum := sha256.Sum256(b)
	codes := make([]string, 0, len(df.Organs))
	for _, o := range df.Organs {
		codes = append(codes, o.Code)
	}
	_, err := l.AdminEvent(ctx, ledger.AdminDirectoryLoaded, "hubd serve --directory", map[string]any{
		"file": filepath.Base(path), "sha256": hex.EncodeToString(sum[:]), "organs": codes, "principals": len(df.Principals)})
	return err
}

// devOrigin is the log origin of hubd dev.
const devOrigin = "lienthong.dev/log"

// devEvidence is the dev hub's evidence configuration: the demo evidence
// certificate (generated once in the data dir), unless flags name another.
func devEvidence(pkiDir string, o *evidenceOpts) (hub.EvidenceConfig, string, error) {
	if *o.cert == "" && *o.key == "" {
		p, err := devpki.EnsureEvidence(pkiDir, devOrigin)
		if err != nil {
			return hub.EvidenceConfig{}, "", err
		}
		*o.cert, *o.key = p.Cert, p.Key
	}
	ec, err := o.load()
	if err != nil {
		return ec, "", err
	}
	if ec.ChainPEM == nil { // the demo chain: hub certificate and CA
		for _, f := range []string{"hub.pem", "ca.pem"} {
			b, err := os.ReadFile(filepath.Join(pkiDir, f))
			if err != nil {
				return ec, "", err
			}
			ec.ChainPEM = append(ec.ChainPEM, b...)
		}
	}
	if ec.TrustPEM == nil {
		b, err := os.ReadFile(filepath.Join(pkiDir, "ca.pem"))
		if err != nil {
			return ec, "", err
		}
		ec.TrustPEM = b
	}
	return ec, *o.cert, nil
}

// recordEvidenceCert adds the evidence certificate's path to credentials.json.
func recordEvidenceCert(path string, c *Credentials, cert string) error {
	c.EvidenceCert = cert
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
