package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupReader is a consumer-group reader that starts over as a new group
// member when fetching keeps failing. A member can get wedged in a rebalance
// that never completes (seen with the embedded broker when members are killed
// and restarted every few seconds: every fetch then ends in an i/o timeout);
// leaving the group and joining afresh unwedges it. Redelivery after a
// restart is harmless: every stage is idempotent.
type GroupReader struct {
	cfg            Config
	logical, group string
	// RestartAfter is how many consecutive fetch errors make the reader
	// start over; default 2. MinGap spaces restarts; default 10s.
	RestartAfter int
	MinGap       time.Duration

	mu      sync.Mutex // guards the fields below
	r       *kafka.Reader
	errs    int
	last    time.Time
	restart int
}

// NewGroupReader returns a consumer-group reader of a logical topic.
func NewGroupReader(cfg Config, logical, group string) *GroupReader {
	cfg.setDefaults()
	return &GroupReader{cfg: cfg, logical: logical, group: group, r: NewReader(cfg, logical, group), last: time.Now()}
}

func (g *GroupReader) cur() *kafka.Reader {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.r
}

// FetchMessage reads the next message.
func (g *GroupReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r := g.cur()
	m, err := r.FetchMessage(ctx)
	if ctx.Err() != nil {
		return m, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.errs = 0
		return m, nil
	}
	g.errs++
	after, gap := g.RestartAfter, g.MinGap
	if after <= 0 {
		after = 2
	}
	if gap <= 0 {
		gap = 10 * time.Second
	}
	if g.errs >= after && time.Since(g.last) >= gap && g.r == r {
		g.restart++
		g.errs, g.last = 0, time.Now()
		g.r = NewReader(g.cfg, g.logical, g.group)
		g.cfg.Logger.WarnContext(ctx, "kafka: consumer starts over as a new group member",
			slog.String("topic", g.cfg.Topic(g.logical)), slog.String("group", g.group), slog.Any("error", err))
		go r.Close() //nolint:errcheck // leaving the group; the old member may be wedged
	}
	return m, err
}

// CommitMessages commits offsets through the current member.
func (g *GroupReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	return g.cur().CommitMessages(ctx, msgs...)
}

// Config returns the reader's configuration.
func (g *GroupReader) Config() kafka.ReaderConfig { return g.cur().Config() }

// Restarts reports how many times the reader started over.
func (g *GroupReader) Restarts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.restart
}

// Close leaves the group.
func (g *GroupReader) Close() error { return g.cur().Close() }
