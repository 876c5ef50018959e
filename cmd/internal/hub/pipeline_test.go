package hub

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"lienthong/adapters/webhook/webhooktest"
)

// Through the whole hub (API, ledger, relay, lt.deliver, delivery worker):
// an organ with push_pipeline gets its pushes pipelined once they queue up,
// every one delivered, in acceptance order.
func TestPipelinedPushesThroughTheHub(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()
	sink := webhooktest.New(t)
	sink.Quiet = 20 * time.Millisecond // a push alone waits for it, so that tasks queue up behind it
	o, err := h.l.Organ(ctx, orgC)
	if err != nil {
		t.Fatal(err)
	}
	o.Endpoint, o.PushPipeline = sink.URL, 8
	if err := h.l.UpsertOrgan(ctx, o); err != nil {
		t.Fatal(err)
	}
	const n = 60
	ids := make([]string, n)
	for i := range n {
		ids[i] = h.submit(orgA, []string{orgC}, fmt.Sprint(700+i))
	}
	var want []int64
	for _, id := range ids {
		d := h.waitStates(id, h.tokens[orgA], map[string]string{orgC: "delivered"})
		want = append(want, *d.Recipients[0].Sequence)
	}
	if !slices.IsSorted(want) || len(want) != n {
		t.Fatalf("sequences in acceptance order %v, want increasing", want)
	}
	var seen []int64
	for _, s := range sink.Seqs() {
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("endpoint got %v, want %v (acceptance order)", seen, want)
	}
	if e := sink.Early(); e == 0 {
		t.Fatal("no push was written before the answer to the one before: not pipelined")
	}
	t.Logf("%d of %d pushes written before the previous answer, over %d connections", sink.Early(), n, sink.Conns())
}
