package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/ledger"
)

// LockTimestamper is held by the one running Timestamper.
const LockTimestamper = 0x4c54_4556_5453 // "LTEVTS"

// TimestamperConfig tunes a Timestamper.
type TimestamperConfig struct {
	URL       string        // the TSA's RFC 3161 HTTP endpoint; required
	Timeout   time.Duration // per request; default 20s
	Interval  time.Duration // how often to look for an unstamped checkpoint; default 5s
	LockRetry time.Duration // default 2s
	Client    *http.Client  // nil: a client with Timeout
	Logger    *slog.Logger
}

// Timestamper obtains RFC 3161 timestamps on the latest checkpoint from a
// TSA, asynchronously: it runs on its own, never inside the path of a
// document or of the checkpointer, so a slow, failing or hanging TSA delays
// only the timestamps, never traffic or checkpoints. It stamps the newest
// checkpoint without a timestamp (older ones are covered by consistency
// proofs to it) over SHA-256 of the signed note's bytes.
type Timestamper struct {
	pool *pgxpool.Pool
	cfg  TimestamperConfig
}

// NewTimestamper returns a Timestamper; nothing runs before Run.
func NewTimestamper(pool *pgxpool.Pool, cfg TimestamperConfig) (*Timestamper, error) {
	if cfg.URL == "" {
		return nil, errors.New("evidence: timestamper: no TSA URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = 2 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Timestamper{pool: pool, cfg: cfg}, nil
}

// Run stamps checkpoints until ctx ends, while holding LockTimestamper.
func (t *Timestamper) Run(ctx context.Context) error {
	lead := ledger.New(t.pool, ledger.Config{Logger: t.cfg.Logger})
	return lead.RunAsLeader(ctx, LockTimestamper, t.cfg.LockRetry, func(ctx context.Context) error {
		for {
			if _, err := t.StampLatest(ctx); err != nil && ctx.Err() == nil {
				t.cfg.Logger.WarnContext(ctx, "evidence timestamp failed; traffic is not affected", slog.Any("error", err))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(t.cfg.Interval):
			}
		}
	})
}

// StampLatest timestamps the newest checkpoint if it has no timestamp yet,
// and reports whether it stored one.
func (t *Timestamper) StampLatest(ctx context.Context) (bool, error) {
	var size int64
	var noteText string
	err := t.pool.QueryRow(ctx, `SELECT c.size, c.note FROM log_checkpoints c
		WHERE NOT EXISTS (SELECT 1 FROM log_timestamps s WHERE s.size = c.size)
		  AND c.size = (SELECT max(size) FROM log_checkpoints)`).Scan(&size, &noteText)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("evidence: timestamp: latest checkpoint: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	ts, err := RequestTimestamp(rctx, t.cfg.Client, t.cfg.URL, []byte(noteText))
	if err != nil {
		return false, err
	}
	if _, err := t.pool.Exec(ctx, `INSERT INTO log_timestamps (size, token, tsa, gen_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size) DO NOTHING`, size, ts.RawToken, t.cfg.URL, ts.Time.UTC()); err != nil {
		return false, fmt.Errorf("evidence: timestamp: store: %w", err)
	}
	return true, nil
}

// maxTSAReply bounds a TSA's answer.
const maxTSAReply = 1 << 20

// RequestTimestamp asks the TSA at url for an RFC 3161 timestamp over
// SHA-256(data) and checks that the answer is granted, verifies, and covers
// data and the request's nonce.
func RequestTimestamp(ctx context.Context, client *http.Client, url string, data []byte) (*timestamp.Timestamp, error) {
	sum := sha256.Sum256(data)
	req := timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Certificates: true}
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	req.Nonce = new(big.Int).SetBytes(nonce)
	der, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("evidence: timestamp request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return nil, fmt.Errorf("evidence: timestamp request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("evidence: TSA %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTSAReply+1))
	if err != nil {
		return nil, fmt.Errorf("evidence: TSA %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || len(body) > maxTSAReply {
		return nil, fmt.Errorf("evidence: TSA %s answered HTTP %d (%d bytes)", url, resp.StatusCode, len(body))
	}
	ts, err := timestamp.ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("evidence: TSA %s: %w", url, err)
	}
	if !bytes.Equal(ts.HashedMessage, sum[:]) || ts.Nonce == nil || ts.Nonce.Cmp(req.Nonce) != 0 {
		return nil, fmt.Errorf("evidence: TSA %s: the token does not cover the request", url)
	}
	return ts, nil
}
