package ledger

import (
	"context"
	"encoding/json"
	"testing"
)

// An admin action is an event without a document, published on lt.events
// from the evidence log like any other (routing/relay.Events), so it leaves
// no outbox row; an event without a document must be an admin action; an
// action needs a name.
func TestAdminEvent(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	id, err := l.AdminEvent(ctx, AdminReplayed, "operator Nguyễn", map[string]any{"delivery_id": 7, "actor": "forged"})
	if err != nil {
		t.Fatal(err)
	}
	var kind, state, detail string
	var doc *string
	if err := l.Pool().QueryRow(ctx, `SELECT document_id::text, kind, state, detail::text FROM events WHERE id = $1`, id).
		Scan(&doc, &kind, &state, &detail); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	_ = json.Unmarshal([]byte(detail), &d)
	if doc != nil || kind != KindAdmin || state != AdminReplayed || d["actor"] != "operator Nguyễn" || d["delivery_id"] != float64(7) {
		t.Fatalf("admin event: doc %v kind %q state %q detail %s", doc, kind, state, detail)
	}
	var queued int
	if err := l.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&queued); err != nil || queued != 0 {
		t.Fatalf("outbox rows for an admin event: %d %v, want none", queued, err)
	}
	if _, err := l.AdminEvent(ctx, "", "x", nil); err == nil {
		t.Error("an admin event without an action was recorded")
	}
	if _, err := l.Pool().Exec(ctx, `INSERT INTO events (kind, at) VALUES ('routed', now())`); err == nil {
		t.Error("an event without a document that is not an admin action was accepted")
	}
}
