package evidence

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// SequencerConfig tunes a Sequencer. Zero values take the defaults shown.
type SequencerConfig struct {
	BatchSize int           // events per transaction; default 1000
	Idle      time.Duration // sleep when there is nothing to do; default 200ms
	// Blocked is the sleep when the next event id is missing but later ones
	// are visible: usually a transaction about to commit, so the log (and
	// lt.events, published from it) waits for it only briefly; default 20ms.
	Blocked    time.Duration
	Settle     time.Duration // least age of a gap before it may be skipped; default 2s
	GapTimeout time.Duration // age after which a gap is skipped whatever holds it; default 30s
	LockRetry  time.Duration // how often a follower tries for the leader lock; default 2s
	Now        func() time.Time
	Logger     *slog.Logger
	// Feed, if not nil, receives every batch this Sequencer commits, for a
	// Tail of the same process (Tail.WithFeed).
	Feed *Feed
}

func (c *SequencerConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.Idle <= 0 {
		c.Idle = 200 * time.Millisecond
	}
	if c.Blocked <= 0 {
		c.Blocked = 20 * time.Millisecond
	}
	c.Blocked = min(c.Blocked, c.Idle)
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.GapTimeout <= 0 {
		c.GapTimeout = 30 * time.Second
	}
	if c.LockRetry <= 0 {
		c.LockRetry = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *SequencerConfig) validate() error {
	if c.GapTimeout < c.Settle {
		return fmt.Errorf("evidence: GapTimeout %v is shorter than Settle %v", c.GapTimeout, c.Settle)
	}
	return nil
}

// gapRetention is how long a skipped gap is watched for late arrivals.
const gapRetention = 24 * time.Hour

// Sequencer appends every committed event to the log, in event-id order,
// one transaction per batch. See the package doc for how it treats gaps.
type Sequencer struct {
	pool *pgxpool.Pool
	cfg  SequencerConfig

	mu      sync.Mutex // guards gap, blocked and tip, and serialises Step
	gap     *gapSeen   // the gap at the watermark, since when it has been seen
	blocked bool       // the last step stopped before a gap that is not permanent yet
	tip     tip        // the tree head this Sequencer committed last
	floor   uint       // lowest level written to log_nodes: nodeFloor (tests emulate older layouts)
	// legacyLeaves writes the layout before migration 0005: no log_runs and
	// sequenced_at left to its default (tests emulate older hubs).
	legacyLeaves bool
}

// gapSeen records the first observation of a missing event id.
type gapSeen struct {
	first int64     // lowest missing id
	seen  time.Time // when it was first seen missing
	xmax  int64     // pg_snapshot_xmax just after: every xid that may hold it is below
}

// NewSequencer returns a Sequencer over pool. Nothing runs before Run.
func NewSequencer(pool *pgxpool.Pool, cfg SequencerConfig) (*Sequencer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Sequencer{pool: pool, cfg: cfg, floor: nodeFloor}, nil
}

// Run sequences events until ctx ends, while this process holds the
// sequencer's advisory lock (LockSequencer) on a dedicated connection; a
// process that does not hold it retries every LockRetry. It returns nil when
// ctx ends.
func (s *Sequencer) Run(ctx context.Context) error {
	lead := ledger.New(s.pool, ledger.Config{Logger: s.cfg.Logger})
	return lead.RunAsLeader(ctx, LockSequencer, s.cfg.LockRetry, func(ctx context.Context) error {
		s.cfg.Logger.InfoContext(ctx, "evidence sequencer leading")
		for {
			n, err := s.Step(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				s.cfg.Logger.WarnContext(ctx, "evidence sequencer step failed", slog.Any("error", err))
			}
			if n > 0 && err == nil {
				continue
			}
			idle := s.cfg.Idle
			if err == nil && s.isBlocked() {
				idle = s.cfg.Blocked
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(idle):
			}
		}
	})
}

// Step appends at most one batch and returns how many leaves it appended. It
// is safe to call from several processes at once: the tree head row is locked
// for the transaction, so two appends are serialised and never duplicate an
// event (log_runs' exclusion constraint refuses an event twice, too). Run
// calls it in a loop.
func (s *Sequencer) Step(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.step(ctx)
	if err != nil {
		return 0, fmt.Errorf("evidence: sequence: %w", err)
	}
	return n, nil
}

// isBlocked reports whether the last step stopped before a gap that may
// still fill.
func (s *Sequencer) isBlocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked
}

func (s *Sequencer) step(ctx context.Context) (int, error) {
	s.blocked = false
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	// First statement, before this transaction has an xid of its own: the
	// oldest transaction still running.
	var xmin int64
	if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	var size0, watermark int64
	var root0 []byte
	var txTime time.Time // the transaction's now(): log_leaves.sequenced_at
	if err := tx.QueryRow(ctx, `SELECT size, root, watermark, now() FROM log_state FOR UPDATE`).Scan(&size0, &root0, &watermark, &txTime); err != nil {
		return 0, fmt.Errorf("tree head: %w", err)
	}
	now := s.cfg.Now()

	// Late arrivals: events that committed into a gap already passed over.
	// log_gaps is small and usually empty: one index range scan per gap.
	var late []logverify.Leaf
	rows, err := tx.Query(ctx, `SELECT first_id, last_id FROM log_gaps ORDER BY first_id`)
	if err != nil {
		return 0, fmt.Errorf("gaps: %w", err)
	}
	ranges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var g [2]int64
		return g, r.Scan(&g[0], &g[1])
	})
	if err != nil {
		return 0, fmt.Errorf("gaps: %w", err)
	}
	notInLog := `log_leaf_index(e.id) IS NULL`
	if s.legacyLeaves {
		notInLog = `NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.event_id = e.id)`
	}
	for _, g := range ranges {
		found, err := collectLeaves(ctx, tx, `SELECT `+eventColumns+eventFrom+`
			WHERE e.id BETWEEN $2 AND $3 AND `+notInLog+`
			ORDER BY e.id LIMIT $1`, s.cfg.BatchSize-len(late), g[0], g[1])
		if err != nil {
			return 0, fmt.Errorf("late events: %w", err)
		}
		late = append(late, found...)
	}
	next, err := collectLeaves(ctx, tx, `SELECT `+eventColumns+eventFrom+`
		WHERE e.id > $2 ORDER BY e.id LIMIT $1`, s.cfg.BatchSize-len(late), watermark)
	if err != nil {
		return 0, fmt.Errorf("events: %w", err)
	}

	// Take the contiguous prefix; cross a gap only once it is permanent.
	take := late
	type gap struct{ first, last int64 }
	var gaps []gap
	want := watermark + 1
	for _, l := range next {
		if l.EventID != want {
			if !s.gapPermanent(want, xmin, now) {
				if s.gap == nil || s.gap.first != want {
					var xmax int64
					if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xmax); err != nil {
						return 0, fmt.Errorf("snapshot: %w", err)
					}
					s.gap = &gapSeen{first: want, seen: now, xmax: xmax}
				}
				s.blocked = true
				break
			}
			s.cfg.Logger.WarnContext(ctx, "evidence sequencer skips a gap of event ids",
				slog.Int64("first", want), slog.Int64("last", l.EventID-1))
			gaps = append(gaps, gap{want, l.EventID - 1})
			s.gap = nil
		}
		take = append(take, l)
		want = l.EventID + 1
	}
	if len(take) == 0 {
		return 0, nil
	}

	r, err := s.openRange(ctx, tx, uint64(size0), root0)
	if err != nil {
		return 0, fmt.Errorf("load tree: %w", err)
	}
	ids := make([]int64, len(take))
	data := make([][]byte, len(take))
	for i, l := range take {
		ids[i], data[i] = l.EventID, l.Encode()
	}
	rest, err := storeLeaves(ctx, tx, r, ids, data, txTime, s.floor, s.legacyLeaves)
	if err != nil {
		return 0, err
	}
	root, err := rootOf(r)
	if err != nil {
		return 0, fmt.Errorf("root: %w", err)
	}
	if len(gaps) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM log_gaps WHERE skipped_at < $1`, now.Add(-gapRetention)); err != nil {
			return 0, fmt.Errorf("prune gaps: %w", err)
		}
	}
	for _, g := range gaps {
		if _, err := tx.Exec(ctx, `INSERT INTO log_gaps (first_id, last_id, skipped_at) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, g.first, g.last, now); err != nil {
			return 0, fmt.Errorf("record gap: %w", err)
		}
	}
	if err := rest.storeHead(ctx, tx, r.End(), root, max(watermark, want-1)); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	s.tip = tip{size: r.End(), root: root, hashes: r.Hashes()}
	s.cfg.Feed.push(uint64(size0), take)
	return len(take), nil
}

// tip is the compact range of the tree head this Sequencer committed last.
type tip struct {
	size   uint64
	root   []byte
	hashes [][]byte // compact.Range.Hashes of [0, size)
}

// openRange returns the compact range [0, size) of the tree whose head is
// (size, root): from the tip this Sequencer committed last if the head is
// still that one (an append-only tree of the same size and root is the same
// tree), otherwise from storage. s.mu must be held.
func (s *Sequencer) openRange(ctx context.Context, q querier, size uint64, root []byte) (*compact.Range, error) {
	if s.tip.root != nil && s.tip.size == size && bytes.Equal(s.tip.root, root) {
		return rangeFactory.NewRange(0, size, slices.Clone(s.tip.hashes))
	}
	s.tip = tip{}
	return loadRange(ctx, q, size)
}

// storeLeaves appends leaves (canonical leaf bytes, of the events ids) to the
// tree at r.End() and advances r: it copies their log_leaves rows (index,
// event id, leaf hash, leaf bytes and at, their sequenced_at) in tx, and
// returns the rest of the batch for storeHead: one log_runs row per run of
// consecutive event ids, and the log_nodes rows of the perfect subtrees they
// complete at levels of floor and above. legacy writes the layout before
// migration 0005 instead: no runs, and sequenced_at left to its default.
func storeLeaves(ctx context.Context, tx pgx.Tx, r *compact.Range, ids []int64, leaves [][]byte, at time.Time, floor uint, legacy bool) (*batchRows, error) {
	first := int64(r.End())
	leafRows := make([][]any, 0, len(leaves))
	rest := &batchRows{legacy: legacy}
	visit := func(id compact.NodeID, h []byte) {
		if id.Level >= floor && id.Level > 0 {
			rest.levels, rest.idxs, rest.hashes = append(rest.levels, int16(id.Level)), append(rest.idxs, int64(id.Index)), append(rest.hashes, h)
		}
	}
	for i, b := range leaves {
		h := logverify.LeafHash(b)
		if legacy {
			leafRows = append(leafRows, []any{first + int64(i), ids[i], h, b})
		} else {
			leafRows = append(leafRows, []any{first + int64(i), ids[i], h, b, at})
		}
		if err := r.Append(h, visit); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
	}
	cols := []string{"leaf_index", "event_id", "leaf_hash", "leaf"}
	if !legacy {
		cols = append(cols, "sequenced_at")
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"log_leaves"}, cols, pgx.CopyFromRows(leafRows)); err != nil {
		return nil, fmt.Errorf("store leaves: %w", err)
	}
	if !legacy {
		for i, id := range ids {
			if i > 0 && id == ids[i-1]+1 {
				rest.lasts[len(rest.lasts)-1] = id
				continue
			}
			rest.firsts, rest.lasts, rest.starts = append(rest.firsts, id), append(rest.lasts, id), append(rest.starts, first+int64(i))
		}
	}
	return rest, nil
}

// batchRows is what a batch writes besides its leaves: its runs and the
// tree nodes it completes.
type batchRows struct {
	firsts, lasts, starts []int64 // log_runs
	levels                []int16 // log_nodes
	idxs                  []int64
	hashes                [][]byte
	legacy                bool // before migration 0005: no log_runs
}

// storeHead writes the batch's runs and nodes and moves the tree head to
// (size, root), the watermark to at least watermark: one statement.
func (b *batchRows) storeHead(ctx context.Context, tx pgx.Tx, size uint64, root []byte, watermark int64) error {
	runs := `runs AS (INSERT INTO log_runs (first_event, last_event, first_index)
			SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::bigint[])),`
	if b.legacy {
		runs = `runs AS (SELECT $4::bigint[], $5::bigint[], $6::bigint[]),`
	}
	if _, err := tx.Exec(ctx, `WITH `+runs+`
		nodes AS (INSERT INTO log_nodes (level, idx, hash)
			SELECT * FROM unnest($7::smallint[], $8::bigint[], $9::bytea[]))
		UPDATE log_state SET size = $1, root = $2, watermark = greatest(watermark, $3), updated_at = now()`,
		int64(size), root, watermark, b.firsts, b.lasts, b.starts, b.levels, b.idxs, b.hashes); err != nil {
		return fmt.Errorf("store runs, nodes and tree head: %w", err)
	}
	return nil
}

// gapPermanent reports whether the missing event id first can no longer
// commit in order: it has been missing for Settle and every transaction that
// was running when it was first seen has ended — or it has been missing for
// GapTimeout whatever holds it. s.mu must be held.
func (s *Sequencer) gapPermanent(first, xmin int64, now time.Time) bool {
	g := s.gap
	if g == nil || g.first != first {
		return false
	}
	age := now.Sub(g.seen)
	return age >= s.cfg.GapTimeout || (age >= s.cfg.Settle && xmin >= g.xmax)
}

func collectLeaves(ctx context.Context, q querier, sql string, args ...any) ([]logverify.Leaf, error) {
	if n, ok := args[0].(int); ok && n <= 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (logverify.Leaf, error) { return scanEvent(r) })
}
