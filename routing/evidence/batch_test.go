package evidence

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"lienthong/routing/ledger"
)

// TestGroupCommittedEventsBecomeLeaves: concurrent accepts share
// transactions (ledger group commit) while the sequencer runs; every event
// becomes a leaf, in id order, and no gap is ever skipped (the clock does not
// move, so a gap can only be waited out).
func TestGroupCommittedEventsBecomeLeaves(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stepping := make(chan struct{})
	go func() {
		defer close(stepping)
		for ctx.Err() == nil {
			if _, err := e.seq.Step(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("step: %v", err)
				return
			}
		}
	}()
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("<d%d/>", i)
			sum := sha256.Sum256([]byte(body))
			if _, err := e.led.Accept(context.Background(), ledger.NewDocument{Sender: sender, DocRef: fmt.Sprint("G", i),
				Format: "edxml", Recipients: []string{recipient}, Raw: []byte(body), SHA256: sum[:],
				Flow: &ledger.Flow{Kind: ledger.FlowNew}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cancel()
	<-stepping
	e.drain(t)
	if st := e.led.AcceptStats(); st.Transactions >= n {
		t.Fatalf("%d transactions for %d documents: nothing was batched", st.Transactions, n)
	}
	bg := context.Background()
	size, err := e.log.Size(bg)
	if err != nil || size != n {
		t.Fatalf("log size %d (%v), want %d", size, err, n)
	}
	var prev int64
	for i := range size {
		entry, err := e.log.Leaf(bg, i)
		if err != nil {
			t.Fatal(err)
		}
		if entry.EventID <= prev {
			t.Fatalf("leaf %d holds event %d after event %d", i, entry.EventID, prev)
		}
		prev = entry.EventID
	}
	if g := count(t, e.pool, `SELECT count(*) FROM log_gaps`); g != 0 {
		t.Fatalf("%d gaps skipped", g)
	}
}
