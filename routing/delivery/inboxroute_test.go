package delivery

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"lienthong/routing/ledger"
)

// With the ledger's InboxOnRoute (as the hub runs it), the router delivers
// to an inbox as it routes when nothing earlier waits, and the delivery
// stage delivers the rest, in acceptance order: a task that comes before
// earlier documents (one not routed yet) brings them forward, and the one
// routed meanwhile is delivered by routing. Every delivery to the inbox has
// its routed, delivering and delivered events, once; no task is queued for
// those delivered by routing; a repeated task changes nothing.
func TestInboxOnRouteWithTheDeliveryStage(t *testing.T) {
	ctx := context.Background()
	const recp = "000.00.00.R23"
	r := newRig(t, map[string]string{recp: ""}, nil)
	r.l = ledger.New(r.l.Pool(), ledger.Config{Now: r.clk.now, InboxOnRoute: true})
	r.w.l = r.l
	ids := make([]string, 6)
	for i := range ids {
		raw := []byte(fmt.Sprintf("<ir n=%q/>", fmt.Sprint(i+1)))
		sum := sha256.Sum256(raw)
		acc, err := r.l.Accept(ctx, ledger.NewDocument{Sender: sender, DocRef: fmt.Sprintf("ir-%d", i+1), Format: "edxml",
			Recipients: []string{recp}, Raw: raw, SHA256: sum[:]})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = acc.ID
	}
	task := func(id string) ledger.DeliverMessage {
		var m ledger.DeliverMessage
		if err := r.l.Pool().QueryRow(ctx, `SELECT id, document_id::text, recipient, seq FROM deliveries
			WHERE document_id = $1`, id).Scan(&m.DeliveryID, &m.DocumentID, &m.Recipient, &m.Sequence); err != nil {
			t.Fatal(err)
		}
		return m
	}
	inbox := func() []int64 {
		items, err := r.l.Inbox(ctx, recp, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, it := range items {
			seqs = append(seqs, it.Sequence)
		}
		return seqs
	}
	// 2 and 3 are routed while 1 waits (accepted): they stay routed, with tasks.
	if _, err := r.l.Route(ctx, ids[1:3], r.l.Organ); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:3] {
		if st := r.row(task(id).DeliveryID).state; st != ledger.StateRouted {
			t.Fatalf("routed behind a waiting document: %s", st)
		}
	}
	if keys, _ := r.outbox(ledger.TopicDeliver); len(keys) != 2 {
		t.Fatalf("%d delivery tasks queued, want 2", len(keys))
	}
	r.clearOutbox()
	// The task of 3 comes first: 1 is routed (and so delivered), then 2 and 3.
	r.w.handle(ctx, task(ids[2]))
	if got := inbox(); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("inbox %v, want [1 2 3]", got)
	}
	// Nothing waits any more: routing delivers 4, 5 and 6, queueing no task.
	if _, err := r.l.Route(ctx, ids[3:], r.l.Organ); err != nil {
		t.Fatal(err)
	}
	if got := inbox(); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("inbox %v, want [1 … 6]", got)
	}
	if keys, _ := r.outbox(ledger.TopicDeliver); len(keys) != 0 {
		t.Fatalf("%d delivery tasks queued for deliveries made by routing", len(keys))
	}
	// Late or repeated tasks (2's, 4's) find them delivered and do nothing.
	r.w.handleRun(ctx, []ledger.DeliverMessage{task(ids[1]), task(ids[3])})
	for i, id := range ids {
		x := r.row(task(id).DeliveryID)
		if x.state != ledger.StateDelivered || x.attempts != 1 {
			t.Fatalf("document %d: %+v", i+1, x)
		}
		if k := strings.Join(r.eventKinds(id, recp), " "); k != "routed delivering delivered" {
			t.Fatalf("document %d: events %q", i+1, k)
		}
	}
}
