package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"lienthong/adapters/restapi"
	"lienthong/routing/evidence"
	"lienthong/routing/evidence/logverify"
)

// EvidenceConfig configures the evidence role (sequencer, checkpointer,
// timestamper, retention) and the evidence routes of the API.
type EvidenceConfig struct {
	// Key signs checkpoints; Cert is the hub's evidence certificate, whose
	// public key is Key's and whose common name is the log's origin. Without
	// a Key the evidence role still sequences leaves but signs nothing.
	Key      ed25519.PrivateKey
	Cert     *x509.Certificate
	CertPEM  []byte
	ChainPEM []byte // the rest of the hub's chain, put in evidence bundles
	TrustPEM []byte // trust anchors put in evidence bundles
	// Interval between checkpoints while the log grows; default 900ms, so
	// that there is at least one checkpoint a second under load.
	Interval time.Duration
	// TSAURL, if set, is an RFC 3161 TSA asked (asynchronously) to
	// timestamp checkpoints; TSATimeout bounds one request (default 20s).
	TSAURL      string
	TSATimeout  time.Duration
	TSAInterval time.Duration // how often to look for an unstamped checkpoint; default 5s
	// Retention, if positive, purges document bytes that long after
	// acceptance once every delivery has ended.
	Retention time.Duration
}

// LoadEvidence reads the evidence certificate and its Ed25519 key (PKCS#8)
// and an optional chain file.
func LoadEvidence(certPath, keyPath, chainPath string) (EvidenceConfig, error) {
	var ec EvidenceConfig
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return ec, fmt.Errorf("evidence certificate: %w", err)
	}
	cert, err := logverify.ParseCertPEM(cb)
	if err != nil {
		return ec, fmt.Errorf("evidence certificate %s: %w", certPath, err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return ec, fmt.Errorf("evidence key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return ec, fmt.Errorf("evidence key %s: not PEM", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return ec, fmt.Errorf("evidence key %s: %w", keyPath, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return ec, fmt.Errorf("evidence key %s: not an Ed25519 key / khóa không phải Ed25519", keyPath)
	}
	if !key.Public().(ed25519.PublicKey).Equal(cert.PublicKey) {
		return ec, fmt.Errorf("evidence key %s does not belong to certificate %s / khóa không khớp chứng thư", keyPath, certPath)
	}
	ec.Key, ec.Cert, ec.CertPEM = key, cert, cb
	if chainPath != "" {
		if ec.ChainPEM, err = os.ReadFile(chainPath); err != nil {
			return ec, fmt.Errorf("evidence chain: %w", err)
		}
	}
	return ec, nil
}

// runEvidence starts the evidence role's loops in g. Its sequencer hands
// the leaves it commits to feed (the lt.events publisher of this process).
func runEvidence(ctx context.Context, g *errgroup.Group, pool *pgxpool.Pool, ec EvidenceConfig, feed *evidence.Feed, log *slog.Logger) error {
	seq, err := evidence.NewSequencer(pool, evidence.SequencerConfig{Logger: log, Feed: feed})
	if err != nil {
		return err
	}
	g.Go(func() error { return seq.Run(ctx) })
	if ec.Key == nil || ec.Cert == nil {
		log.WarnContext(ctx, "no evidence key: checkpoints are not signed / không có khóa bằng chứng: không ký checkpoint")
	} else {
		skey, _, err := logverify.NoteKeys(ec.Cert.Subject.CommonName, ec.Key)
		if err != nil {
			return err
		}
		interval := ec.Interval
		if interval <= 0 {
			interval = 900 * time.Millisecond
		}
		cp, err := evidence.NewCheckpointer(pool, evidence.CheckpointerConfig{SignerKey: skey, Interval: interval, Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return cp.Run(ctx) })
	}
	if ec.TSAURL != "" {
		ts, err := evidence.NewTimestamper(pool, evidence.TimestamperConfig{URL: ec.TSAURL, Timeout: ec.TSATimeout,
			Interval: ec.TSAInterval, Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return ts.Run(ctx) })
	}
	if ec.Retention > 0 {
		g.Go(func() error {
			return evidence.RunRetention(ctx, pool, evidence.RetentionConfig{After: ec.Retention, Logger: log})
		})
	}
	return nil
}

// mountEvidence adds the log, receipts and auditor routes to the API.
func mountEvidence(api *restapi.Server, pool *pgxpool.Pool, ec EvidenceConfig) {
	api.MountEvidence(restapi.EvidenceConfig{Log: evidence.NewLog(pool),
		Bundle: evidence.BundleConfig{HubCertPEM: ec.CertPEM, ChainPEM: ec.ChainPEM, TrustPEM: ec.TrustPEM}})
}
