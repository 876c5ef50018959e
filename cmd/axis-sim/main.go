// Command axis-sim runs the simulator of the national document-exchange axis
// (Trục liên thông văn bản quốc gia) for development: the same REST
// operations and HMAC header check as the real service, in-memory queues per
// organ, and fault-injection endpoints under /_sim/.
//
//	axis-sim [--listen ADDR] [--systems FILE] [--system ID:SECRET:ORGAN ...] [--max-skew D] [--admin=false]
//
// The systems file is JSON:
//
//	{"systems":[{"id":"…","secret":"…","organ":"…","organs":["…"]}],
//	 "agencies":[{"id":"1","code":"…","oldCode":"…","name":"…","mail":"…"}]}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axissim"
)

const usage = `axis-sim — mô phỏng Trục liên thông văn bản quốc gia / national document-exchange axis simulator

  axis-sim [cờ / flags]

  --listen ADDR            địa chỉ lắng nghe / listen address (default 127.0.0.1:8089)
  --systems FILE           tệp JSON các hệ thống và cơ quan / JSON file of systems and agencies
  --system ID:SECRET:ORGAN thêm một hệ thống (lặp lại được) / add a system (repeatable)
  --max-skew D             độ lệch thời gian tối đa / max timestamp skew (default 5m)
  --admin                  bật /_sim/ (không xác thực) / serve /_sim/ (unauthenticated) (default true)
  --debug                  ghi log chi tiết / verbose logging
`

type systemsFlag []axissim.System

func (s *systemsFlag) String() string { return fmt.Sprint(len(*s)) }

func (s *systemsFlag) Set(v string) error {
	first, last := strings.IndexByte(v, ':'), strings.LastIndexByte(v, ':')
	if first <= 0 || last == first || last == len(v)-1 {
		return errors.New("want ID:SECRET:ORGAN / cần dạng ID:SECRET:ORGAN")
	}
	*s = append(*s, axissim.System{ID: v[:first], Secret: v[first+1 : last], Organ: v[last+1:]})
	return nil
}

type systemsFile struct {
	Systems []struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Organ  string   `json:"organ"`
		Organs []string `json:"organs"` // further organs the system fronts
	} `json:"systems"`
	Agencies []axis.Agency `json:"agencies"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "axis-sim: lỗi / error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("axis-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	listen := fs.String("listen", "127.0.0.1:8089", "")
	file := fs.String("systems", "", "")
	maxSkew := fs.Duration("max-skew", axis.DefaultMaxSkew, "")
	admin := fs.Bool("admin", true, "")
	debug := fs.Bool("debug", false, "")
	var systems systemsFlag
	fs.Var(&systems, "system", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := axissim.Config{Systems: systems, MaxSkew: *maxSkew, Admin: *admin}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("đọc tệp hệ thống / read systems file: %w", err)
		}
		var sf systemsFile
		if err := json.Unmarshal(b, &sf); err != nil {
			return fmt.Errorf("tệp hệ thống không hợp lệ / invalid systems file %s: %w", *file, err)
		}
		for _, s := range sf.Systems {
			cfg.Systems = append(cfg.Systems, axissim.System{ID: s.ID, Secret: s.Secret, Organ: s.Organ, Organs: s.Organs})
		}
		cfg.Agencies = sf.Agencies
	}
	if len(cfg.Systems) == 0 {
		return errors.New("chưa khai báo hệ thống nào (--system hoặc --systems) / no system configured (--system or --systems)")
	}
	for _, s := range cfg.Systems {
		if s.ID == "" || s.Secret == "" || s.Organ == "" {
			return fmt.Errorf("hệ thống thiếu id, secret hoặc organ / system %q lacks id, secret or organ", s.ID)
		}
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	url, stop, err := axissim.Start(cfg, *listen)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "Trục liên thông mô phỏng đang chạy tại / axis simulator listening on %s\n", url)
	for _, s := range cfg.Systems {
		fmt.Fprintf(stdout, "  hệ thống / system %s → cơ quan / organ %s\n", s.ID, s.Organ)
	}
	if *admin {
		fmt.Fprintf(stdout, "  quản trị (không xác thực) / admin (unauthenticated): %s/_sim/\n", url)
	}
	fmt.Fprintln(stdout, "Nhấn Ctrl+C để dừng / press Ctrl+C to stop")

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	<-ctx.Done()
	fmt.Fprintln(stdout, "Đang dừng / stopping")
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	return nil
}
