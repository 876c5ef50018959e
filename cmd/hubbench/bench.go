package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitorus/pkcs7"
	"golang.org/x/sync/errgroup"

	"lienthong/cmd/internal/devpki"
	"lienthong/cmd/internal/sample"
	"lienthong/envelope/dsig"
	"lienthong/routing/ledger"
)

// recipient is a benchmark organ: push (served by sink) or pull (read by a client).
type recipient struct {
	code, channel, token string
}

// bench holds one run's state.
type bench struct {
	cfg    config
	target *hubTarget
	log    *slog.Logger
	http   *http.Client

	sender     string
	senderTok  string
	recipients []recipient
	docs       [][]byte

	sink   *http.Server
	sinkLn net.Listener

	mu        sync.Mutex           // guards submitted, delivered
	submitted map[string]time.Time // hub id → when the 202 arrived (t0 = request start below)
	started   map[string]time.Time // hub id → when its submission started
	delivered map[string]map[string]time.Time
	pending   map[string]time.Time // deliveries seen before the submit answer arrived (id/organ → when)
	samples   []delivery           // submit→delivered per (document, recipient), with when and to which channel
	dupes     atomic.Int64
}

func newBench(ctx context.Context, cfg config, t *hubTarget, log *slog.Logger) (*bench, error) {
	b := &bench{cfg: cfg, target: t, log: log,
		http:      &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * cfg.concurrency}},
		submitted: map[string]time.Time{}, started: map[string]time.Time{},
		delivered: map[string]map[string]time.Time{}, pending: map[string]time.Time{}}
	org := t.creds.Organs[0]
	b.sender, b.senderTok = org.Code, org.Token

	// Push endpoints, served here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.sinkLn = ln
	b.sink = &http.Server{Handler: http.HandlerFunc(b.receive), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.sink.Serve(ln) }()

	if err := b.register(ctx); err != nil {
		return nil, err
	}
	if err := b.presign(ctx, org.Cert, org.Key); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	if b.sink != nil {
		_ = b.sink.Close()
	}
}

// register puts the benchmark recipients in the hub's directory, straight
// into its ledger (a benchmark-only shortcut: the hub has no directory API
// yet), with push endpoints on this process's sink.
func (b *bench) register(ctx context.Context) error {
	pool, err := ledger.Connect(ctx, b.target.creds.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Config{})
	for i := range b.cfg.recipients {
		r := recipient{code: fmt.Sprintf("000.00.00.B%02d", i+1), channel: ledger.ChannelPush}
		if i%2 == 1 {
			r.channel = ledger.ChannelPull
		}
		o := ledger.Organ{Code: r.code, Name: fmt.Sprintf("Đơn vị đo tải %d (BENCH)", i+1), Channel: r.channel, Demo: true, Active: true}
		if r.channel == ledger.ChannelPush {
			o.Endpoint = "http://" + b.sinkLn.Addr().String() + "/" + r.code
			o.PushPipeline = b.cfg.pipeline // the sink is net/http: it takes pipelined requests in order
		}
		if err := l.UpsertOrgan(ctx, o); err != nil {
			return err
		}
		if r.channel == ledger.ChannelPull {
			r.token = fmt.Sprintf("bench-%s-%d", r.code, time.Now().UnixNano())
			if err := l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOrgan, Organ: r.code, Name: "bench"}, r.token, nil); err != nil {
				return err
			}
		}
		b.recipients = append(b.recipients, r)
	}
	return nil
}

// presign makes cfg.docs signed edXML documents of about cfg.docBytes each,
// on every core, before the clock starts.
func (b *bench) presign(ctx context.Context, certPath, keyPath string) error {
	cert, key, err := devpki.Load(devpki.Pair{Cert: certPath, Key: keyPath})
	if err != nil {
		return fmt.Errorf("sender key: %w", err)
	}
	to := make([]string, len(b.recipients))
	for i, r := range b.recipients {
		to[i] = r.code
	}
	run := time.Now().UnixNano() % 1_000_000_000
	b.docs = make([][]byte, b.cfg.docs)
	start := time.Now()
	g, _ := errgroup.WithContext(ctx)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(b.docs); i += workers {
				d := sample.Doc{From: b.sender, To: to, Number: fmt.Sprintf("%d%06d", run, i),
					Notation: "BENCH", Subject: fmt.Sprintf("Văn bản đo tải %d", i), Pad: b.cfg.docBytes}
				if b.cfg.attSig {
					d.Sign = func(att []byte) ([]byte, error) { return signDetached(att, key, cert) }
				}
				raw, err := sample.EdXMLSigned(d)
				if err != nil {
					return err
				}
				signed, err := sign(raw, key, cert)
				if err != nil {
					return err
				}
				b.docs[i] = signed
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	b.log.Info("pre-signed", "docs", len(b.docs), "bytes_each", len(b.docs[0]), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// signDetached makes a detached CMS signature (SHA-256, signed
// attributes) over content.
func signDetached(content []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	return sd.Finish()
}

func sign(raw []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	return dsig.Sign(raw, key, []*x509.Certificate{cert}, dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
}

// receive is every push endpoint: it records the first delivery of each
// (document, recipient) and answers 204 so that the hub marks it delivered.
func (b *bench) receive(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("X-Lienthong-Document-Id")
	organ := strings.TrimPrefix(r.URL.Path, "/")
	b.seen(id, organ, time.Now())
	w.WriteHeader(http.StatusNoContent)
}

func (b *bench) seen(id, organ string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.started[id]; !ok { // the answer to the submit is not back yet
		if _, dup := b.pending[id+"/"+organ]; !dup {
			b.pending[id+"/"+organ] = at
		}
		return
	}
	b.record(id, organ, at)
}

// record notes a delivery; b.mu is held.
func (b *bench) record(id, organ string, at time.Time) {
	m := b.delivered[id]
	if m == nil {
		m = map[string]time.Time{}
		b.delivered[id] = m
	}
	if _, dup := m[organ]; dup {
		b.dupes.Add(1)
		return
	}
	m[organ] = at
	b.samples = append(b.samples, delivery{start: b.started[id], lat: at.Sub(b.started[id]), channel: b.channelOf(organ)})
}

// channelOf is the channel of the benchmark recipient organ.
func (b *bench) channelOf(organ string) string {
	for _, r := range b.recipients {
		if r.code == organ {
			return r.channel
		}
	}
	return ""
}

// submitOne posts one document. t0 is when it was due: latencies count from
// there (in the closed loop it is when the request starts).
func (b *bench) submitOne(ctx context.Context, raw []byte, t0 time.Time) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.target.creds.APIURL+"/v1/documents", bytes.NewReader(raw))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.senderTok)
	req.Header.Set("Content-Type", "application/xml")
	resp, err := b.http.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	el := time.Since(t0)
	if resp.StatusCode != http.StatusAccepted {
		return "", el, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var r struct{ ID string }
	if err := json.Unmarshal(body, &r); err != nil || r.ID == "" {
		return "", el, fmt.Errorf("bad answer %q", body)
	}
	b.mu.Lock()
	b.started[r.ID] = t0
	b.submitted[r.ID] = t0.Add(el)
	for _, rc := range b.recipients {
		if at, ok := b.pending[r.ID+"/"+rc.code]; ok {
			delete(b.pending, r.ID+"/"+rc.code)
			b.record(r.ID, rc.code, at)
		}
	}
	b.mu.Unlock()
	return r.ID, el, nil
}

// pull reads one pull recipient's inbox until ctx ends, acknowledging what it takes.
func (b *bench) pull(ctx context.Context, r recipient) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.target.creds.APIURL+"/v1/inbox", nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := b.http.Do(req)
		if err != nil {
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		var inbox struct {
			Documents []struct{ ID string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&inbox)
		resp.Body.Close()
		now := time.Now()
		ids := make([]string, 0, len(inbox.Documents))
		for _, d := range inbox.Documents {
			b.seen(d.ID, r.code, now)
			ids = append(ids, d.ID)
		}
		if len(ids) > 0 { // the whole page in one acknowledgement
			body, _ := json.Marshal(map[string]any{"ids": ids})
			ack, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.target.creds.APIURL+"/v1/inbox/ack", bytes.NewReader(body))
			ack.Header.Set("Authorization", "Bearer "+r.token)
			ack.Header.Set("Content-Type", "application/json")
			if resp, err := b.http.Do(ack); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if len(inbox.Documents) == 0 {
			sleep(ctx, 20*time.Millisecond)
		}
	}
}

// dueAt is when document i of an open-loop run at rate documents/s is due.
func dueAt(start time.Time, i int64, rate float64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// schedule sends 0, 1, 2 … on due, each no earlier than dueAt, until n
// documents, stopAt or ctx's end, then closes due. When due is full (every
// submitter busy) it blocks; the documents after that keep their own due
// times, so the delay shows in the latencies.
func schedule(ctx context.Context, start, stopAt time.Time, rate float64, n int, due chan<- int64) {
	defer close(due)
	for i := int64(0); int(i) < n; i++ {
		at := dueAt(start, i, rate)
		if !at.Before(stopAt) || ctx.Err() != nil {
			return
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case due <- i:
		case <-ctx.Done():
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (b *bench) run(ctx context.Context, res *Results) error {
	res.DocBytes = len(b.docs[0])
	res.GoMaxProcs = runtime.GOMAXPROCS(0)
	pullCtx, stopPull := context.WithCancel(ctx)
	defer stopPull()
	var pullers sync.WaitGroup
	for _, r := range b.recipients {
		if r.channel == ledger.ChannelPull {
			pullers.Add(1)
			go func() { defer pullers.Done(); b.pull(pullCtx, r) }()
		}
	}

	var before procUsage
	if b.target.cmd != nil {
		before, _ = usage(b.target.cmd.Process.Pid)
	}
	selfBefore, machineBefore := selfCPU(), machineCPU()
	var (
		next      atomic.Int64
		late      atomic.Int64
		submitLat = make([][]time.Duration, b.cfg.concurrency)
		failed    atomic.Int64
		errMu     sync.Mutex
		errs      []string
	)
	start := time.Now()
	stopAt := start.Add(b.cfg.duration)
	submit := func(w int, i int64, due time.Time) {
		_, el, err := b.submitOne(ctx, b.docs[i], due)
		if err != nil {
			failed.Add(1)
			errMu.Lock()
			if len(errs) < 10 {
				errs = append(errs, err.Error())
			}
			errMu.Unlock()
			return
		}
		submitLat[w] = append(submitLat[w], el)
	}
	var wg sync.WaitGroup
	if b.cfg.rate > 0 {
		// Open loop: document i is due at start + i/rate. A due document
		// waits for a free submitter, and its latencies count that wait.
		due := make(chan int64, b.cfg.concurrency)
		go schedule(ctx, start, stopAt, b.cfg.rate, len(b.docs), due)
		for w := range b.cfg.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range due {
					at := dueAt(start, i, b.cfg.rate)
					if time.Since(at) > 10*time.Millisecond {
						late.Add(1)
					}
					next.Add(1)
					submit(w, i, at)
				}
			}()
		}
	} else {
		for w := range b.cfg.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(stopAt) {
					i := next.Add(1) - 1
					if int(i) >= len(b.docs) {
						return
					}
					submit(w, i, time.Now())
				}
			}()
		}
	}
	wg.Wait()
	submitEnd := time.Now()
	b.mu.Lock()
	accepted := len(b.submitted)
	b.mu.Unlock()
	if int(next.Load()) >= len(b.docs) && submitEnd.Before(stopAt) {
		res.Note = fmt.Sprintf("ran out of pre-signed documents after %.1f s (raise --docs)", submitEnd.Sub(start).Seconds())
	}

	// Let the deliveries drain: up to 60 s after the last submission.
	want := accepted * len(b.recipients)
	drainUntil := time.Now().Add(60 * time.Second)
	lastDelivery := submitEnd
	for time.Now().Before(drainUntil) && ctx.Err() == nil {
		b.mu.Lock()
		n := len(b.samples)
		b.mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	for _, m := range b.delivered {
		for _, at := range m {
			if at.After(lastDelivery) {
				lastDelivery = at
			}
		}
	}
	full := 0
	for id := range b.submitted {
		if len(b.delivered[id]) == len(b.recipients) {
			full++
		}
	}
	samples := slices.Clone(b.samples)
	b.mu.Unlock()
	stopPull()
	pullers.Wait()

	if b.target.cmd != nil {
		after, err := usage(b.target.cmd.Process.Pid)
		if err == nil {
			res.HubCPUS = (after.cpu - before.cpu).Seconds()
			res.HubdCPUS = (after.hubCPU - before.hubCPU).Seconds()
			res.PeakRSSMB = float64(after.hubHWM) / (1 << 20)
			res.PostgresPeakRSSMB = after.postgresMB
		}
	}
	res.LoadgenCPUS = (selfCPU() - selfBefore).Seconds()
	res.MachineCPUS = (machineCPU() - machineBefore).Seconds()
	res.Late = int(late.Load())
	var sl []time.Duration
	for _, s := range submitLat {
		sl = append(sl, s...)
	}
	submitWindow := submitEnd.Sub(start).Seconds()
	deliverWindow := lastDelivery.Sub(start).Seconds()
	res.DurationS = submitWindow
	res.Submitted = int(next.Load())
	if res.Submitted > len(b.docs) {
		res.Submitted = len(b.docs)
	}
	res.Accepted, res.Failed = accepted, int(failed.Load())
	lat := make([]time.Duration, len(samples))
	for i, s := range samples {
		lat[i] = s.lat
	}
	res.DeliveredDocs, res.DeliveredPairs = full, len(lat)
	res.AcceptedPerS = float64(accepted) / submitWindow
	if deliverWindow > 0 {
		res.DeliveredPerS = float64(full) / deliverWindow
	}
	res.P50SubmitMs, res.P95SubmitMs, res.P99SubmitMs = pct(sl, 50), pct(sl, 95), pct(sl, 99)
	res.P50SubmitToDeliveredMs, res.P95SubmitToDeliveredMs, res.P99SubmitToDeliveredMs = pct(lat, 50), pct(lat, 95), pct(lat, 99)
	res.ByChannel, res.Timeline = tails(samples, start)
	if accepted > 0 {
		res.CPUSPerDoc = res.HubCPUS / float64(accepted)
	}
	res.Errors = errs
	if d := b.dupes.Load(); d > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d duplicate deliveries seen", d))
	}
	if full < accepted {
		res.Errors = append(res.Errors, fmt.Sprintf("%d of %d accepted documents not fully delivered within 60 s of the last submission", accepted-full, accepted))
	}
	if accepted == 0 {
		return errors.New("nothing was accepted: " + strings.Join(errs, "; "))
	}
	return nil
}

// pct returns the p-th percentile in milliseconds (nearest rank).
func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
