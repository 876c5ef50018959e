package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/envelope/verify"
	"lienthong/routing/pglocal"
	"lienthong/routing/pgtest"
)

// EnvBenchDurable makes BenchmarkAcceptConcurrent start its own PostgreSQL
// cluster with the dev hub's durable settings (fsync and synchronous_commit
// on) instead of the test cluster, which runs with fsync off;
// LT_BENCH_DURABLE_SET="name=value,…" tries reloadable settings on it.
const EnvBenchDurable = "LT_BENCH_DURABLE"

// BenchmarkAcceptConcurrent measures the accept path under load: 32
// goroutines accept 20 KB documents with 2 recipients each, the way the
// intake does (FlowNew). It reports documents per second and the CPU time
// the PostgreSQL server spent per document (postmaster and its backends,
// read from /proc).
func BenchmarkAcceptConcurrent(b *testing.B) {
	if testing.Short() {
		b.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	url := ""
	if os.Getenv(EnvBenchDurable) != "" {
		c, err := pglocal.Start(ctx, pglocal.Config{Dir: filepath.Join(b.TempDir(), "pg")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Stop(context.Background()) })
		url = c.URL("postgres")
		// LT_BENCH_PGSET="name=value,…": reloadable settings to try.
		if set := os.Getenv(EnvBenchDurable + "_SET"); set != "" {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			for _, kv := range strings.Split(set, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if _, err := pool.Exec(ctx, "ALTER SYSTEM SET "+k+" = '"+v+"'"); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
				b.Fatal(err)
			}
			pool.Close()
		}
	} else {
		url = pgtest.NewDatabase(b)
	}
	pool, err := Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	cfg := Config{}
	if v, err := strconv.Atoi(os.Getenv("LT_BENCH_FLUSHERS")); err == nil { // experiments
		cfg.AcceptFlushers = v
	}
	if v, err := strconv.Atoi(os.Getenv("LT_BENCH_BATCH")); err == nil {
		cfg.AcceptBatch = v
	}
	l := New(pool, cfg)
	organs := []string{"000.00.00.C01", "000.00.00.C02", "000.00.00.C03"}
	for _, code := range organs {
		if err := l.UpsertOrgan(ctx, Organ{Code: code, Name: code, Channel: ChannelPull, Active: true}); err != nil {
			b.Fatal(err)
		}
	}
	// A signed edXML document is mostly its base64 attachment: random
	// base64 compresses like one (TOAST and wal_compression gain little).
	rnd := make([]byte, 15*1024)
	_, _ = rand.Read(rnd)
	body := []byte(base64.StdEncoding.EncodeToString(rnd))
	run := fmt.Sprint(time.Now().UnixNano()) // the durable cluster outlives one b.N round
	report := benchReport(b)
	const workers = 32
	var next atomic.Int64
	cpu0 := postgresCPU(ctx, pool)
	wal0, size0 := walAndReports(ctx, pool)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				raw := append(fmt.Appendf(nil, "<d n=%q>", fmt.Sprint(run, "-", i)), body...)
				sum := sha256.Sum256(raw)
				d := NewDocument{Sender: organs[0], DocRef: fmt.Sprint("B", run, "-", i), Format: "edxml",
					Recipients: organs[1:], Raw: raw, SHA256: sum[:], Flow: &Flow{Kind: FlowNew},
					Meta: map[string]any{"channel": "api"}, Verification: map[string]any{"outcome": "valid"}}
				report(&d)
				if _, err := l.Accept(ctx, d); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "docs/s")
	if wal1, size1 := walAndReports(ctx, pool); wal1 > 0 {
		b.ReportMetric(float64(wal1-wal0)/float64(b.N), "wal-B/doc")
		b.ReportMetric(float64(size1-size0)/float64(b.N), "report-B/doc")
	}
	if cpu1 := postgresCPU(ctx, pool); cpu0 >= 0 && cpu1 >= 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N)*1000, "pg-cpu-ms/doc")
	}
	st := l.AcceptStats()
	if st.Transactions > 0 {
		b.ReportMetric(float64(st.Documents)/float64(st.Transactions), "docs/tx")
	}
}

// EnvBenchReport sets the verification report of BenchmarkAcceptConcurrent:
// unset, {"outcome":"valid"}; "embedded", a report like the dev hub's (the
// signer's certificate as signer and in the chain, and its CA) plus a CRL of
// LT_BENCH_CRL bytes (default none), every DER embedded as before ledger
// migration 0015; "stored", the same report as the intake now hands it over
// (verify.Report.Stored: references, and the blobs once).
const EnvBenchReport = "LT_BENCH_REPORT"

func benchReport(b *testing.B) func(*NewDocument) {
	mode := os.Getenv(EnvBenchReport)
	if mode == "" {
		return func(*NewDocument) {}
	}
	crlSize, _ := strconv.Atoi(os.Getenv("LT_BENCH_CRL"))
	blob := func(n int) []byte {
		x := make([]byte, n)
		_, _ = rand.Read(x)
		return x
	}
	at := time.Now().UTC()
	signer := verify.Cert{Subject: "SERIALNUMBER=000.00.00.C01,CN=Văn phòng (BENCH)", Issuer: "CN=BENCH CA", Serial: "606c7cf2c1b6b4cbd4aa8d14106852",
		SHA256: strings.Repeat("ce", 32), NotBefore: at, NotAfter: at.Add(time.Hour), DER: blob(924)}
	ca := verify.Cert{Subject: "CN=BENCH CA", Issuer: "CN=BENCH CA", Serial: "14bd3703b2b6b4941a4274d1f532b5",
		SHA256: strings.Repeat("0a", 32), NotBefore: at, NotAfter: at.Add(time.Hour), DER: blob(890)}
	ref := ""
	sig := verify.Signature{Kind: "xmldsig", Verdict: "valid", Location: "/edXML/edXMLEnvelope/edXMLHeader/Signature",
		Signer: &signer, Chain: []verify.Cert{signer, ca}, Organ: "000.00.00.C01", Binding: "cert_fingerprint",
		Algorithms: verify.Algorithms{Signature: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", Digest: "http://www.w3.org/2001/04/xmlenc#sha256",
			C14N: "http://www.w3.org/2001/10/xml-exc-c14n#", Reference: &ref, DigestValue: "1tIi7yLSOHWMOOUS+6T43q8an5+UyI4bIh0xha4dpwU=", SignedContent: "whole_document"},
		Revocation: verify.Revocation{Status: "not_checked"}}
	if crlSize > 0 {
		sig.Revocation = verify.Revocation{Status: "good", Mode: "hard", CheckedAt: at, Evidence: []verify.Evidence{{Kind: verify.BlobCRL,
			Source: "http://ca.example/crl", ThisUpdate: at, NextUpdate: at.Add(time.Hour), DER: blob(crlSize), Subject: signer.Subject,
			Serial: signer.Serial, Status: "good", FetchedAt: at, SHA256: strings.Repeat("ab", 32)}}}
	}
	r := &verify.Report{Outcome: "valid", Channel: "api", Domain: "agency", Policy: "require", VerifiedAt: at, Organ: "000.00.00.C01",
		Signatures: []verify.Signature{sig}, Attachments: []verify.Attachment{}}
	switch mode {
	case "embedded":
		return func(d *NewDocument) { d.Verification = r }
	case "stored":
		return func(d *NewDocument) { *d = withStoredReport(*d, r) }
	}
	b.Fatalf("%s=%q: want embedded or stored", EnvBenchReport, mode)
	return nil
}

// walAndReports returns the server's WAL position and the bytes of the
// verification reports and their evidence.
func walAndReports(ctx context.Context, pool *pgxpool.Pool) (wal, size int64) {
	if err := pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint,
		pg_total_relation_size('verification_reports') + pg_total_relation_size('verification_evidence')`).Scan(&wal, &size); err != nil {
		return -1, -1
	}
	return wal, size
}

// postgresCPU returns the CPU seconds the server behind pool has used: its
// postmaster (including reaped backends) and the live backends. -1 when it
// cannot be read (a remote server, no /proc).
func postgresCPU(ctx context.Context, pool *pgxpool.Pool) float64 {
	var dataDir string
	if err := pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dataDir); err != nil {
		return -1
	}
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return -1
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		return -1
	}
	ticks := 100.0 // USER_HZ on Linux
	total := 0.0
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name "(...)": state ppid ... utime(14) stime(15) cutime(16) cstime(17).
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != pm && ppid != pm {
			continue
		}
		n := 2
		if pid == pm {
			n = 4 // with the reaped children
		}
		for _, v := range f[11 : 11+n] {
			x, _ := strconv.ParseFloat(v, 64)
			total += x / ticks
		}
	}
	return total
}
