package embedbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config describes the embedded broker.
type Config struct {
	// DataDir keeps topics, records and committed group offsets on disk,
	// written through (fsync per batch). Empty keeps everything in memory.
	DataDir string
	// Listen is the host:port to listen on, e.g. "127.0.0.1:9092", or
	// "127.0.0.1:0" for a free port. Empty means "127.0.0.1:0". The broker
	// advertises exactly this address in metadata, except that an
	// unspecified host (0.0.0.0, ::) is advertised as 127.0.0.1.
	Listen string
	// Partitions is the partition count of topics created without one
	// (CreateTopics with -1). Default 8.
	Partitions int
	// AutoCreateTopics lets a Metadata request that asks for it create
	// missing topics, as Kafka's auto.create.topics.enable does. Off by
	// default, so a missing topic is a visible error.
	AutoCreateTopics bool
	// Logger receives the broker's errors and warnings, and its chatter at
	// debug level; nil discards.
	Logger *slog.Logger
}

// Broker is a running single-node Kafka-protocol broker.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	lock    *os.File // holds the DataDir lock; nil in memory
	once    sync.Once
}

// ErrDataDirInUse reports that another broker holds the DataDir.
var ErrDataDirInUse = errors.New("embedbroker: data dir is in use by another broker")

// ClusterID is the cluster id the broker reports.
const ClusterID = "lienthong-embedded"

// Start starts the broker. With a DataDir it first reloads what an earlier
// broker left there.
func Start(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 8
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("embedbroker: listen address %q: %w", cfg.Listen, err)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID(ClusterID),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogLogger{logger}),
		// kfake always asks for 127.0.0.1:<port>; we bind what was asked.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, cfg.Listen)
			if err != nil {
				return nil, err
			}
			return advertised(ln), nil
		}),
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("embedbroker: data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir), kfake.SyncWrites())
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedbroker: start on %s: %w", cfg.Listen, err)
	}
	b := &Broker{cluster: c, addrs: c.ListenAddrs(), lock: lock}
	logger.Info("embedbroker: listening", slog.Any("addrs", b.addrs), slog.String("data_dir", cfg.DataDir))
	return b, nil
}

// Addrs returns the broker's bootstrap addresses (host:port).
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the broker; with a DataDir it first writes its state out.
// Later calls do nothing.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.cluster.Close()
		b.lock.Close() // releases the lock; nil-safe
	})
}

// lockDataDir takes an exclusive flock on dir/LOCK: kfake itself takes
// none, and two brokers writing one directory would corrupt it.
func lockDataDir(dir string) (*os.File, error) {
	if dir == "" {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("embedbroker: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("embedbroker: lock data dir: %w", err)
	}
	return f, nil
}

// StartForTest starts an in-memory broker on a free loopback port and closes
// it when t ends.
func StartForTest(t testing.TB) *Broker {
	t.Helper()
	b, err := Start(Config{})
	if err != nil {
		t.Fatalf("embedbroker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// advertised makes an unspecified listen host show as 127.0.0.1 in Addr,
// which kfake copies into metadata: a client cannot dial 0.0.0.0.
func advertised(ln net.Listener) net.Listener {
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.IsUnspecified() {
		return ln
	}
	return loopbackAddr{ln, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}}
}

type loopbackAddr struct {
	net.Listener
	addr net.Addr
}

func (l loopbackAddr) Addr() net.Addr { return l.addr }

// slogLogger adapts slog to kfake.Logger. kfake's "info" is per-request
// chatter, so it goes to debug.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo, kfake.LogLevelDebug:
		lvl = slog.LevelDebug
	default:
		return
	}
	if !s.l.Enabled(context.Background(), lvl) { // kfake passes no context
		return
	}
	s.l.Log(context.Background(), lvl, "kfake: "+fmt.Sprintf(format, args...))
}
