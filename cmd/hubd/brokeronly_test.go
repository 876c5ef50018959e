package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// `hubd dev --broker-only` is the embedded broker as its own process, data on
// disk: a record written before the process is killed (SIGKILL) is read back
// from a new process on the same data dir and address.
func TestBrokerOnlyProcessKeepsItsData(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	addr := freePort(t)
	args := []string{"dev", "--broker-only", "--data-dir", dir, "--broker-listen", addr}
	waitAddr := func(p *proc) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(filepath.Join(dir, "broker.addr")); err == nil && strings.TrimSpace(string(b)) == addr {
				if c, err := kafka.Dial("tcp", addr); err == nil {
					c.Close()
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("broker did not listen on %s:\n%s", addr, p.out)
	}
	p := start(t, bin, args, dir)
	waitAddr(p)
	if !strings.Contains(p.out.String(), addr) {
		t.Errorf("the broker does not print its address: %s", p.out)
	}
	c, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopics(kafka.TopicConfig{Topic: "lt.test", NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "lt.test", RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("survives a SIGKILL")}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	p.kill(syscall.SIGKILL)
	<-p.done
	p2 := start(t, bin, args, dir)
	waitAddr(p2)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "lt.test", Partition: 0})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Value) != "survives a SIGKILL" {
		t.Fatalf("after a restart: %q %v", m.Value, err)
	}
	p2.stop(t)
}
