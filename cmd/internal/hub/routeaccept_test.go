package hub

import (
	"context"
	"testing"
	"time"
)

// The hub routes at acceptance by default: when the API has answered 202,
// the inbox recipient has the document and the push recipient's delivery is
// routed, its routed event stamped with the acceptance time (no routing
// transaction came after). With RouteAtRouter the same document goes through
// lt.route and the router, and is delivered all the same.
func TestHubRoutesAtAcceptance(t *testing.T) {
	for _, atRouter := range []bool{false, true} {
		name := map[bool]string{false: "at acceptance", true: "through the router"}[atRouter]
		t.Run(name, func(t *testing.T) {
			h := startHub(t, func(c *Config) { c.RouteAtRouter = atRouter })
			id := h.submit(orgA, []string{orgB, orgC}, "1501")
			ctx := context.Background()
			var accepted time.Time
			var routed []time.Time
			if err := h.l.Pool().QueryRow(ctx, `SELECT min(at) FILTER (WHERE kind = 'accepted'),
				coalesce(array_agg(at ORDER BY recipient) FILTER (WHERE kind = 'routed'), '{}')
				FROM events WHERE document_id = $1`, id).Scan(&accepted, &routed); err != nil {
				t.Fatal(err)
			}
			if !atRouter {
				if len(routed) != 2 || !routed[0].Equal(accepted) || !routed[1].Equal(accepted) {
					t.Fatalf("right after 202: routed events at %v, accepted at %v; want both routed in the accept transaction",
						routed, accepted)
				}
				var state string
				if err := h.l.Pool().QueryRow(ctx, `SELECT state FROM deliveries WHERE document_id = $1 AND recipient = $2`,
					id, orgB).Scan(&state); err != nil || state != "delivered" {
					t.Fatalf("inbox recipient right after 202: %q %v, want delivered", state, err)
				}
			}
			h.waitStates(id, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
			if atRouter {
				if err := h.l.Pool().QueryRow(ctx, `SELECT coalesce(array_agg(at ORDER BY recipient), '{}') FROM events
					WHERE document_id = $1 AND kind = 'routed'`, id).Scan(&routed); err != nil {
					t.Fatal(err)
				}
				if len(routed) != 2 || !routed[0].After(accepted) || !routed[1].After(accepted) {
					t.Fatalf("routed events at %v, accepted at %v; want them routed later, by the router", routed, accepted)
				}
			}
		})
	}
}
