// Command tsa-sim runs an RFC 3161 time-stamping authority simulator for
// development (routing/evidence/tsasim): POST application/timestamp-query,
// answer application/timestamp-reply, signed by a throwaway key made at
// start. Point `hubd dev --tsa-url http://ADDR/` at it. --hang makes every
// request wait forever, to watch the hub go on without its TSA.
//
//	tsa-sim [--listen 127.0.0.1:8318] [--hang]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"lienthong/routing/evidence/tsasim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8318", "listen address / địa chỉ lắng nghe")
	hang := flag.Bool("hang", false, "hold every request forever / treo mọi yêu cầu")
	flag.Parse()
	if err := run(*listen, *hang); err != nil {
		fmt.Fprintf(os.Stderr, "tsa-sim: lỗi / error: %v\n", err)
		os.Exit(1)
	}
}

func run(listen string, hang bool) error {
	sim, err := tsasim.New()
	if err != nil {
		return err
	}
	if hang {
		sim.Hang()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: listen, Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sim.Release()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("tsa-sim: RFC 3161 TSA (TEST ONLY) on http://%s/ (hang=%v)\n", listen, hang)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
