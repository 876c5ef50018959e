package evidence

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/evidence/logverify"
)

// Tail reads the log in leaf order from a persisted cursor (log_published),
// for a publisher beside the path: routing/relay.Events publishes lt.events
// from it. Leaf indexes are dense and a leaf is never changed, so a reader
// that moves its cursor only past leaves it has handed on misses nothing and
// never has to deal with gaps (the sequencer has resolved them). Only the
// leader of that publisher should move the cursor; Advance never moves it
// back.
type Tail struct {
	pool *pgxpool.Pool
	feed *Feed
	now  func() time.Time

	fromFeed, fromLog atomic.Int64 // leaves handed on from each source
}

// NewTail returns a Tail over pool. Run Migrate first.
func NewTail(pool *pgxpool.Pool) *Tail { return &Tail{pool: pool, now: time.Now} }

// WithFeed makes Leaves take the leaves the sequencer of this process has
// just committed from feed (the one in its SequencerConfig) rather than from
// log_leaves, whenever feed holds them. It returns t.
func (t *Tail) WithFeed(feed *Feed) *Tail {
	t.feed = feed
	return t
}

// Wait returns a channel closed when the feed receives leaves, or nil (never
// ready) without a feed.
func (t *Tail) Wait() <-chan struct{} {
	if t.feed == nil {
		return nil
	}
	return t.feed.Wait()
}

// Served returns how many leaves Leaves has returned from the feed and from
// log_leaves.
func (t *Tail) Served() (fromFeed, fromLog int64) { return t.fromFeed.Load(), t.fromLog.Load() }

// feedFresh is how long after the feed's last batch a reader at its end
// takes the log to hold nothing more: the sequencer of this process leads
// and appends through the feed. A sequencer elsewhere that took over meanwhile
// is read from log_leaves once this has passed.
const feedFresh = time.Second

// TailEntry is one leaf of the log, decoded.
type TailEntry struct {
	Index uint64
	Leaf  logverify.Leaf
}

// Cursor returns the first leaf index not yet published.
func (t *Tail) Cursor(ctx context.Context) (uint64, error) {
	var next int64
	if err := t.pool.QueryRow(ctx, `SELECT next FROM log_published`).Scan(&next); err != nil {
		return 0, fmt.Errorf("evidence: publish cursor: %w", err)
	}
	return uint64(next), nil
}

// Leaves returns at most limit leaves from index from on, in index order,
// without a hole: it stops before the first index it does not see (the
// sequencer commits whole runs of leaves, so there is none, but a reader
// must not pass one). They come from the feed when it holds from, otherwise
// from the stored leaves of log_leaves.
func (t *Tail) Leaves(ctx context.Context, from uint64, limit int) ([]TailEntry, error) {
	if limit <= 0 || from > maxIndex {
		return nil, nil
	}
	if out, ok := t.feed.read(from, limit); ok {
		t.fromFeed.Add(int64(len(out)))
		return out, nil
	}
	if t.feed.caughtUp(from, t.now(), feedFresh) {
		return nil, nil
	}
	rows, err := t.pool.Query(ctx, `SELECT leaf_index, leaf FROM log_leaves
		WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("evidence: tail leaves: %w", err)
	}
	defer rows.Close()
	out := make([]TailEntry, 0, min(limit, 1024))
	want := from
	var (
		idx int64
		raw []byte
	)
	for rows.Next() {
		if err := rows.Scan(&idx, &raw); err != nil {
			return nil, fmt.Errorf("evidence: tail leaves: %w", err)
		}
		if uint64(idx) != want {
			break
		}
		l, err := logverify.DecodeLeaf(raw)
		if err != nil {
			return nil, fmt.Errorf("evidence: tail leaf %d: %w", idx, err)
		}
		out = append(out, TailEntry{Index: want, Leaf: l})
		want++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evidence: tail leaves: %w", err)
	}
	t.fromLog.Add(int64(len(out)))
	return out, nil
}

// Advance records that every leaf below next has been published. It never
// moves the cursor back.
func (t *Tail) Advance(ctx context.Context, next uint64) error {
	if next > maxIndex {
		return fmt.Errorf("evidence: publish cursor %d out of range", next)
	}
	if _, err := t.pool.Exec(ctx, `UPDATE log_published SET next = $1, updated_at = now() WHERE next < $1`,
		int64(next)); err != nil {
		return fmt.Errorf("evidence: advance publish cursor: %w", err)
	}
	return nil
}

// Backlog returns how many leaves of the log are not published yet.
func (t *Tail) Backlog(ctx context.Context) (int64, error) {
	var n int64
	if err := t.pool.QueryRow(ctx, `SELECT greatest(s.size - p.next, 0) FROM log_state s, log_published p`).Scan(&n); err != nil {
		return 0, fmt.Errorf("evidence: publish backlog: %w", err)
	}
	return n, nil
}
