package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Delivery channels of an organ.
const (
	ChannelPush    = "push"    // webhook: the hub POSTs each document to Endpoint
	ChannelPull    = "pull"    // inbox: the organ fetches and acknowledges
	ChannelAxis    = "axis"    // the national document-exchange axis
	ChannelPartner = "partner" // a partner parliament
)

// Organ is a directory entry.
type Organ struct {
	Code             string   `json:"code"`
	Name             string   `json:"name"`
	Channel          string   `json:"delivery"`
	Endpoint         string   `json:"endpoint,omitempty"`
	OldCodes         []string `json:"old_codes,omitempty"`
	CertFingerprints []string `json:"cert_fingerprints,omitempty"`
	Demo             bool     `json:"demo,omitempty"`
	Active           bool     `json:"active"`
	// PushPipeline is how many pushes to Endpoint may be on the wire at
	// once, written one after another on one connection before the first
	// is answered (HTTP/1.1 pipelining: the endpoint takes and answers them
	// in order, so it sees the same sequence as one push at a time). 1,
	// and 0 as read: one at a time (UpsertOrgan keeps the organ's for 0);
	// at most MaxPushPipeline. Set it only for an
	// endpoint known to take pipelined requests; one that hangs up on them
	// costs a reconnection per run, not a document.
	PushPipeline int `json:"push_pipeline,omitempty"`
}

// MaxPushPipeline bounds Organ.PushPipeline.
const MaxPushPipeline = 64

// UpsertOrgan creates or replaces a directory entry. A PushPipeline of 0
// keeps the organ's (1 for a new organ), so that a directory file that does
// not name it leaves an operator's setting (SetLimits) alone.
func (l *Ledger) UpsertOrgan(ctx context.Context, o Organ) error {
	switch o.Channel {
	case ChannelPush, ChannelPull, ChannelAxis, ChannelPartner:
	default:
		return fmt.Errorf("ledger: organ %s: unknown channel %q", o.Code, o.Channel)
	}
	if o.OldCodes == nil {
		o.OldCodes = []string{}
	}
	if o.CertFingerprints == nil {
		o.CertFingerprints = []string{}
	}
	if o.PushPipeline < 0 || o.PushPipeline > MaxPushPipeline {
		return fmt.Errorf("ledger: organ %s: push_pipeline %d out of 0…%d", o.Code, o.PushPipeline, MaxPushPipeline)
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO organs (code, name, channel, endpoint, old_codes, cert_fingerprints, demo, active,
			push_pipeline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce(nullif($9::smallint, 0), 1))
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, channel = EXCLUDED.channel,
			endpoint = EXCLUDED.endpoint, old_codes = EXCLUDED.old_codes,
			cert_fingerprints = EXCLUDED.cert_fingerprints, demo = EXCLUDED.demo,
			active = EXCLUDED.active, push_pipeline = coalesce(nullif($9::smallint, 0), organs.push_pipeline),
			updated_at = now()`,
		o.Code, o.Name, o.Channel, o.Endpoint, o.OldCodes, o.CertFingerprints, o.Demo, o.Active, o.PushPipeline)
	l.dir.invalidate()
	if err != nil {
		return fmt.Errorf("ledger: upsert organ %s: %w", o.Code, classify(err))
	}
	return nil
}

const organCols = `code, name, channel, endpoint, old_codes, cert_fingerprints, demo, active, push_pipeline`

func scanOrgan(row pgx.Row) (Organ, error) {
	var o Organ
	var window int16
	err := row.Scan(&o.Code, &o.Name, &o.Channel, &o.Endpoint, &o.OldCodes, &o.CertFingerprints, &o.Demo, &o.Active, &window)
	if window > 1 {
		o.PushPipeline = int(window)
	}
	return o, err
}

// Organ looks an active organ up by its code or one of its old codes. It
// answers from a cache for up to Config.DirectoryTTL (directory_cache.go).
func (l *Ledger) Organ(ctx context.Context, code string) (Organ, error) {
	return l.cachedOrganLookup(ctx, code)
}

// lookupOrgan is Organ without the cache.
func (l *Ledger) lookupOrgan(ctx context.Context, code string) (Organ, error) {
	o, err := scanOrgan(l.pool.QueryRow(ctx, `SELECT `+organCols+` FROM organs
		WHERE active AND (code = $1 OR $1 = ANY (old_codes)) ORDER BY code = $1 DESC LIMIT 1`, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return Organ{}, fmt.Errorf("%w: %s", ErrUnknownOrgan, code)
	}
	if err != nil {
		return Organ{}, fmt.Errorf("ledger: organ %s: %w", code, classify(err))
	}
	return o, nil
}

// Organs lists the directory.
func (l *Ledger) Organs(ctx context.Context) ([]Organ, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+organCols+` FROM organs ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("ledger: organs: %w", classify(err))
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Organ, error) { return scanOrgan(r) })
}

// Roles a principal can have.
const (
	RoleOrgan    = "organ"
	RoleAuditor  = "auditor"
	RoleOperator = "operator"
)

// Principal is an authenticated caller: an organ, the auditor or an operator.
type Principal struct {
	ID    int64
	Kind  string // RoleOrgan, RoleAuditor, RoleOperator
	Organ string // set when Kind == RoleOrgan
	Name  string
}

// HashToken is how tokens are stored: SHA-256 of the token text. Tokens are
// 256-bit random values, so a fast hash is enough (no password stretching).
func HashToken(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

// AddPrincipal stores a credential: a token (hashed here), a client
// certificate fingerprint (SHA-256 of its DER), or both. Re-adding the same
// credential is a no-op.
func (l *Ledger) AddPrincipal(ctx context.Context, p Principal, token string, certSHA256 []byte) error {
	var tok []byte
	if token != "" {
		tok = HashToken(token)
	}
	return l.AddPrincipalHashed(ctx, p, tok, certSHA256)
}

// AddPrincipalHashed stores a credential given the token's SHA-256 (see HashToken).
func (l *Ledger) AddPrincipalHashed(ctx context.Context, p Principal, tokenSHA256, certSHA256 []byte) error {
	tok := tokenSHA256
	if len(tok) == 0 {
		tok = nil
	}
	if len(certSHA256) == 0 {
		certSHA256 = nil
	}
	var organ any
	if p.Kind == RoleOrgan {
		organ = p.Organ
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO principals (kind, organ, name, token_sha256, cert_sha256)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, p.Kind, organ, p.Name, tok, certSHA256)
	l.dir.invalidate()
	if err != nil {
		return fmt.Errorf("ledger: add principal: %w", classify(err))
	}
	return nil
}

// principal authenticates a credential: a principal it found is kept for
// up to Config.DirectoryTTL, like the directory's organs (directory_cache.go),
// so that a credential removed by another process is refused at most that
// much later; an unknown credential is never cached. The cache key is the
// credential's hash, never the token.
func (l *Ledger) principal(ctx context.Context, col string, v []byte) (Principal, error) {
	key := col + ":" + string(v)
	now := time.Now()
	p, ok, gen := l.dir.getPrincipal(key, now)
	if ok {
		return p, nil
	}
	p, err := l.lookupPrincipal(ctx, col, v)
	if err != nil {
		return p, err
	}
	l.dir.putPrincipal(key, p, gen, now)
	return p, nil
}

func (l *Ledger) lookupPrincipal(ctx context.Context, col string, v []byte) (Principal, error) {
	var p Principal
	var organ *string
	err := l.pool.QueryRow(ctx, `SELECT id, kind, organ, name FROM principals WHERE `+col+` = $1 AND revoked_at IS NULL`, v).
		Scan(&p.ID, &p.Kind, &organ, &p.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrNotFound
	}
	if err != nil {
		return Principal{}, fmt.Errorf("ledger: principal: %w", classify(err))
	}
	if organ != nil {
		p.Organ = *organ
	}
	return p, nil
}

// PrincipalByToken authenticates a bearer token.
func (l *Ledger) PrincipalByToken(ctx context.Context, token string) (Principal, error) {
	return l.principal(ctx, "token_sha256", HashToken(token))
}

// PrincipalByCert authenticates a client certificate by the SHA-256 of its DER.
func (l *Ledger) PrincipalByCert(ctx context.Context, certSHA256 []byte) (Principal, error) {
	return l.principal(ctx, "cert_sha256", certSHA256)
}
