package bus

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"lienthong/routing/embedbroker"
)

// warnings records the messages of warnings and errors logged through it.
type warnings struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnings) WithGroup(string) slog.Handler                { return w }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}

// matching returns the recorded messages that contain any of subs.
func (w *warnings) matching(subs ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		for _, s := range subs {
			if strings.Contains(m, s) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// TestIdleGroupReaderLongPolls runs a consumer-group reader of an 8-partition
// topic on the embedded broker (with a data dir and fsync, as hubd runs it)
// and checks that, idle, it long-polls: no fetch ends in a client-side read
// timeout (each of which makes kafka-go drop and re-dial the partition's
// connection and log an "unknown error"), and it sends few fetches — yet a
// message produced while it waits is fetched at once, because the broker
// answers a waiting fetch as soon as data arrives. The busy case keeps the
// CPUs busy meanwhile, as the hub's other work (or a load generator) does:
// goroutines then wait tens of milliseconds to run.
func TestIdleGroupReaderLongPolls(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an idle reader for seconds")
	}
	for _, tc := range []struct {
		name     string
		spinners int // goroutines keeping the CPUs busy
	}{
		{"quiet", 0},
		{"busy CPU", 2 * runtime.GOMAXPROCS(0)},
	} {
		t.Run(tc.name, func(t *testing.T) { testIdleReader(t, tc.spinners) })
	}
}

func testIdleReader(t *testing.T, spinners int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := embedbroker.Start(embedbroker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	warns := &warnings{}
	const partitions = 8
	cfg := Config{Brokers: b.Addrs(), Prefix: "t", Partitions: partitions, Logger: slog.New(warns)}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(cfg)
	defer p.Close()
	rd := NewGroupReader(cfg, "route", "idle")
	defer rd.Close()

	type fetched struct {
		key string
		at  time.Time
	}
	got := make(chan fetched, 16)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go func() {
		for {
			m, err := rd.FetchMessage(rctx)
			if err != nil {
				if rctx.Err() != nil {
					return
				}
				continue
			}
			got <- fetched{string(m.Key), time.Now()}
			_ = rd.CommitMessages(rctx, m)
		}
	}()
	wait := func(key string, bound time.Duration) time.Time {
		t.Helper()
		select {
		case f := <-got:
			if f.key != key {
				t.Fatalf("fetched %q, want %q", f.key, key)
			}
			return f.at
		case <-time.After(bound):
			t.Fatalf("message %q not fetched within %s", key, bound)
		}
		return time.Time{}
	}

	// Warm up: the reader joins the group and gets every partition.
	if err := p.Publish(ctx, []Message{{Topic: "route", Key: "warm-up", Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	wait("warm-up", 30*time.Second)
	// Every partition's reader has connected; Stats resets the counters, so
	// that only the idle period is counted.
	for dials := int64(0); dials < partitions; {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d partition readers connected", dials, partitions)
		}
		dials += rd.cur().Stats().Dials
		time.Sleep(10 * time.Millisecond)
	}
	rd.cur().Stats()

	const idle = 4 * time.Second
	var spin sync.WaitGroup
	stop := make(chan struct{})
	for range spinners {
		spin.Go(func() {
			for n := 0; ; n++ {
				if n%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	time.Sleep(idle)
	close(stop)
	spin.Wait()
	st := rd.cur().Stats()

	// Produced while every partition's fetch is parked on the broker. The
	// fastest of three probes counts: other tests running beside this one
	// (make test runs packages in parallel on 2 cores) can delay one, but a
	// broker that does not answer a parked fetch on new data delays every
	// one by the whole long poll.
	var lat time.Duration
	for i := range 3 {
		key := fmt.Sprintf("late-%d", i)
		sent := time.Now()
		if err := p.Publish(ctx, []Message{{Topic: "route", Key: key, Value: []byte("y")}}); err != nil {
			t.Fatal(err)
		}
		if d := wait(key, 5*time.Second).Sub(sent); i == 0 || d < lat {
			lat = d
		}
		if lat < 200*time.Millisecond {
			break
		}
		time.Sleep(fetchLongPoll / 3) // let the fetches park again
	}
	if lat > 200*time.Millisecond {
		t.Errorf("messages produced while the reader waited were fetched after %s at best, want < 200ms", lat)
	}

	if bad := warns.matching("i/o timeout", "unknown error"); len(bad) > 0 {
		t.Errorf("idle reader logged %d read errors, e.g. %q", len(bad), bad[0])
	}
	if st.Errors > 0 || st.Dials > 0 {
		t.Errorf("idle reader: %d fetch errors, %d re-dials; want none", st.Errors, st.Dials)
	}
	// Long-polling, each partition sends a fetch every fetchLongPoll; with
	// slack for the first round. A 50 ms MaxWait sent ~27 a second each.
	maxFetches := int64(partitions) * (int64(idle/fetchLongPoll) + 2)
	if st.Fetches > maxFetches {
		t.Errorf("idle reader sent %d fetches in %s over %d partitions, want ≤ %d (a long poll of %s)",
			st.Fetches, idle, partitions, maxFetches, fetchLongPoll)
	}
	t.Logf("idle %s: %d fetches, %d empty, %d errors, %d dials, %d rebalances; then fetched in %s",
		idle, st.Fetches, st.Timeouts, st.Errors, st.Dials, st.Rebalances, lat)
}
