package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"lienthong/routing/evidence"
	"lienthong/routing/ledger"
)

// runAudit is `hubd audit`: recompute the evidence log from the stored rows
// and name the first leaf whose row no longer matches (exit 1).
func runAudit(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (LT_DATABASE_URL)")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("cần --database-url / --database-url is required")
	}
	pool, err := ledger.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := evidence.Audit(ctx, pool)
	var te *evidence.TamperError
	if errors.As(err, &te) {
		fmt.Fprintf(out, "KHÔNG HỢP LỆ / TAMPERED: lá / leaf %d", te.LeafIndex)
		if te.EventID != 0 {
			fmt.Fprintf(out, " (sự kiện / event %d)", te.EventID)
		}
		fmt.Fprintf(out, ": %s\n", te.Reason)
		return fmt.Errorf("nhật ký bằng chứng không khớp dữ liệu / the evidence log does not match the stored rows: %w", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "HỢP LỆ / OK: %d lá / leaves recomputed from the stored rows, root %x\n", rep.TreeSize, rep.Root)
	fmt.Fprintf(out, "  checkpoints checked: %d; events not yet sequenced: %d\n", rep.CheckpointsChecked, rep.Unsequenced)
	if rep.Latest != nil {
		fmt.Fprintf(out, "  latest checkpoint: size %d, signed %s\n", rep.Latest.Size, rep.Latest.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}
