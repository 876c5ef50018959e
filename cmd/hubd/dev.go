package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"lienthong/adapters/restapi"
	"lienthong/adapters/webhook"
	"lienthong/cmd/internal/devpki"
	"lienthong/cmd/internal/hub"
	"lienthong/cmd/internal/sample"
	"lienthong/routing/embedbroker"
	"lienthong/routing/ledger"
	"lienthong/routing/pglocal"
)

// demoOrgans is the demo directory: NA bodies under the C group, clearly marked.
var demoOrgans = []struct {
	Code, Name, Delivery string
}{
	{"000.00.00.C01", "Văn phòng Quốc hội (DEMO)", "push"},
	{"000.00.00.C02", "Ủy ban Pháp luật và Tư pháp (DEMO)", "pull"},
	{"000.00.00.C03", "Ủy ban Kinh tế và Tài chính (DEMO)", "push"},
	{"000.00.00.C04", "Đoàn ĐBQH thành phố Hà Nội (DEMO)", "pull"},
}

// Credentials is the contract of <data-dir>/credentials.json.
type Credentials struct {
	APIURL       string       `json:"api_url"`
	KafkaBrokers []string     `json:"kafka_brokers"`
	DatabaseURL  string       `json:"database_url"`
	CACert       string       `json:"ca_cert"`
	HubCert      string       `json:"hub_cert"`
	EvidenceCert string       `json:"evidence_cert,omitempty"` // the certificate auditors verify evidence with
	Organs       []OrganCreds `json:"organs"`
	Auditor      string       `json:"auditor_token"`
	Operator     string       `json:"operator_token"`
	Demo         bool         `json:"demo"`
	Samples      []string     `json:"samples,omitempty"`
	Axis         *AxisCreds   `json:"axis,omitempty"`
}

// OrganCreds is one organ's entry in credentials.json.
type OrganCreds struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Token    string `json:"token"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	Delivery string `json:"delivery"`
}

func runDev(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./var/dev", "where the dev hub keeps PostgreSQL, Kafka data, keys and credentials")
	listen := fs.String("listen", "127.0.0.1:8080", "API listen address")
	brokerListen := fs.String("broker-listen", "127.0.0.1:9092", "embedded Kafka-protocol broker listen address")
	dbURL := fs.String("database-url", "", "use this PostgreSQL instead of the private cluster (LT_DATABASE_URL)")
	roles := fs.String("roles", "all", "stages to run: api,relay,router,delivery,scheduler,axis,evidence")
	maxBody := fs.Int64("max-body", 512<<20, "largest accepted document in bytes (bodies above --blob-threshold stream)")
	// One dev process consumes every partition itself, so more partitions
	// buy no parallelism here, only more produce batches, each fsynced by
	// the embedded broker (hubbench --rate 500: p50 submit→delivered
	// 145–155 ms with 2, 263–363 ms with 8). Topics that exist keep theirs.
	partitions := fs.Int("partitions", 2, "partitions of the topics the hub creates in the embedded broker (serve: --partitions, default 8)")
	blobThreshold := fs.Int64("blob-threshold", 1<<20, "bodies above this many bytes are spooled, verified as a stream and kept as large objects")
	axisListen := fs.String("axis-listen", "127.0.0.1:0", "listen address of the simulated national axis (\"off\": none)")
	ev := evidenceFlags(fs)
	routeOnAccept := fs.Bool("route-on-accept", true, "route documents in their accept transaction (false: every document through lt.route and the router)")
	brokerOnly := fs.Bool("broker-only", false, "run only the embedded broker (data in <data-dir>/kafka) until stopped")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *brokerOnly {
		return runBrokerOnly(ctx, *dataDir, *brokerListen, log)
	}
	rl, err := hub.ParseRoles(*roles)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	// 1. PostgreSQL: the private cluster, unless a URL is given.
	dsn := *dbURL
	if dsn == "" {
		log.Info("khởi động PostgreSQL riêng / starting the private PostgreSQL", "dir", filepath.Join(dir, "postgres"))
		cluster, err := pglocal.Start(ctx, pglocal.Config{Dir: filepath.Join(dir, "postgres"), Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(sctx); err != nil {
				log.Error("dừng PostgreSQL thất bại / stopping PostgreSQL failed", "error", err)
			} else {
				log.Info("đã dừng PostgreSQL / PostgreSQL stopped")
			}
		}()
		if err := cluster.CreateDatabase(ctx, "lienthong"); err != nil {
			return err
		}
		dsn = cluster.URL("lienthong")
	}

	// 2. The embedded Kafka-protocol broker, data on disk.
	broker, err := embedbroker.Start(embedbroker.Config{DataDir: filepath.Join(dir, "kafka"), Listen: *brokerListen,
		Partitions: *partitions, Logger: log})
	if err != nil {
		return err
	}
	defer broker.Close()

	// 3. Directory, PKI and credentials.
	if err := hub.Migrate(ctx, dsn); err != nil {
		return err
	}
	creds, err := seedDemo(ctx, dir, dsn, *listen, broker.Addrs())
	if err != nil {
		return err
	}

	axisCfg, stopAxis, err := startDevAxis(dir, *axisListen, creds, log)
	if err != nil {
		return err
	}
	defer stopAxis()
	evCfg, evCert, err := devEvidence(filepath.Join(dir, "pki"), ev)
	if err != nil {
		return err
	}
	if err := recordEvidenceCert(filepath.Join(dir, "credentials.json"), creds, evCert); err != nil {
		return err
	}

	sink := &webhook.Sink{Logger: log}
	tc, err := devTrust(creds.CACert)
	if err != nil {
		return err
	}
	return hub.Run(ctx, hub.Config{
		DatabaseURL: dsn, Brokers: broker.Addrs(), Partitions: *partitions, Listen: *listen, Logger: log, Roles: rl, MaxBody: *maxBody, BlobThreshold: *blobThreshold, SpoolDir: filepath.Join(dir, "spool"), Trust: tc,
		Axis: axisCfg, Evidence: evCfg, RouteAtRouter: !*routeOnAccept,
		Mount: func(api *restapi.Server) {
			api.Echo().Any("/demo/webhook/:organ", echo.WrapHandler(sink))
		},
		OnListen: func(net.Addr) { banner(creds, dir); axisBanner(creds) },
	})
}

// seedDemo writes the demo directory, PKI, tokens and credentials.json. On a
// restart it reuses what is there.
func seedDemo(ctx context.Context, dir, dbURL, listen string, brokers []string) (*Credentials, error) {
	credPath := filepath.Join(dir, "credentials.json")
	var old Credentials
	if b, err := os.ReadFile(credPath); err == nil {
		_ = json.Unmarshal(b, &old)
	}
	codes := make([]string, len(demoOrgans))
	names := map[string]string{}
	for i, o := range demoOrgans {
		codes[i], names[o.Code] = o.Code, o.Name
	}
	pki, err := devpki.Ensure(filepath.Join(dir, "pki"), codes, names)
	if err != nil {
		return nil, err
	}
	pool, err := ledger.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Config{})

	apiURL := "http://" + listen
	creds := &Credentials{APIURL: apiURL, KafkaBrokers: brokers, DatabaseURL: dbURL, CACert: pki.CA.Cert,
		HubCert: pki.Hub.Cert, Demo: true}
	oldTok := map[string]string{}
	for _, o := range old.Organs {
		oldTok[o.Code] = o.Token
	}
	for _, o := range demoOrgans {
		cert, _, err := devpki.Load(pki.Organs[o.Code])
		if err != nil {
			return nil, err
		}
		fp := sha256.Sum256(cert.Raw)
		endpoint, pipeline := "", 0
		if o.Delivery == ledger.ChannelPush {
			// The demo sink is this hub's own net/http server, which takes
			// pipelined pushes in order.
			endpoint, pipeline = apiURL+"/demo/webhook/"+o.Code, 8
		}
		if err := l.UpsertOrgan(ctx, ledger.Organ{Code: o.Code, Name: o.Name, Channel: o.Delivery, Endpoint: endpoint,
			CertFingerprints: []string{hex.EncodeToString(fp[:])}, Demo: true, Active: true, PushPipeline: pipeline}); err != nil {
			return nil, err
		}
		tok := reuseOr(oldTok[o.Code])
		if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOrgan, Organ: o.Code, Name: o.Name}, tok, nil); err != nil {
			return nil, err
		}
		creds.Organs = append(creds.Organs, OrganCreds{Code: o.Code, Name: o.Name, Token: tok,
			Cert: pki.Organs[o.Code].Cert, Key: pki.Organs[o.Code].Key, Delivery: o.Delivery})
	}
	creds.Auditor = reuseOr(old.Auditor)
	creds.Operator = reuseOr(old.Operator)
	if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleAuditor, Name: "demo auditor"}, creds.Auditor, nil); err != nil {
		return nil, err
	}
	if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOperator, Name: "demo operator"}, creds.Operator, nil); err != nil {
		return nil, err
	}

	// A ready-to-submit sample: from the first organ to the second and third.
	samples := filepath.Join(dir, "samples")
	if err := os.MkdirAll(samples, 0o755); err != nil {
		return nil, err
	}
	sp := filepath.Join(samples, "welcome.edxml")
	if cur, err := os.ReadFile(sp); errors.Is(err, os.ErrNotExist) || (err == nil && !signed(cur)) {
		doc := sample.EdXML(sample.Doc{From: demoOrgans[0].Code, FromName: demoOrgans[0].Name,
			To: []string{demoOrgans[1].Code, demoOrgans[2].Code}, Number: "1", Notation: "VPQH-DEMO",
			Subject: "V/v chào mừng đến với Lienthong (văn bản mẫu)"})
		if doc, err = signDemo(doc, pki.Organs[demoOrgans[0].Code]); err != nil {
			return nil, err
		}
		if err := os.WriteFile(sp, doc, 0o644); err != nil {
			return nil, err
		}
	}
	creds.Samples = []string{sp}

	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return nil, err
	}
	tmp := credPath + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	return creds, os.Rename(tmp, credPath)
}

func reuseOr(tok string) string {
	if tok != "" {
		return tok
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "lt_" + base64.RawURLEncoding.EncodeToString(b)
}

func banner(c *Credentials, dir string) {
	from := c.Organs[0]
	fmt.Fprintf(os.Stdout, `
╔══════════════════════════════════════════════════════════════════════════════╗
  Lienthong hub (dev) — sẵn sàng / ready            DỮ LIỆU THỬ NGHIỆM / DEMO DATA
╚══════════════════════════════════════════════════════════════════════════════╝
  API:            %s        (readyz: %s/readyz, metrics: %s/metrics)
  Kafka broker:   %v
  PostgreSQL:     %s
  Credentials:    %s
  Demo webhooks:  %s/demo/webhook/<organ code>

  Gửi văn bản mẫu / submit the sample document (as %s):
    curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/xml' \
      --data-binary @%s %s/v1/documents

  hoặc / or:  go run ./cmd/hubctl submit %s

  Dừng / stop: Ctrl-C
`, c.APIURL, c.APIURL, c.APIURL, c.KafkaBrokers, redact(c.DatabaseURL), filepath.Join(dir, "credentials.json"),
		c.APIURL, from.Code, from.Token, c.Samples[0], c.APIURL, c.Samples[0])
}

// redact hides the password of a database URL in the banner.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
