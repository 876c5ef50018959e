package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// KindAdmin is the event kind of an admin action; its state names the action.
const KindAdmin = "admin"

// Admin actions recorded with AdminEvent. Other actions may be added; keep
// them lower case with underscores.
const (
	AdminDirectoryLoaded  = "directory_loaded"  // hubd serve --directory
	AdminTrustChanged     = "trust_changed"     // a trust domain or anchor added, removed or replaced
	AdminReplayed         = "replayed"          // a dead letter or delivery replayed by an operator
	AdminRetentionPurge   = "retention_purged"  // document bytes purged after the retention period
	AdminLimitsChanged    = "limits_changed"    // an organ's retry limits set by an operator
	AdminDeadlinesChanged = "deadlines_changed" // an organ's (or the default) delivery and acknowledgement deadlines set
	AdminTrustLoaded      = "trust_loaded"      // the trust anchors a process verifies with, at its start
)

// AdminEvent records an admin action as an event that concerns no document,
// so that it becomes a leaf of the evidence log like every other event.
// actor names who did it (a principal name, "hubd serve --directory", …);
// detail is any JSON-serialisable description (what changed, digests of the
// files loaded). It returns the event id.
func (l *Ledger) AdminEvent(ctx context.Context, action, actor string, detail map[string]any) (int64, error) {
	var id int64
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = l.AdminEventTx(ctx, tx, action, actor, detail)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: admin event: %w", err)
	}
	return id, nil
}

// AdminEventTx is AdminEvent inside the caller's transaction, for actions
// whose effect is written in the same transaction (a replay).
func (l *Ledger) AdminEventTx(ctx context.Context, tx pgx.Tx, action, actor string, detail map[string]any) (int64, error) {
	if action == "" {
		return 0, fmt.Errorf("ledger: admin event: no action")
	}
	d := map[string]any{"actor": actor}
	for k, v := range detail {
		if k != "actor" {
			d[k] = v
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return 0, fmt.Errorf("admin event detail: %w", err)
	}
	now := l.now().UTC()
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO events (document_id, recipient, kind, state, detail, at)
		VALUES (NULL, '', $1, $2, $3, $4) RETURNING id`, KindAdmin, action, b, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert admin event: %w", err)
	}
	ev := Event{ID: id, Kind: KindAdmin, State: action, Detail: b, At: now}
	if err := enqueue(ctx, tx, TopicEvents, KindAdmin, ev); err != nil {
		return 0, err
	}
	return id, nil
}
