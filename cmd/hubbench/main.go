// Command hubbench is Lienthong's load benchmark: it starts a hub in dev mode
// as a child process (or uses --server), registers benchmark recipients whose
// push endpoints it serves itself and whose pull inboxes it reads, pre-signs
// edXML documents with the demo PKI, submits them concurrently for a while
// and reports how fast they were accepted and delivered, the latency
// percentiles, the hub's CPU seconds per document and its peak RSS.
//
// The hub is measured from the outside: CPU is read from /proc for the hubd
// process and every process below it (its private PostgreSQL included), peak
// RSS is hubd's own VmHWM. The load generator's costs are not counted but do
// share the machine.
//
// By default the load is closed-loop: --concurrency submitters each send the
// next document as soon as the previous one is answered, which finds the most
// the hub accepts but, once that is more than it delivers, measures a growing
// backlog as submit→delivered latency. --rate N makes it open-loop: a
// document is due every 1/N s whatever the answers, at most --concurrency are
// in flight, and latencies count from when a document was due, not from when
// a free submitter took it (so a hub that falls behind is not flattered).
//
//	hubbench [--size 20KB] [--duration 60s] [--concurrency 32] [--recipients 2] [--rate N]
//	         [--out var/bench/results.json] [--hubd bin/hubd] [--server URL --credentials FILE]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lienthong/routing/ledger"
)

// Results is what --out receives.
type Results struct {
	Size                   string  `json:"size"`
	DocBytes               int     `json:"doc_bytes"`
	Recipients             int     `json:"recipients"`
	PushPipeline           int     `json:"push_pipeline"`
	Concurrency            int     `json:"concurrency"`
	Rate                   float64 `json:"rate,omitempty"` // offered documents/s (open loop); 0: closed loop
	DurationS              float64 `json:"duration_s"`
	Submitted              int     `json:"submitted"`
	Accepted               int     `json:"accepted"`
	Failed                 int     `json:"failed"`
	DeliveredDocs          int     `json:"delivered_docs"`
	DeliveredPairs         int     `json:"delivered_pairs"`
	AcceptedPerS           float64 `json:"accepted_per_s"`
	DeliveredPerS          float64 `json:"delivered_per_s"`
	P50SubmitMs            float64 `json:"p50_submit_ms"`
	P95SubmitMs            float64 `json:"p95_submit_ms"`
	P99SubmitMs            float64 `json:"p99_submit_ms"`
	P50SubmitToDeliveredMs float64 `json:"p50_submit_to_delivered_ms"`
	P95SubmitToDeliveredMs float64 `json:"p95_submit_to_delivered_ms"`
	P99SubmitToDeliveredMs float64 `json:"p99_submit_to_delivered_ms"`
	// ByChannel splits submit→delivered by the recipient's channel (push,
	// pull); Timeline splits it again by the second of the run in which the
	// documents were due, to tell a growing queue from stalls.
	ByChannel         map[string]Tail `json:"by_channel,omitempty"`
	Timeline          []SecondTail    `json:"timeline,omitempty"`
	CPUSPerDoc        float64         `json:"cpu_s_per_doc"`
	HubCPUS           float64         `json:"hub_cpu_s"`  // hubd and its private PostgreSQL
	HubdCPUS          float64         `json:"hubd_cpu_s"` // hubd alone
	PeakRSSMB         float64         `json:"peak_rss_mb"`
	PostgresPeakRSSMB float64         `json:"postgres_peak_rss_mb,omitempty"`
	LoadgenCPUS       float64         `json:"loadgen_cpu_s"`  // this process (submitters, sinks, pull clients), same window
	MachineCPUS       float64         `json:"machine_cpu_s"`  // every process on the machine, same window (/proc/stat)
	Late              int             `json:"late,omitempty"` // open loop: documents sent more than 10 ms after they were due
	Errors            []string        `json:"errors,omitempty"`
	StartedAt         time.Time       `json:"started_at"`
	GoMaxProcs        int             `json:"gomaxprocs"`
	Note              string          `json:"note,omitempty"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, os.Args[1:], log); err != nil {
		fmt.Fprintf(os.Stderr, "hubbench: lỗi / error: %v\n", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	size        string
	docBytes    int
	duration    time.Duration
	concurrency int
	rate        float64
	recipients  int
	pipeline    int
	docs        int
	out         string
	hubd        string
	server      string
	credentials string
	dataDir     string
	keep        bool
	attSig      bool
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("hubbench", flag.ContinueOnError)
	fs.StringVar(&c.size, "size", "20KB", "document size: 20KB, 2MB, 200MB … (KB/MB/GB are powers of 1024)")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long to submit")
	fs.IntVar(&c.concurrency, "concurrency", 32, "concurrent submitters")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: offer this many documents per second (0: closed loop, as fast as answered)")
	fs.IntVar(&c.recipients, "recipients", 2, "recipients per document (alternately push and pull)")
	fs.IntVar(&c.pipeline, "push-pipeline", 8, "pushes to each push recipient on the wire at once (the organ's push_pipeline; 1: one at a time)")
	fs.IntVar(&c.docs, "docs", 0, "documents to pre-sign (0: enough for 1,500/s over --duration, at most what fits in 2 GiB)")
	fs.StringVar(&c.out, "out", "var/bench/results.json", "where to write the results (JSON)")
	fs.StringVar(&c.hubd, "hubd", "", "hubd binary to start in dev mode (default: build ./cmd/hubd)")
	fs.StringVar(&c.server, "server", "", "use this running hub instead of starting one (needs --credentials)")
	fs.StringVar(&c.credentials, "credentials", "", "credentials.json of the hub given by --server")
	fs.StringVar(&c.dataDir, "data-dir", "", "data dir of the dev hub (default: a fresh temporary one)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary data dir")
	fs.BoolVar(&c.attSig, "attachment-signature", false, "add a detached CMS signature (.p7s, by the sender) of the attachment, which the hub checks")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	n, err := parseSize(c.size)
	if err != nil {
		return c, err
	}
	c.docBytes = n
	if c.concurrency < 1 || c.recipients < 1 || c.duration <= 0 || c.rate < 0 {
		return c, errors.New("--concurrency, --recipients and --duration must be positive, --rate not negative")
	}
	if c.pipeline < 1 || c.pipeline > ledger.MaxPushPipeline {
		return c, fmt.Errorf("--push-pipeline phải từ 1 đến %d / --push-pipeline must be 1…%d", ledger.MaxPushPipeline, ledger.MaxPushPipeline)
	}
	if c.server != "" && c.credentials == "" {
		return c, errors.New("--server cần --credentials / --server needs --credentials")
	}
	if c.docs == 0 {
		c.docs = int(c.duration.Seconds() * max(1500, c.rate*1.05))
		if max := (2 << 30) / max(c.docBytes, 1); c.docs > max {
			c.docs = max
		}
		c.docs = max(c.docs, 1)
	}
	return c, nil
}

// parseSize reads "20KB", "2MB", "200MB", "1GB" or a plain byte count.
func parseSize(s string) (int, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, suf := range []struct {
		s string
		m int
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			u, mult = strings.TrimSuffix(u, suf.s), suf.m
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(u), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--size %q: want e.g. 20KB, 2MB, 200MB", s)
	}
	return int(n * float64(mult)), nil
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	res := Results{Size: cfg.size, Recipients: cfg.recipients, PushPipeline: cfg.pipeline, Concurrency: cfg.concurrency, Rate: cfg.rate,
		StartedAt: time.Now().UTC()}

	var target *hubTarget
	if cfg.server != "" {
		target, err = attach(cfg.server, cfg.credentials)
	} else {
		target, err = startDevHub(ctx, cfg, log)
	}
	if err != nil {
		return err
	}
	defer target.close()

	b, err := newBench(ctx, cfg, target, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.run(ctx, &res); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
		return err
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.out, append(out, '\n'), 0o644); err != nil {
		return err
	}
	mode := "closed loop"
	if cfg.rate > 0 {
		mode = fmt.Sprintf("offered %.0f/s", cfg.rate)
	}
	fmt.Printf("hubbench %s ×%d recipients, %s: accepted %.1f/s, delivered %.1f/s, submit p50 %.1f ms p99 %.1f ms, "+
		"submit→delivered p50 %.1f ms p99 %.1f ms (p99%s; push pipeline %d), hub CPU %.2f ms/doc, hub peak RSS %.0f MB, CPU hub/loadgen/machine %.0f/%.0f/%.0f s "+
		"(%d accepted, %d failed, %.1f s) → %s\n",
		res.Size, res.Recipients, mode, res.AcceptedPerS, res.DeliveredPerS, res.P50SubmitMs, res.P99SubmitMs,
		res.P50SubmitToDeliveredMs, res.P99SubmitToDeliveredMs, channelP99s(res.ByChannel), res.PushPipeline, res.CPUSPerDoc*1000, res.PeakRSSMB,
		res.HubCPUS, res.LoadgenCPUS, res.MachineCPUS, res.Accepted, res.Failed, res.DurationS, cfg.out)
	return nil
}
