package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// principal is a credential as GET /v1/admin/principals lists it.
type principal struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Organ       string     `json:"organ"`
	Name        string     `json:"name"`
	TokenPrefix string     `json:"token_sha256_prefix"`
	CertPrefix  string     `json:"cert_sha256_prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	RevokedBy   string     `json:"revoked_by"`
}

func (p principal) line() string {
	who := p.Kind
	if p.Organ != "" {
		who = p.Organ
	}
	cred := ""
	if p.TokenPrefix != "" {
		cred += " token:" + p.TokenPrefix + "…"
	}
	if p.CertPrefix != "" {
		cred += " cert:" + p.CertPrefix + "…"
	}
	state := "hiệu lực / active"
	if p.RevokedAt != nil {
		state = fmt.Sprintf("đã thu hồi / revoked %s bởi / by %s", p.RevokedAt.Local().Format("2006-01-02 15:04:05"), p.RevokedBy)
	}
	return fmt.Sprintf("  #%-5d %-16s %-24q%s  %s", p.ID, who, p.Name, cred, state)
}

// principals is `hubctl principals` and `hubctl principals revoke ID`.
func (c *client) principals(ctx context.Context, args []string) error {
	if len(args) == 0 {
		b, _, err := c.do(ctx, http.MethodGet, "/v1/admin/principals", nil)
		if err != nil || c.raw {
			if err == nil {
				_, err = c.out.Write(b)
			}
			return err
		}
		var r struct{ Principals []principal }
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		fmt.Fprintln(c.out, "Thông tin xác thực / API credentials:")
		for _, p := range r.Principals {
			fmt.Fprintln(c.out, p.line())
		}
		return nil
	}
	if args[0] != "revoke" {
		return errors.New("cách dùng / usage: hubctl principals [revoke ID [--reason TEXT]]")
	}
	fs := flag.NewFlagSet("principals revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "why the credential is revoked (recorded in the evidence log)")
	rest, err := parseInterspersed(fs, args[1:]) // the id may come before or after the flag
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("cách dùng / usage: hubctl principals revoke ID [--reason TEXT]")
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("mã thông tin xác thực phải là số nguyên dương / the credential id must be a positive integer: %q", rest[0])
	}
	body, _ := json.Marshal(map[string]string{"reason": *reason})
	b, _, err := c.doType(ctx, http.MethodPost, "/v1/admin/principals/"+strconv.FormatInt(id, 10)+"/revoke", "application/json", body)
	if err != nil || c.raw {
		if err == nil {
			_, err = c.out.Write(b)
		}
		return err
	}
	var p principal
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	fmt.Fprintf(c.out, "Đã thu hồi / revoked:\n%s\n", p.line())
	return nil
}

// parseInterspersed parses fs's flags wherever they stand among args and
// returns the other arguments, in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
}
