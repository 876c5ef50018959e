package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"lienthong/routing/embedbroker"
)

// ConsumeBatches hands a burst over as one batch as soon as the burst ends,
// not after the whole linger, and commits it: a new member of the group
// starts after it.
func TestConsumeBatchesEndsLingerAfterBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir(), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := Config{Brokers: b.Addrs(), Prefix: "c", Partitions: 1}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	publish := func(from, n int) time.Time {
		msgs := make([]Message, n)
		for i := range msgs {
			msgs[i] = Message{Topic: "route", Key: "k", Value: fmt.Appendf(nil, "%d", from+i)}
		}
		if err := p.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	const linger = 3 * time.Second
	type got struct {
		msgs []string
		at   time.Time
	}
	batches := make(chan got, 10)
	consume := func(cctx context.Context) error {
		rd := NewGroupReader(cfg, "route", "burst")
		defer rd.Close()
		return ConsumeBatches(cctx, rd, 100, linger, slog.New(slog.DiscardHandler), func(_ context.Context, ms []kafka.Message) error {
			g := got{at: time.Now()}
			for _, m := range ms {
				g.msgs = append(g.msgs, string(m.Value))
			}
			batches <- g
			return nil
		})
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consume(cctx) }()
	publish(0, 1) // the group's first assignment is not measured
	<-batches
	sent := publish(1, 5)
	g := <-batches
	if len(g.msgs) != 5 || g.msgs[0] != "1" || g.msgs[4] != "5" {
		t.Fatalf("the burst came as %v, want 1..5 in one batch", g.msgs)
	}
	if d := g.at.Sub(sent); d > linger/2 {
		t.Fatalf("a burst of 5 was handed over %v after it was published: the batch waited for the whole linger (%v)", d, linger)
	} else {
		t.Logf("burst handed over %v after the publish (linger %v)", d, linger)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Committed: a new member starts with what comes next.
	cctx, stop = context.WithCancel(ctx)
	go func() { done <- consume(cctx) }()
	publish(6, 1)
	g = <-batches
	stop()
	<-done
	if len(g.msgs) != 1 || g.msgs[0] != "6" {
		t.Fatalf("after a restart the group read %v, want only 6", g.msgs)
	}
}

// countingFetcher counts the commits that reach the group.
type countingFetcher struct {
	Fetcher
	commits atomic.Int64
}

func (c *countingFetcher) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	c.commits.Add(1)
	return c.Fetcher.CommitMessages(ctx, msgs...)
}

// ConsumeBatches commits in the background, many handled batches in one
// commit, and commits what it handled when it stops: a new member of the
// group reads only what came after.
func TestConsumeBatchesCoalescesCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir(), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := Config{Brokers: b.Addrs(), Prefix: "cc", Partitions: 2}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	publish := func(i int) {
		if err := p.Publish(ctx, []Message{{Topic: "route", Key: fmt.Sprint("k", i%4), Value: fmt.Appendf(nil, "%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	handled := make(chan string, 100)
	consume := func(cctx context.Context, f Fetcher) error {
		return ConsumeBatches(cctx, f, 100, 0, slog.New(slog.DiscardHandler), func(_ context.Context, ms []kafka.Message) error {
			for _, m := range ms {
				handled <- string(m.Value)
			}
			return nil
		})
	}
	rd := NewGroupReader(cfg, "route", "coalesce")
	cf := &countingFetcher{Fetcher: rd}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consume(cctx, cf) }()
	const n = 40
	for i := range n {
		publish(i)
		<-handled // one batch per message
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if c := cf.commits.Load(); c < 1 || c > n/4 {
		t.Fatalf("%d commits for %d handled batches, want a few", c, n)
	}
	t.Logf("%d commits for %d batches", cf.commits.Load(), n)

	rd = NewGroupReader(cfg, "route", "coalesce")
	defer rd.Close()
	cctx, stop = context.WithCancel(ctx)
	go func() { done <- consume(cctx, rd) }()
	publish(n)
	got := <-handled
	stop()
	<-done
	if got != fmt.Sprint(n) {
		t.Fatalf("after a restart the group read %s first, want %d: the last commits were lost", got, n)
	}
}

// failingFetcher refuses commits while failing is set, without reaching the
// group, as when the broker is down or the commit's context ends.
type failingFetcher struct {
	Fetcher
	failing atomic.Bool
	refused atomic.Int64
}

func (f *failingFetcher) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	if f.failing.Load() {
		f.refused.Add(1)
		return fmt.Errorf("commit refused (test)")
	}
	return f.Fetcher.CommitMessages(ctx, msgs...)
}

// The offsets of a commit that failed are kept and committed later (here by
// the final commit when ConsumeBatches stops), not dropped: a new member of
// the group does not read the handled messages again.
func TestConsumeBatchesCommitsWhatAFailedCommitHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir(), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := Config{Brokers: b.Addrs(), Prefix: "fc", Partitions: 1}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	publish := func(i int) {
		if err := p.Publish(ctx, []Message{{Topic: "route", Key: "k", Value: fmt.Appendf(nil, "%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	handled := make(chan string, 100)
	consume := func(cctx context.Context, f Fetcher) error {
		return ConsumeBatches(cctx, f, 100, 0, slog.New(slog.DiscardHandler), func(_ context.Context, ms []kafka.Message) error {
			for _, m := range ms {
				handled <- string(m.Value)
			}
			return nil
		})
	}
	rd := NewGroupReader(cfg, "route", "failedcommit")
	ff := &failingFetcher{Fetcher: rd}
	ff.failing.Store(true)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consume(cctx, ff) }()
	const n = 5
	for i := range n {
		publish(i)
		<-handled
	}
	// Let the committer try (and fail) twice more after the last handled
	// batch, so that every offset was taken by a failed commit. Without
	// the retry there is only one more try; after a second the test goes
	// on, and then the group reads the handled messages again.
	for r0, deadline := ff.refused.Load(), time.Now().Add(time.Second); ff.refused.Load() < r0+2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	ff.failing.Store(false) // the broker is back; nothing new is handled
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rd.Close()

	rd = NewGroupReader(cfg, "route", "failedcommit")
	defer rd.Close()
	cctx, stop = context.WithCancel(ctx)
	go func() { done <- consume(cctx, rd) }()
	publish(n)
	got := <-handled
	stop()
	<-done
	if got != fmt.Sprint(n) {
		t.Fatalf("after a restart the group read %s first, want %d: the offsets of the failed commit were lost", got, n)
	}
}
