package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// startPprof serves Go's profiles (net/http/pprof) on LT_PPROF_LISTEN when it
// is set, for operators measuring a hub (`go tool pprof
// http://ADDR/debug/pprof/profile?seconds=30`). Only loopback addresses are
// accepted: profiles reveal the inside of the process.
func startPprof(log *slog.Logger) error {
	addr := os.Getenv("LT_PPROF_LISTEN")
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("LT_PPROF_LISTEN=%q: chỉ nhận địa chỉ loopback / only a loopback host:port is accepted", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("LT_PPROF_LISTEN: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}
