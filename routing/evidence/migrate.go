package evidence

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/ledger"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory-lock keys of this package.
const (
	LockSequencer    = 0x4c54_4556_5351 // "LTEVSQ": held by the one running Sequencer
	LockCheckpointer = 0x4c54_4556_4350 // "LTEVCP": held by the one running Checkpointer
)

// Migrate applies the evidence log's embedded migrations that have not been
// applied yet, recording them in schema_migrations as "evidence-<name>". Run
// it after ledger.Migrate. It is safe to run from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := ledger.ApplyMigrations(ctx, pool, migrationFS, "evidence-"); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	return nil
}
