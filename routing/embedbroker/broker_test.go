package embedbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates topic through the controller, as the bus does.
func createTopic(t *testing.T, ctx context.Context, addr, topic string, partitions int) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dial controller: %v", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func partitionCount(t *testing.T, ctx context.Context, addr, topic string) int {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	return len(parts)
}

func produce(t *testing.T, ctx context.Context, addr, topic string, keys ...string) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(keys))
	for i, k := range keys {
		msgs[i] = kafka.Message{Key: []byte(k), Value: []byte("doc " + k)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func groupReader(addr, topic, group string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{addr},
		Topic:          topic,
		GroupID:        group,
		StartOffset:    kafka.FirstOffset,
		CommitInterval: 0, // commit synchronously
		MaxWait:        100 * time.Millisecond,
	})
}

// consume fetches n messages, commits each, and returns their keys.
func consume(t *testing.T, ctx context.Context, r *kafka.Reader, n int) []string {
	t.Helper()
	var keys []string
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d messages: %v", len(keys), err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
		keys = append(keys, string(m.Key))
	}
	return keys
}

// expectNoMore checks that r has nothing more to give for a short while.
func expectNoMore(t *testing.T, r *kafka.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m, err := r.FetchMessage(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("extra message %q (err %v)", m.Key, err)
	}
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("doc-%02d", i)
	}
	return ks
}

func TestProduceAndConsumeInGroup(t *testing.T) {
	ctx := testContext(t)
	b := StartForTest(t)
	addr := b.Addrs()[0]
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Errorf("addr = %s, want host 127.0.0.1", addr)
	}
	createTopic(t, ctx, addr, "lt.route", -1)
	if n := partitionCount(t, ctx, addr, "lt.route"); n != 8 {
		t.Errorf("partitions = %d, want the default 8", n)
	}
	all := keys(20)
	produce(t, ctx, addr, "lt.route", all...)

	r := groupReader(addr, "lt.route", "router")
	defer r.Close()
	got := consume(t, ctx, r, len(all))
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("consumed %v, want %v", got, all)
	}
	expectNoMore(t, r)
}

func TestRestartKeepsMessagesAndGroupOffsets(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	b, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addrs()[0]
	createTopic(t, ctx, addr, "lt.deliver", -1)
	all := keys(10)
	produce(t, ctx, addr, "lt.deliver", all...)

	r := groupReader(addr, "lt.deliver", "delivery")
	before := consume(t, ctx, r, 6)
	if err := r.Close(); err != nil {
		t.Fatalf("close reader: %v", err)
	}

	if _, err := Start(Config{DataDir: dir}); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second broker on a used DataDir: err = %v, want ErrDataDirInUse", err)
	}
	b.Close()

	b2, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", Partitions: 3})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b2.Close()
	addr = b2.Addrs()[0]
	if n := partitionCount(t, ctx, addr, "lt.deliver"); n != 3 {
		t.Errorf("partitions after restart = %d, want 3", n)
	}

	// The group resumes after its last commit: exactly the 4 it had not seen.
	r2 := groupReader(addr, "lt.deliver", "delivery")
	defer r2.Close()
	after := consume(t, ctx, r2, 4)
	expectNoMore(t, r2)
	got := slices.Concat(before, after)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("before restart %v + after %v, want each of %v once", before, after, all)
	}

	// And every record is still there for a new group.
	r3 := groupReader(addr, "lt.deliver", "auditor")
	defer r3.Close()
	if n := len(consume(t, ctx, r3, len(all))); n != len(all) {
		t.Errorf("new group read %d, want %d", n, len(all))
	}
}

func TestCrashKeepsAckedMessagesAndCommits(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	b, err := Start(Config{DataDir: dir, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addrs()[0]
	createTopic(t, ctx, addr, "lt.route", -1)
	all := keys(6)
	produce(t, ctx, addr, "lt.route", all...)
	r := groupReader(addr, "lt.route", "router")
	before := consume(t, ctx, r, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash: the files as they are once produce and commit were
	// acknowledged, without the state Close writes out. (b keeps running on
	// dir; the copy is what a power cut would leave.)
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	b2, err := Start(Config{DataDir: crashed, Partitions: 2})
	if err != nil {
		t.Fatalf("start on crashed data: %v", err)
	}
	defer b2.Close()
	r2 := groupReader(b2.Addrs()[0], "lt.route", "router")
	defer r2.Close()
	after := consume(t, ctx, r2, 4)
	expectNoMore(t, r2)
	got := slices.Concat(before, after)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("before crash %v + after %v, want each of %v once", before, after, all)
	}
}

func TestListenOnRequestedAddress(t *testing.T) {
	// Reserve a port, free it, and ask for exactly that one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := l.Addr().String()
	l.Close()
	b, err := Start(Config{Listen: want})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Addrs(); !slices.Equal(got, []string{want}) {
		t.Errorf("Addrs() = %v, want [%s]", got, want)
	}
	if _, err := Start(Config{Listen: want}); err == nil {
		t.Error("a second broker on the same address started")
	}
}

func TestUnspecifiedHostIsAdvertisedAsLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if got, want := advertised(l).Addr().String(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); got != want {
		t.Errorf("advertised = %s, want %s", got, want)
	}
}

func TestKcatListsTopics(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat not installed") // CI installs every oracle: missing is a failure
		}
		t.Skip("kcat not installed")
	}
	ctx := testContext(t)
	b := StartForTest(t)
	addr := b.Addrs()[0]
	createTopic(t, ctx, addr, "lt.events", 4)
	out, err := exec.CommandContext(ctx, kcat, "-b", addr, "-L").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `topic "lt.events" with 4 partitions`) {
		t.Errorf("kcat -L does not list lt.events with 4 partitions:\n%s", out)
	}
}
