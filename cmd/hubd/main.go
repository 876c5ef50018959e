// Command hubd is the Lienthong hub daemon.
//
//	hubd dev      everything in one process with embedded defaults (what `make run` starts)
//	hubd serve    the hub against real Kafka brokers and PostgreSQL
//	hubd migrate  apply the ledger's database migrations
//	hubd audit    recompute the evidence log from the stored rows
//
// Every flag can also be set through an LT_* environment variable
// (--database-url ↔ LT_DATABASE_URL), or LT_*_FILE naming a file that holds
// the value (for secrets); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `hubd — Lienthong, trục liên thông văn bản của Quốc hội / the National Assembly's document-exchange hub

Cách dùng / usage:
  hubd dev      [--data-dir ./var/dev] [--listen 127.0.0.1:8080] [--broker-listen 127.0.0.1:9092]
  hubd serve    --database-url URL --kafka-brokers HOST:PORT[,…] [--listen ADDR] [--roles api,relay,router,delivery,scheduler,axis,evidence]
                [--tls-cert PEM --tls-key PEM [--client-ca PEM]] [--directory organs.json]
                [--axis-url URL --axis-systems FILE] [--spool-dir DIR]
  hubd migrate  --database-url URL
  hubd audit    --database-url URL   kiểm tra nhật ký bằng chứng / recompute the evidence log, name the first tampered leaf
  (serve, dev)  [--evidence-cert PEM --evidence-key PEM] [--tsa-url URL] [--retention 8760h] [--checkpoint-interval 900ms]

Mọi tham số đều đọc được từ biến môi trường LT_* (ví dụ LT_DATABASE_URL).
Every flag also reads from an LT_* environment variable (e.g. LT_DATABASE_URL).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	tuneGC(os.Getenv, log)
	if err := startPprof(log); err != nil {
		fmt.Fprintf(os.Stderr, "hubd: lỗi / error: %v\n", err)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dev":
		err = runDev(ctx, os.Args[2:], log)
	case "serve":
		err = runServe(ctx, os.Args[2:], log)
	case "migrate":
		err = runMigrate(ctx, os.Args[2:], log)
	case "audit":
		err = runAudit(ctx, os.Args[2:], os.Stdout, log)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "lệnh không hợp lệ / unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "hubd: lỗi / error: %v\n", err)
		os.Exit(1)
	}
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("LT_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// parseWithEnv parses args, then fills every flag not given on the command line
// from its LT_* environment variable.
func parseWithEnv(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "LT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if file, isFile := os.LookupEnv(env + "_FILE"); !ok && isFile { // secrets mounted as files
			b, e := os.ReadFile(file)
			if e != nil {
				err = fmt.Errorf("%s_FILE: %w", env, e)
				return
			}
			v, ok = strings.TrimSpace(string(b)), true
		}
		if ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
