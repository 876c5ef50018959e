// Package axishub connects the national document-exchange axis to the hub's
// path: it is the axis edge of ARCHITECTURE.md's diagram in both directions.
//
// Inbound, one poller per configured axis system (leader-elected per system
// through a PostgreSQL advisory lock; several hub processes may run it) lists
// the edocs and statuses waiting on the axis, fetches each, and hands the
// exact bytes to the shared accept path (routing/intake) with channel "axis"
// and the idempotency key "axis:<systemid>:<docId>" (documents.source is
// unique). Only after the accept transaction has committed does it call
// updateStatus(done); a package the hub refuses is marked fail with the
// reason. A status package from an axis organ also becomes an event of the
// NA document it is about.
//
// Outbound, Channel is the routing.Channel for organs whose directory channel
// is "axis": it sends the original bytes with sendEdoc (messagetype edoc or
// status), or, for a hub envelope, an edXML wrapper that carries the original
// bytes untouched as its attachment. When a document from the axis reached an
// NA recipient, the bridge sends the 01 ("đã đến") status back to the sender.
//
// Directory sync keeps the axis organs (getAgenciesList: code, name, old
// code) in the directory with channel "axis", so that old and new (QĐ
// 20/2020) codes of one organ resolve to one organ.
//
// The trace hop. The envelope signature of edXML (edxml.md §6) is an
// enveloped signature over Reference URI="": it covers the whole package,
// TraceHeaderList included. Appending a TraceHeader to the bytes would break
// any such signature and re-serialise signed bytes (ARCHITECTURE.md principle
// 3), so the hub never does it: its hop is recorded beside the bytes, as the
// "trace_hop" of the axis_sent event ({organ_id: systemid, timestamp}); only
// packages the hub writes itself (its status packages and the wrapper of a
// hub envelope) carry the hub's TraceHeader inside.
package axishub

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"lienthong/adapters/axis"
	"lienthong/envelope"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// System is one axis system the hub connects as.
type System struct {
	ID     string `json:"systemid"`
	Secret string `json:"secret"`
	// Organs are the NA organs this system sends for; empty means any organ
	// no other system claims. Inbound it reads whatever the axis queues for it.
	Organs []string `json:"organs,omitempty"`
}

// Defaults of Config.
const (
	DefaultPollInterval = 30 * time.Second
	DefaultSyncInterval = time.Hour
	leaderRetry         = 2 * time.Second
)

// Config configures a Bridge.
type Config struct {
	Endpoint     string
	Systems      []System
	PollInterval time.Duration // between polls; default DefaultPollInterval
	SyncInterval time.Duration // between directory syncs; default DefaultSyncInterval
	// SendArrived sends the 01 status for each NA recipient a document from
	// the axis reached (default true; set false when NA agencies send their own 01).
	SendArrived *bool
	Limits      envelope.Limits
	// Client adjusts each axis.Config (timeouts, retries, HTTP client).
	Client func(*axis.Config)
	Now    func() time.Time
	Logger *slog.Logger
}

// Bridge runs the axis edge. It is safe for concurrent use.
type Bridge struct {
	l       *ledger.Ledger
	svc     *intake.Service
	cfg     Config
	clients map[string]*axis.Client // by systemid
	log     *slog.Logger

	syncMu sync.Mutex // serialises directory syncs
}

// New checks cfg and builds one client per system; nothing runs before Run.
func New(l *ledger.Ledger, svc *intake.Service, cfg Config) (*Bridge, error) {
	if len(cfg.Systems) == 0 {
		return nil, errors.New("axishub: no axis system configured")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.SendArrived == nil {
		yes := true
		cfg.SendArrived = &yes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{l: l, svc: svc, cfg: cfg, clients: map[string]*axis.Client{}, log: cfg.Logger.With(slog.String("edge", "axis"))}
	for _, s := range cfg.Systems {
		if _, dup := b.clients[s.ID]; dup {
			return nil, fmt.Errorf("axishub: system %q configured twice", s.ID)
		}
		ac := axis.Config{Endpoint: cfg.Endpoint, SystemID: s.ID, Secret: s.Secret, Now: cfg.Now, Logger: b.log}
		if cfg.Client != nil {
			cfg.Client(&ac)
		}
		c, err := axis.New(ac)
		if err != nil {
			return nil, fmt.Errorf("axishub: system %q: %w", s.ID, err)
		}
		b.clients[s.ID] = c
	}
	return b, nil
}

// Run polls every system (as leader of its lock), syncs the directory and
// sends arrival statuses until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range b.cfg.Systems {
		g.Go(func() error {
			return b.l.RunAsLeader(gctx, lockKey(s.ID), leaderRetry, func(lctx context.Context) error {
				return b.serve(lctx, s.ID, i == 0)
			})
		})
	}
	return g.Wait()
}

// lockKey is the advisory-lock key of a system's poller: "LTAX" and a hash.
func lockKey(systemID string) int64 {
	h := fnv.New32a()
	h.Write([]byte(systemID))
	return 0x4c54_4158<<32 | int64(h.Sum32())
}

func (b *Bridge) serve(ctx context.Context, systemID string, syncs bool) error {
	log := b.log.With(slog.String("systemid", systemID))
	poller := &axis.Poller{Client: b.clients[systemID], Acceptor: b, IsPermanent: IsPermanent, Logger: log}
	var lastSync time.Time
	for {
		if syncs && (lastSync.IsZero() || b.cfg.Now().Sub(lastSync) >= b.cfg.SyncInterval) {
			if n, err := b.SyncDirectory(ctx); err != nil {
				log.WarnContext(ctx, "axis directory sync failed", slog.Any("err", err))
			} else {
				lastSync = b.cfg.Now()
				if n > 0 {
					log.InfoContext(ctx, "axis directory synced", slog.Int("changed", n))
				}
			}
		}
		if _, err := poller.PollOnce(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "axis poll incomplete", slog.Any("err", err))
		}
		if *b.cfg.SendArrived {
			if _, err := b.SendArrivals(ctx, systemID); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "axis arrival statuses incomplete", slog.Any("err", err))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(b.cfg.PollInterval):
		}
	}
}

// IsPermanent reports the accept-path refusals that will never succeed: a
// typed envelope or intake error. Database and network failures are transient.
func IsPermanent(err error) bool {
	var ie *intake.Error
	return envelope.CodeOf(err) != "" || errors.As(err, &ie)
}

// Source is the documents.source key of an axis package.
func Source(systemID, axisDocID string) string { return "axis:" + systemID + ":" + axisDocID }

// AcceptFromAxis implements axis.Acceptor: the accept path for one package.
// It is idempotent on (systemID, axisDocID) through documents.source.
func (b *Bridge) AcceptFromAxis(ctx context.Context, systemID, axisDocID string, raw []byte) (string, error) {
	if doc, err := envelope.Parse(raw, b.cfg.Limits); err == nil {
		if err := b.checkSender(ctx, doc.From.Code); err != nil {
			return "", err
		}
	} // a parse error is refused, and logged, by Submit below
	res, err := b.svc.Submit(ctx, intake.Submission{Raw: raw, Channel: ledger.ChannelAxis, Source: Source(systemID, axisDocID),
		ExcludeChannel: ledger.ChannelAxis}) // the axis itself delivers to the other axis recipients
	if err != nil {
		return "", err
	}
	in := ledger.AxisInbound{SystemID: systemID, AxisDocID: axisDocID, DocumentID: res.ID}
	if d := res.Document; d != nil && d.Status != nil {
		from := d.From.Code
		if o, err := b.l.Organ(ctx, from); err == nil {
			from = o.Code
		}
		for _, rf := range d.ResponseFor {
			if rf.OrganID != "" && rf.DocumentID != "" {
				// edxml.md §8.3: ResponseFor/OrganId is the addressee. For
				// 01–06, 15, 16 (from the receiver) it is the original's
				// sender; for 13 (the sender asks to take its document back)
				// From is the original's sender and the event belongs to the
				// receiver named in ResponseFor/OrganId.
				origSender, row := rf.OrganID, from
				if d.Status.Code == "13" {
					origSender, row = d.From.Code, rf.OrganID
					if o, err := b.l.Organ(ctx, row); err == nil {
						row = o.Code
					}
				}
				in.Status = &ledger.AxisStatus{OrigSender: origSender, OrigDocRef: rf.DocumentID, From: row,
					Code: d.Status.Code, Description: d.Status.Description, Timestamp: d.Status.Timestamp}
				break
			}
		}
	}
	original, err := b.l.RecordAxisInbound(ctx, in)
	if err != nil {
		return "", err // transient: the package stays on the axis; Submit is idempotent
	}
	if in.Status != nil && original == "" {
		b.log.InfoContext(ctx, "axis status about a document the hub does not know",
			slog.String("original", in.Status.OrigDocRef), slog.String("code", in.Status.Code))
	}
	return res.ID, nil
}

// checkSender refuses a package whose sender is not an axis organ: the axis
// may not speak for NA organs. An unknown sender triggers one directory sync.
func (b *Bridge) checkSender(ctx context.Context, code string) error {
	o, err := b.l.Organ(ctx, code)
	if errors.Is(err, ledger.ErrUnknownOrgan) {
		if _, serr := b.SyncDirectory(ctx); serr != nil {
			return fmt.Errorf("axishub: sender %s unknown and the directory sync failed: %w", code, serr)
		}
		o, err = b.l.Organ(ctx, code)
	}
	if errors.Is(err, ledger.ErrUnknownOrgan) {
		return &intake.Error{Code: intake.CodeUnknownSender, Msg: fmt.Sprintf("sender organ %s is not registered on the axis", code)}
	}
	if err != nil {
		return err
	}
	if o.Channel != ledger.ChannelAxis {
		return &intake.Error{Code: intake.CodeForbiddenSender,
			Msg: fmt.Sprintf("the axis may not submit as %s, which is served through channel %s", o.Code, o.Channel)}
	}
	return nil
}

// SyncDirectory copies getAgenciesList into the directory (channel axis) and
// returns how many entries changed. Entries with an invalid code are skipped;
// organs served by another channel are left alone.
func (b *Bridge) SyncDirectory(ctx context.Context) (int, error) {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	agencies, err := b.clients[b.cfg.Systems[0].ID].GetAgenciesList(ctx)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, a := range agencies {
		code := strings.TrimSpace(a.Code)
		if _, err := envelope.ValidateOrganCode(code); err != nil {
			b.log.WarnContext(ctx, "axis agency skipped", slog.String("code", code), slog.Any("err", err))
			continue
		}
		var old []string
		if oc := strings.TrimSpace(a.OldCode); oc != "" && oc != code {
			if _, err := envelope.ValidateOrganCode(oc); err == nil {
				old = append(old, oc)
			}
		}
		name := strings.TrimSpace(a.Name)
		if name == "" {
			name = code
		}
		ok, err := b.l.UpsertAxisOrgan(ctx, code, name, old)
		if err != nil {
			return changed, err
		}
		if ok {
			changed++
		}
	}
	return changed, nil
}

// SendArrivals sends the 01 status for every document that came through
// systemID and reached an NA recipient, once per (document, recipient).
func (b *Bridge) SendArrivals(ctx context.Context, systemID string) (int, error) {
	due, err := b.l.AxisArrivalsDue(ctx, systemID, 100)
	if err != nil {
		return 0, err
	}
	c := b.clients[systemID]
	sent := 0
	var errs []error
	for _, a := range due {
		raw, err := axis.BuildStatus(axis.StatusPackage{
			From: envelope.Organ{Code: a.Recipient, Name: a.RecipientName},
			ResponseFor: envelope.ResponseFor{OrganID: a.Sender, Code: a.CodeNumber + "/" + a.CodeNotation,
				PromulgationDate: a.PromulgationDate, DocumentID: a.DocRef},
			Department: "Lienthong", Staff: "Lienthong (tự động / automatic)", Code: "01",
			Description: "Đã đến - Phần mềm đã nhận nhưng văn thư chưa xử lý / arrived, not yet registered",
			Time:        b.cfg.Now(),
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		axisID, err := c.SendEdoc(ctx, raw, axis.MessageTypeStatus, []string{a.Sender})
		if err != nil {
			errs = append(errs, fmt.Errorf("status 01 for %s to %s: %w", a.DocumentID, a.Sender, err))
			continue
		}
		if err := b.l.RecordAxisOutbound(ctx, ledger.AxisOutbound{Key: ledger.ArrivalKey(a.DocumentID, a.Recipient),
			DocumentID: a.DocumentID, Recipient: a.Recipient, MessageType: axis.MessageTypeStatus, SystemID: systemID,
			AxisDocID: axisID, EventKind: ledger.EventAxisStatusSent, Arrival: true,
			Detail: map[string]any{"code": "01", "to": a.Sender}}); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// systemFor picks the system that sends for organ: the one that lists it,
// else the first that lists no organ, else the first.
func (b *Bridge) systemFor(organ string) string {
	for _, s := range b.cfg.Systems {
		if slices.Contains(s.Organs, organ) {
			return s.ID
		}
	}
	for _, s := range b.cfg.Systems {
		if len(s.Organs) == 0 {
			return s.ID
		}
	}
	return b.cfg.Systems[0].ID
}
