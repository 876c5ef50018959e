package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"lienthong/cmd/internal/hub"
	"lienthong/routing/delivery"
	"lienthong/routing/ledger"
)

func runServe(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (LT_DATABASE_URL)")
	brokers := fs.String("kafka-brokers", "", "comma-separated Kafka brokers (LT_KAFKA_BROKERS)")
	listen := fs.String("listen", "127.0.0.1:8080", "API listen address")
	tlsCert := fs.String("tls-cert", "", "server certificate PEM (enables HTTPS)")
	tlsKey := fs.String("tls-key", "", "server key PEM")
	clientCA := fs.String("client-ca", "", "CA bundle PEM for client certificates (enables mutual TLS)")
	directory := fs.String("directory", "", "organs file (JSON) loaded into the directory at start")
	roles := fs.String("roles", "all", "stages this process runs: api,relay,router,delivery,scheduler,axis,evidence")
	prefix := fs.String("topic-prefix", "lt", "Kafka topic prefix")
	partitions := fs.Int("partitions", 8, "partitions of the topics the hub creates")
	maxBody := fs.Int64("max-body", 32<<20, "largest accepted document in bytes")
	blobThreshold := fs.Int64("blob-threshold", 1<<20, "bodies above this many bytes are spooled, verified as a stream and kept as large objects (LT_BLOB_THRESHOLD)")
	spoolDir := fs.String("spool-dir", "", "where large bodies are spooled while verified (default the system's temp folder; LT_SPOOL_DIR)")
	trustDir := fs.String("trust-dir", "", "trust anchors: one folder per trust domain with *.pem and a policy file (LT_TRUST_DIR)")
	trustChannels := fs.String("trust-channels", "", "channel=domain list (default api=agency,axis=axis,partner=partner)")
	axisConfig := axisFlags(fs)
	ev := evidenceFlags(fs)
	retryBase := fs.Duration("retry-base", 2*time.Second, "first retry back-off of a delivery (doubles, with jitter)")
	retryMax := fs.Duration("retry-max", time.Hour, "longest retry back-off")
	stuckAfter := fs.Duration("stuck-after", 2*time.Minute, "re-announce work stuck this long (e.g. after a crash)")
	routeOnAccept := fs.Bool("route-on-accept", true, "route documents in their accept transaction (false: every document through lt.route and the router)")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *dbURL == "" || *brokers == "" {
		return errors.New("cần --database-url và --kafka-brokers / --database-url and --kafka-brokers are required")
	}
	rl, err := hub.ParseRoles(*roles)
	if err != nil {
		return err
	}
	tlsCfg, err := serverTLS(*tlsCert, *tlsKey, *clientCA)
	if err != nil {
		return err
	}
	tc, err := trustConfig(*trustDir, *trustChannels, log)
	if err != nil {
		return err
	}
	ax, err := axisConfig()
	if err != nil {
		return err
	}
	evCfg, err := ev.load()
	if err != nil {
		return err
	}
	if *directory != "" {
		if err := loadDirectory(ctx, *dbURL, *directory); err != nil {
			return err
		}
	}
	return hub.Run(ctx, hub.Config{DatabaseURL: *dbURL, Brokers: splitList(*brokers), TopicPrefix: *prefix,
		Partitions: *partitions, Listen: *listen, TLS: tlsCfg, Roles: rl, MaxBody: *maxBody, BlobThreshold: *blobThreshold, SpoolDir: *spoolDir, Logger: log, Trust: tc, Axis: ax,
		Evidence: evCfg, Policy: delivery.Policy{Base: *retryBase, Max: *retryMax}, StuckAfter: *stuckAfter,
		RouteAtRouter: !*routeOnAccept})
}

func runMigrate(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (LT_DATABASE_URL)")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("cần --database-url / --database-url is required")
	}
	if err := hub.Migrate(ctx, *dbURL); err != nil {
		return err
	}
	log.Info("đã áp dụng migrations / migrations applied")
	return nil
}

func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" && key == "" {
		if clientCA != "" {
			return nil, errors.New("--client-ca cần --tls-cert và --tls-key / --client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("TLS key pair: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no certificate found", clientCA)
		}
		// Verify a certificate if one is sent; token callers may send none.
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// directoryFile is the --directory format.
type directoryFile struct {
	Organs     []ledger.Organ `json:"organs"`
	Principals []struct {
		Kind        string `json:"kind"`
		Organ       string `json:"organ,omitempty"`
		Name        string `json:"name,omitempty"`
		TokenSHA256 string `json:"token_sha256,omitempty"` // hex; the token itself never sits in a file
		CertSHA256  string `json:"cert_sha256,omitempty"`  // hex SHA-256 of the client certificate DER
	} `json:"principals"`
}

func loadDirectory(ctx context.Context, url, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	var df directoryFile
	if err := json.Unmarshal(b, &df); err != nil {
		return fmt.Errorf("directory %s: %w", path, err)
	}
	pool, err := ledger.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := ledger.Migrate(ctx, pool); err != nil {
		return err
	}
	l := ledger.New(pool, ledger.Config{})
	for _, o := range df.Organs {
		o.Active = true
		if err := l.UpsertOrgan(ctx, o); err != nil {
			return err
		}
	}
	for _, p := range df.Principals {
		tok, err := hexBytes(p.TokenSHA256)
		if err != nil {
			return fmt.Errorf("directory: principal %s: token_sha256: %w", p.Name, err)
		}
		cert, err := hexBytes(p.CertSHA256)
		if err != nil {
			return fmt.Errorf("directory: principal %s: cert_sha256: %w", p.Name, err)
		}
		if err := l.AddPrincipalHashed(ctx, ledger.Principal{Kind: p.Kind, Organ: p.Organ, Name: p.Name}, tok, cert); err != nil {
			return err
		}
	}
	return recordDirectoryLoad(ctx, l, path, b, df)
}

// hexBytes decodes an optional hex SHA-256 from the directory file: empty
// means "not given"; anything else must be exactly 32 bytes of hex.
func hexBytes(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %w", err)
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("want %d bytes of SHA-256, got %d", sha256.Size, len(b))
	}
	return b, nil
}
