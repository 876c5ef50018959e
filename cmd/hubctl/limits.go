package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// organLimits is an organ's delivery limits as GET and PUT
// /v1/admin/organs/{code}/limits carry them.
type organLimits struct {
	MaxAttempts   int   `json:"max_attempts"`
	MaxAgeSeconds int64 `json:"max_age_seconds"`
	PushPipeline  int   `json:"push_pipeline"`
}

const limitsUsage = "cách dùng / usage: hubctl limits CODE [--max-attempts N] [--max-age DURATION] [--push-pipeline N]"

// limits is `hubctl limits CODE`, which shows an organ's delivery limits,
// and the same with flags, which changes the ones given and keeps the others.
func (c *client) limits(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	maxAttempts := fs.Int("max-attempts", 0, "attempts before a delivery is dead (1–1000)")
	maxAge := fs.Duration("max-age", 0, "how long a delivery is retried, e.g. 72h")
	pipeline := fs.Int("push-pipeline", 0, "pushes on the wire at once to the organ's endpoint (1: one at a time)")
	rest, err := parseInterspersed(fs, args) // the organ code may come before or after the flags
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New(limitsUsage)
	}
	path := "/v1/admin/organs/" + url.PathEscape(rest[0]) + "/limits"
	b, _, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	var lim organLimits
	if err := json.Unmarshal(b, &lim); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	changed := false
	fs.Visit(func(f *flag.Flag) {
		changed = true
		switch f.Name {
		case "max-attempts":
			lim.MaxAttempts = *maxAttempts
		case "max-age":
			lim.MaxAgeSeconds = int64(*maxAge / time.Second)
		case "push-pipeline":
			lim.PushPipeline = *pipeline
		}
	})
	if changed {
		body, _ := json.Marshal(lim)
		if b, _, err = c.doType(ctx, http.MethodPut, path, "application/json", body); err != nil {
			return err
		}
		if err := json.Unmarshal(b, &lim); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
	}
	if c.raw {
		_, err := c.out.Write(b)
		return err
	}
	head := "Giới hạn giao văn bản / delivery limits of"
	if changed {
		head = "Đã đổi / changed: giới hạn giao văn bản / delivery limits of"
	}
	fmt.Fprintf(c.out, "%s %s:\n", head, rest[0])
	fmt.Fprintf(c.out, "  số lần thử tối đa / max attempts:        %d\n", lim.MaxAttempts)
	fmt.Fprintf(c.out, "  thời hạn thử lại / retry window:          %s\n", time.Duration(lim.MaxAgeSeconds)*time.Second)
	fmt.Fprintf(c.out, "  gửi nối tiếp trên một kết nối / pushes pipelined: %d (1 = từng văn bản một / one at a time)\n", lim.PushPipeline)
	return nil
}
