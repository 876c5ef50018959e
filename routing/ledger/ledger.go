package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound     = errors.New("ledger: not found")
	ErrUnknownOrgan = errors.New("ledger: unknown organ")
	// ErrConflict: the sender already submitted a different document under
	// the same DocumentId.
	ErrConflict = errors.New("ledger: document id already used with other content")
	// ErrUnavailable: the database cannot be reached; the caller should
	// answer 503 and accept nothing.
	ErrUnavailable = errors.New("ledger: database unavailable")
)

// Logical topics. The relay maps them to Kafka topic names. TopicRoute and
// TopicDeliver (and TopicDead, TopicSecurity) travel through the outbox;
// TopicEvents does not: the relay publishes it from the evidence log, which
// holds every committed event in order (routing/relay.Events).
const (
	TopicRoute   = "route"
	TopicDeliver = "deliver"
	TopicEvents  = "events"
)

// Delivery states (ARCHITECTURE.md, "Document states").
const (
	StateAccepted     = "accepted"
	StateRouted       = "routed"
	StateDelivering   = "delivering"
	StateDelivered    = "delivered"
	StateAcknowledged = "acknowledged"
	StateRetrying     = "retrying"
	StateDead         = "dead"
)

// Config tunes a Ledger.
type Config struct {
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
	// AcceptBatch bounds how many concurrent accepts share one transaction
	// (group commit, accept_batch.go); 0: DefaultAcceptBatch, 1: none.
	AcceptBatch int
	// AcceptFlushers bounds the batch transactions in flight; 0: DefaultAcceptFlushers.
	AcceptFlushers int
	// DirectoryTTL is how long Organ answers from its cache; 0:
	// DefaultDirectoryTTL, negative: no cache (directory_cache.go).
	DirectoryTTL time.Duration
	// InboxOnRoute lets Route deliver pull (inbox) deliveries in the routing
	// transaction itself, when no earlier delivery to the same recipient
	// still waits for its first attempt (routebatch.go): accepted becomes
	// delivered with its routed, delivering and delivered events, and no
	// delivery task is queued. The hub turns it on: its pull channel is the
	// ledger state (delivery.Inbox). Off, pull deliveries are routed and the
	// delivery stage delivers them (ledger.DeliverInstant).
	InboxOnRoute bool
	// RouteOnAccept lets the accept transaction of a group-committed
	// document route it as well (accept_batch.go): each recipient the
	// directory resolves gets its delivery inserted routed, with its channel,
	// the routed event and its lt.deliver task, and with InboxOnRoute a pull
	// delivery is put in the inbox at once when the order per recipient
	// allows. What cannot be routed there (a recipient the directory does not
	// resolve now, a channel the ledger does not know, documents of the other
	// flows) keeps the lt.route message and the router. The hub turns it on.
	RouteOnAccept bool
	// OnInboxDelivered, if set, is told how many deliveries Route (or, with
	// RouteOnAccept, Accept) delivered to inboxes (for the delivery metrics).
	OnInboxDelivered func(n int)
}

// Ledger is the PostgreSQL-backed record. It is safe for concurrent use.
type Ledger struct {
	pool *pgxpool.Pool
	now  func() time.Time
	log  *slog.Logger

	inboxOnRoute     bool
	routeOnAccept    bool
	onInboxDelivered func(n int)

	stats acceptCounters  // accept_stats.go
	batch *committer      // accept_batch.go
	dir   *directoryCache // directory_cache.go
	known knownEvidence   // verification.go

	commits commitSignal // notify.go
}

// New wraps an open pool. Run Migrate first.
func New(pool *pgxpool.Pool, cfg Config) *Ledger {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{pool: pool, now: cfg.Now, log: cfg.Logger, inboxOnRoute: cfg.InboxOnRoute,
		routeOnAccept: cfg.RouteOnAccept, onInboxDelivered: cfg.OnInboxDelivered}
	if l.onInboxDelivered == nil {
		l.onInboxDelivered = func(int) {}
	}
	l.batch = newCommitter(l, cfg.AcceptBatch, cfg.AcceptFlushers)
	l.dir = newDirectoryCache(cfg.DirectoryTTL)
	l.commits = make(commitSignal, 1)
	return l
}

// Connect opens a pool for url with settings suited to the hub.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("ledger: parse database URL: %w", err)
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: connect: %w", err)
	}
	return pool, nil
}

// Pool returns the underlying pool (for leader election and health checks).
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// Ping reports whether the database answers.
func (l *Ledger) Ping(ctx context.Context) error {
	if err := l.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Event is one entry of a document's history.
type Event struct {
	ID         int64           `json:"id"`
	DocumentID string          `json:"document_id"`
	Recipient  string          `json:"recipient,omitempty"`
	Kind       string          `json:"kind"`
	State      string          `json:"state,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	At         time.Time       `json:"at"`
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appendEvent records an event in tx. Every committed event becomes a leaf
// of the evidence log, and lt.events is published from that log
// (routing/relay.Events): no outbox row.
func (l *Ledger) appendEvent(ctx context.Context, tx querier, docID, recipient, kind, state string, detail any, at time.Time) error {
	d := []byte("{}")
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			return fmt.Errorf("event detail: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (document_id, recipient, kind, state, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6)`, docID, recipient, kind, state, d, at); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// enqueue writes an outbox row in tx.
func enqueue(ctx context.Context, tx querier, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("outbox payload: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)`, topic, key, b); err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction and maps connection failures to ErrUnavailable.
func (l *Ledger) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return classify(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(err)
	}
	l.commits.committed() // wakes the outbox relay (notify.go)
	return nil
}

// classify marks errors that mean "the database is not there".
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Server-side errors: the database is there. 57P0x: shutting down.
		if len(pgErr.Code) == 5 && pgErr.Code[:4] == "57P0" {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if pgconn.SafeToRetry(err) || isConnErr(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

func isConnErr(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.Timeout(err)
}
