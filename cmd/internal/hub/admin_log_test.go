package hub

import (
	"context"
	"net/http"
	"testing"
	"time"

	"lienthong/routing/ledger"
)

// Every admin action is a leaf of the evidence log: the trust anchors a
// process starts with, an operator's retry limits and deadlines, and a
// replay (an event of the replayed document, itself a leaf). Each is
// recorded in the transaction that makes the change.
func TestAdminActionsAreLeaves(t *testing.T) {
	h, _ := startTrustHub(t)
	ctx := context.Background()
	op := "tok-operator-admin-log"
	if err := h.l.AddPrincipal(ctx, ledger.Principal{Kind: ledger.RoleOperator, Name: "ops"}, op, nil); err != nil {
		t.Fatal(err)
	}
	if st := h.call("PUT", "/v1/admin/organs/"+orgC+"/limits", op, []byte(`{"max_attempts": 7, "max_age_seconds": 3600}`), nil); st != http.StatusOK {
		t.Fatalf("PUT limits: %d", st)
	}
	if st := h.call("PUT", "/v1/admin/deadlines/"+orgC, op, []byte(`{"delivery_within": "2h", "ack_within": "12h"}`), nil); st != http.StatusOK {
		t.Fatalf("PUT deadlines: %d", st)
	}
	// A refused change records nothing.
	if st := h.call("PUT", "/v1/admin/organs/000.00.00.Z99/limits", op, []byte(`{"max_attempts": 7, "max_age_seconds": 3600}`), nil); st != http.StatusNotFound {
		t.Fatalf("PUT limits of an unknown organ: %d, want 404", st)
	}

	leaf := func(action string) (int, string) {
		var n int
		var actor string
		_ = h.l.Pool().QueryRow(ctx, `SELECT count(*), coalesce(max(e.detail->>'actor'), '') FROM events e
			JOIN log_leaves l ON l.event_id = e.id WHERE e.kind = 'admin' AND e.state = $1`, action).Scan(&n, &actor)
		return n, actor
	}
	for _, action := range []string{ledger.AdminTrustLoaded, ledger.AdminLimitsChanged, ledger.AdminDeadlinesChanged} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, actor := leaf(action)
			if n == 1 {
				if action != ledger.AdminTrustLoaded && actor == "" {
					t.Errorf("%s does not name the operator", action)
				}
				break
			}
			if n > 1 || time.Now().After(deadline) {
				t.Fatalf("%d leaves for admin action %s, want 1", n, action)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var domains int
	if err := h.l.Pool().QueryRow(ctx, `SELECT count(*) FROM events e, jsonb_object_keys(e.detail->'domains')
		WHERE e.kind = 'admin' AND e.state = $1`, ledger.AdminTrustLoaded).Scan(&domains); err != nil || domains == 0 {
		t.Fatalf("trust_loaded names %d domains (%v)", domains, err)
	}
}
