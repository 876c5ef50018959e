package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"lienthong/routing/embedbroker"
)

// runBrokerOnly is `hubd dev --broker-only`: the embedded Kafka-protocol
// broker as its own process, its data on disk in <data-dir>/kafka, so that
// several `hubd serve` processes can share it and tests can kill and restart
// it. Its address is printed on stdout and written to <data-dir>/broker.addr.
func runBrokerOnly(ctx context.Context, dataDir, listen string, log *slog.Logger) error {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	b, err := embedbroker.Start(embedbroker.Config{DataDir: filepath.Join(dir, "kafka"), Listen: listen, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	addrs := strings.Join(b.Addrs(), ",")
	tmp := filepath.Join(dir, "broker.addr.tmp")
	if err := os.WriteFile(tmp, []byte(addrs+"\n"), 0o644); err != nil {
		return fmt.Errorf("broker address file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "broker.addr")); err != nil {
		return fmt.Errorf("broker address file: %w", err)
	}
	fmt.Fprintf(os.Stdout, "broker: đang chạy / listening on %s (data %s)\n", addrs, filepath.Join(dir, "kafka"))
	<-ctx.Done()
	log.Info("broker: dừng / stopping")
	return nil
}
