// Package hub wires the stages of the path into one process: the REST edge,
// the outbox relay and the lt.events publisher (role "relay"), the router,
// the delivery workers, the retry scheduler and the evidence log, over a
// PostgreSQL ledger and Kafka brokers. `hubd serve` and `hubd dev` both run
// it; --roles chooses which stages a process runs so that they can be split
// across processes.
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"lienthong/adapters/axis/axishub"
	"lienthong/adapters/restapi"
	"lienthong/adapters/webhook"
	"lienthong/envelope"
	"lienthong/routing"
	"lienthong/routing/bus"
	"lienthong/routing/deadline"
	"lienthong/routing/delivery"
	"lienthong/routing/evidence"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
	"lienthong/routing/relay"
	"lienthong/routing/router"
)

// Roles a process can run.
var AllRoles = []string{"api", "relay", "router", "delivery", "scheduler", "axis", "evidence"}

// Config is everything a hub process needs.
type Config struct {
	DatabaseURL string
	Brokers     []string
	TopicPrefix string
	Partitions  int
	Listen      string
	TLS         *tls.Config // nil: plain HTTP (dev, or behind a TLS terminator)
	Roles       []string
	MaxBody     int64
	// BlobThreshold: bodies above it are spooled, verified as a stream and
	// kept in the blob store (restapi.Config.BlobThreshold); 0: 1 MiB.
	BlobThreshold int64
	// SpoolDir is where the API role keeps its private directory of spooled
	// bodies and decoded attachments ("" = os.TempDir()); what a crashed
	// process left there is removed at the next start (spooldir.go).
	SpoolDir   string
	Verifier   intake.Verifier
	Channels   map[string]routing.Channel // extra channels (axis, partner); push and pull are built in
	Axis       *axishub.Config            // the national axis edge (role "axis" and channel "axis"); nil: none
	Policy     delivery.Policy
	StuckAfter time.Duration     // scheduler: re-announce work stuck this long; default 2m
	Breaker    *delivery.Breaker // circuit breaker per endpoint; nil: defaults
	Logger     *slog.Logger
	// RouteAtRouter turns routing at acceptance off (ledger.Config.RouteOnAccept):
	// every document then goes through lt.route and the router, as before
	// issue 7. Default: the accept transaction routes what it can.
	RouteAtRouter bool
	// Mount lets the caller add routes to the API (the dev demo sink).
	Mount func(api *restapi.Server)
	// OnListen is called with the API's bound address once it listens.
	OnListen func(addr net.Addr)
	// Trust turns signature verification on (when Verifier is nil): trust
	// domains with their anchors and policies. Nil: reports "not_checked".
	Trust *TrustConfig
	// Deadlines tunes the overdue checker of the scheduler role (its clock
	// and period); zero: real time, every 30s.
	Deadlines deadline.Config
	// Evidence configures the evidence log (role "evidence") and its routes.
	Evidence EvidenceConfig
}

// ParseRoles checks a comma-separated role list ("" or "all" = every role).
func ParseRoles(s string) ([]string, error) {
	if s == "" || s == "all" {
		return AllRoles, nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q (known: %s)", r, strings.Join(AllRoles, ", "))
		}
		out = append(out, r)
	}
	return out, nil
}

// Migrate applies the ledger's migrations.
func Migrate(ctx context.Context, url string) error {
	pool, err := ledger.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := ledger.Migrate(ctx, pool); err != nil {
		return err
	}
	return evidence.Migrate(ctx, pool)
}

// Run runs the configured roles until ctx ends, then shuts down cleanly.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = AllRoles
	}
	log := cfg.Logger
	pool, err := connectWithRetry(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := ledger.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := evidence.Migrate(ctx, pool); err != nil {
		return err
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lt_delivery_attempts_total",
		Help: "Delivery attempts by channel and outcome."}, []string{"channel", "outcome"})
	// The built-in pull channel is the ledger state (delivery.Inbox): the
	// accept transaction (or the router, for what it routes) delivers to
	// inboxes as it routes, when that keeps the order.
	_, pullReplaced := cfg.Channels[ledger.ChannelPull]
	l := ledger.New(pool, ledger.Config{Logger: log, InboxOnRoute: !pullReplaced, RouteOnAccept: !cfg.RouteAtRouter,
		OnInboxDelivered: func(n int) {
			deliveries.WithLabelValues(ledger.ChannelPull, "delivered").Add(float64(n))
		}})
	if slices.Contains(cfg.Roles, "api") {
		if err := recordTrust(ctx, l, cfg.Trust); err != nil {
			return fmt.Errorf("record the trust anchors: %w", err)
		}
	}
	ax, err := axisEdge(l, cfg, log)
	if err != nil {
		return err
	}
	busCfg := bus.Config{Brokers: cfg.Brokers, Prefix: cfg.TopicPrefix, Partitions: cfg.Partitions, Logger: log}
	has := func(r string) bool { return slices.Contains(cfg.Roles, r) }

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The sequencer of this process (evidence or relay role) hands the leaves
	// it commits to the lt.events publisher through feed.
	feed := evidence.NewFeed(0)
	tail := evidence.NewTail(pool).WithFeed(feed)
	backlog := countGauge("lt_outbox_backlog", "Outbox rows waiting for Kafka.", l.OutboxBacklog)
	eventsBacklog := countGauge("lt_events_backlog", "Evidence log leaves not yet published to lt.events.", tail.Backlog)
	reg.MustRegister(deliveries, backlog, eventsBacklog)

	g, gctx := errgroup.WithContext(ctx)
	// Directory changes by any process empty this process's directory cache.
	g.Go(func() error { return l.WatchDirectory(gctx) })
	topicsReady := make(chan struct{})
	g.Go(func() error { // topics may be created later if Kafka is down now; the API accepts meanwhile
		for {
			err := bus.EnsureTopics(gctx, busCfg)
			if err == nil {
				close(topicsReady)
				return nil
			}
			log.WarnContext(gctx, "kafka not reachable yet; the API still accepts (outbox grows)", slog.Any("error", err))
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
		}
	})
	afterTopics := func(fn func(context.Context) error) func() error {
		return func() error {
			select {
			case <-gctx.Done():
				return nil
			case <-topicsReady:
			}
			return fn(gctx)
		}
	}

	if has("relay") {
		prod := bus.NewProducer(busCfg)
		defer prod.Close()
		rl := relay.New(l, prod, relay.Config{Logger: log})
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lt_relay_publishes_total",
				Help: "Outbox batches the broker acknowledged."}, func() float64 { return float64(rl.Stats().Publishes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lt_relay_rows_total",
				Help: "Outbox rows the broker acknowledged."}, func() float64 { return float64(rl.Stats().Rows) }))
		g.Go(afterTopics(rl.Run))
		// lt.events comes from the evidence log, not from the outbox. The
		// log grows only while a sequencer runs, so a relay process runs one
		// too when it has no evidence role: sequencers are leader-elected
		// (evidence.LockSequencer), so one that the evidence role runs
		// elsewhere just stays the leader.
		g.Go(afterTopics(relay.NewEvents(l, tail, prod, relay.EventsConfig{Logger: log}).Run))
		if !has("evidence") {
			seq, err := evidence.NewSequencer(pool, evidence.SequencerConfig{Logger: log, Feed: feed})
			if err != nil {
				return err
			}
			g.Go(func() error { return seq.Run(gctx) })
		}
	}
	if has("router") {
		g.Go(afterTopics(router.New(l, router.Config{Bus: busCfg, Logger: log}).Run))
	}
	if has("delivery") {
		channels := map[string]routing.Channel{ledger.ChannelPush: &webhook.Pusher{}, ledger.ChannelPull: delivery.Inbox{}}
		if ax != nil {
			channels[ledger.ChannelAxis] = ax.Channel()
		}
		for k, v := range cfg.Channels {
			channels[k] = v
		}
		w, err := delivery.New(l, delivery.Config{Bus: busCfg, Channels: channels, Policy: cfg.Policy, Logger: log, Breaker: cfg.Breaker, AdoptAfter: 3 * cfg.StuckAfter,
			OnResult: func(ch, outcome string, _ time.Duration) { deliveries.WithLabelValues(ch, outcome).Inc() }})
		if err != nil {
			return err
		}
		g.Go(afterTopics(w.Run))
	}
	if has("scheduler") {
		s := &delivery.Scheduler{L: l, Logger: log, StuckAfter: cfg.StuckAfter}
		g.Go(func() error { return s.Run(gctx) })
		dc := cfg.Deadlines
		dc.Logger = log
		g.Go(func() error { return deadline.New(l, dc).Run(gctx) })
	}
	if has("axis") && ax != nil {
		g.Go(func() error { return ax.Run(gctx) })
	}
	if has("evidence") {
		if err := runEvidence(gctx, g, pool, cfg.Evidence, feed, log); err != nil {
			return err
		}
	}
	if has("api") {
		spool, release, err := openSpoolDir(cfg.SpoolDir, log)
		if err != nil {
			return err
		}
		defer release()
		verifier, err := verifierOf(cfg, l, spool)
		if err != nil {
			return err
		}
		svc := intake.New(l, intake.Config{Limits: envelope.Limits{MaxBytes: cfg.MaxBody}, Verifier: verifier, Logger: log})
		api := restapi.New(l, svc, restapi.Config{MaxBody: cfg.MaxBody, BlobThreshold: cfg.BlobThreshold, SpoolDir: spool, Registry: reg, Logger: log})
		mountEvidence(api, pool, cfg.Evidence)
		if cfg.Mount != nil {
			cfg.Mount(api)
		}
		srv := &http.Server{Handler: api.Handler(), TLSConfig: cfg.TLS, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 5 * time.Minute, WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		if cfg.OnListen != nil {
			cfg.OnListen(ln.Addr())
		}
		g.Go(func() error {
			var err error
			if cfg.TLS != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

func connectWithRetry(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	for attempt := 1; ; attempt++ {
		pool, err := ledger.Connect(ctx, url)
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				return pool, nil
			}
			pool.Close()
		}
		if attempt >= 30 || ctx.Err() != nil {
			return nil, fmt.Errorf("cannot reach PostgreSQL / không kết nối được PostgreSQL: %w", err)
		}
		log.WarnContext(ctx, "waiting for PostgreSQL", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// countGauge is a gauge that reads its value with count, within a second, at
// every scrape (0 when that fails).
func countGauge(name, help string, count func(context.Context) (int64, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := count(c)
		return float64(n)
	})
}
