package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// newBatchLedger is newLedger with one flusher, so that a test can hold the
// flusher's first transaction and let the next batch fill behind it.
func newBatchLedger(t *testing.T) *Ledger {
	t.Helper()
	l0, _ := newLedger(t)
	return New(l0.Pool(), Config{AcceptFlushers: 1, AcceptBatch: 64})
}

// holdSequences locks recipient's sequence counter row in a transaction of
// its own, so that an accept to it waits before its commit; release lets it go.
func holdSequences(t *testing.T, l *Ledger, recipient string) (release func()) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.Pool().Exec(ctx, `INSERT INTO recipient_sequences (recipient, last_seq) VALUES ($1, 0)
		ON CONFLICT DO NOTHING`, recipient); err != nil {
		t.Fatal(err)
	}
	tx, err := l.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM recipient_sequences WHERE recipient = $1 FOR UPDATE`, recipient); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(release)
	return release
}

// queued waits until n accepts wait in the committer's queue.
func queued(t *testing.T, l *Ledger, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.batch.mu.Lock()
		q := len(l.batch.queue)
		l.batch.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepts queued, want %d", q, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// taken waits until the flusher has taken everything queued.
func taken(t *testing.T, l *Ledger) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.batch.mu.Lock()
		q, running := len(l.batch.queue), l.batch.running
		l.batch.mu.Unlock()
		if q == 0 && running > 0 {
			time.Sleep(20 * time.Millisecond) // on its way to the held row
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flusher did not take the queue (%d queued, %d running)", q, running)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type acceptResult struct {
	Accepted
	err error
}

// acceptAll starts one Accept per document and returns a func that waits
// for them all.
func acceptAll(l *Ledger, docs []NewDocument) func() []acceptResult {
	out := make([]acceptResult, len(docs))
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := l.Accept(context.Background(), d)
			out[i] = acceptResult{a, err}
		}()
	}
	return func() []acceptResult { wg.Wait(); return out }
}

func TestConcurrentAcceptsShareTransactions(t *testing.T) {
	l := newBatchLedger(t)
	ctx := context.Background()
	release := holdSequences(t, l, "000.00.00.C02")
	first := acceptAll(l, []NewDocument{doc("FIRST", "<first/>")})
	taken(t, l) // the flusher took it and waits on the held row
	const n = 100
	docs := make([]NewDocument, n)
	for i := range docs {
		docs[i] = doc(fmt.Sprint("D", i), fmt.Sprint("<d", i, "/>"))
	}
	rest := acceptAll(l, docs)
	queued(t, l, n)
	var accepted int
	if err := l.Pool().QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&accepted); err != nil || accepted != 0 {
		t.Fatalf("%d documents visible before the first commit (%v)", accepted, err)
	}
	release()
	if r := first()[0]; r.err != nil {
		t.Fatal(r.err)
	}
	for i, r := range rest() {
		if r.err != nil || r.Duplicate || r.ID == "" {
			t.Fatalf("document %d: %+v %v", i, r.Accepted, r.err)
		}
	}
	st := l.AcceptStats()
	// The first document alone, then 100 in batches of at most 64: 3.
	if st.Documents != n+1 || st.Transactions != 3 {
		t.Fatalf("stats %+v, want %d documents in 3 transactions", st, n+1)
	}
}

func TestAcceptBatchResolvesEachDocument(t *testing.T) {
	l := newBatchLedger(t)
	ctx := context.Background()
	existing, err := l.Accept(ctx, doc("OLD", "<old/>"))
	if err != nil {
		t.Fatal(err)
	}
	release := holdSequences(t, l, "000.00.00.C02")
	blocker := acceptAll(l, []NewDocument{doc("FIRST", "<first/>")})
	taken(t, l)

	withSource := func(d NewDocument, src string) NewDocument { d.Source = src; return d }
	unknownSender := doc("BAD", "<bad/>")
	unknownSender.Sender = "000.00.00.C99" // not in the directory: breaks the batch's INSERT
	docs := []NewDocument{
		doc("TWIN", "<twin/>"),                      // 0 ┐ the same submission twice in one batch
		doc("TWIN", "<twin/>"),                      // 1 ┘
		doc("TWIN", "<other/>"),                     // 2 other bytes under the same DocumentId
		doc("OLD", "<old/>"),                        // 3 a repeat of a committed document
		doc("OLD", "<changed/>"),                    // 4 a conflict with a committed document
		withSource(doc("S1", "<s/>"), "axis:1"),     // 5 ┐ one intake key, two DocumentIds
		withSource(doc("S1-bis", "<s/>"), "axis:1"), // 6 ┘
		doc("PLAIN", "<plain/>"),                    // 7
	}
	// Submit one by one so that the batch holds them in this order.
	var results []func() []acceptResult
	for i, d := range docs {
		results = append(results, acceptAll(l, []NewDocument{d}))
		queued(t, l, i+1)
	}
	release()
	if r := blocker()[0]; r.err != nil {
		t.Fatal(r.err)
	}
	got := make([]acceptResult, len(docs))
	for i, wait := range results {
		got[i] = wait()[0]
	}
	before := l.AcceptStats()

	if got[0].err != nil || got[0].Duplicate || got[1].err != nil || !got[1].Duplicate || got[1].ID != got[0].ID {
		t.Errorf("twins: %+v %+v", got[0], got[1])
	}
	if !errors.Is(got[2].err, ErrConflict) {
		t.Errorf("other bytes under a DocumentId of the batch: %v, want ErrConflict", got[2].err)
	}
	if got[3].err != nil || !got[3].Duplicate || got[3].ID != existing.ID {
		t.Errorf("repeat of a committed document: %+v %v", got[3].Accepted, got[3].err)
	}
	if !errors.Is(got[4].err, ErrConflict) {
		t.Errorf("conflict with a committed document: %v", got[4].err)
	}
	if got[5].err != nil || got[5].Duplicate || got[6].err != nil || !got[6].Duplicate || got[6].ID != got[5].ID {
		t.Errorf("same source: %+v %+v", got[5], got[6])
	}
	if got[7].err != nil || got[7].Duplicate {
		t.Errorf("plain: %+v %v", got[7].Accepted, got[7].err)
	}
	// 1 (OLD) + 1 (FIRST) + one batch with TWIN, S1, PLAIN.
	if before.Transactions != 3 || before.Documents != 5 {
		t.Errorf("stats %+v, want 5 documents in 3 transactions", before)
	}
	var docsN, events, outbox, deliveries int
	_ = l.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM events),
		(SELECT count(*) FROM outbox), (SELECT count(*) FROM deliveries)`).Scan(&docsN, &events, &outbox, &deliveries)
	// One outbox row per document (lt.route): lt.events is published from the evidence log.
	if docsN != 5 || events != 5 || outbox != 5 || deliveries != 5 {
		t.Errorf("rows: %d documents, %d events, %d outbox, %d deliveries; want 5, 5, 5, 5", docsN, events, outbox, deliveries)
	}

	// A document that breaks the batch's transaction fails alone.
	release = holdSequences(t, l, "000.00.00.C02")
	blocker = acceptAll(l, []NewDocument{doc("FIRST2", "<first2/>")})
	taken(t, l)
	bad := acceptAll(l, []NewDocument{unknownSender})
	queued(t, l, 1)
	good := acceptAll(l, []NewDocument{doc("GOOD", "<good/>")})
	queued(t, l, 2)
	release()
	_ = blocker()
	if r := bad()[0]; r.err == nil {
		t.Errorf("unknown sender accepted: %+v", r.Accepted)
	}
	if r := good()[0]; r.err != nil || r.Duplicate {
		t.Errorf("a good document of a failed batch: %+v %v", r.Accepted, r.err)
	}
}

func TestBatchedSequencesFollowCommitOrderWithoutGaps(t *testing.T) {
	l0, _ := newLedger(t)
	ctx := context.Background()
	l := New(l0.Pool(), Config{AcceptFlushers: 3, AcceptBatch: 16})
	if err := l.UpsertOrgan(ctx, Organ{Code: "000.00.00.C03", Name: "C", Channel: ChannelPull, Active: true}); err != nil {
		t.Fatal(err)
	}
	// Originals for status packages, which take the one-document path.
	const originals = 40
	for i := range originals {
		d := doc(fmt.Sprint("O", i), fmt.Sprint("<o", i, "/>"))
		d.Flow = &Flow{Kind: FlowNew}
		if _, err := l.Accept(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	before := l.AcceptStats()
	const n = 300
	var docs []NewDocument
	for i := range n {
		d := doc(fmt.Sprint("D", i), fmt.Sprint("<d", i, "/>"))
		d.Flow = &Flow{Kind: FlowNew}
		switch i % 3 {
		case 0:
			d.Recipients = []string{"000.00.00.C02", "000.00.00.C03"}
		case 1:
			d.Recipients = []string{"000.00.00.C03"}
		}
		docs = append(docs, d)
		if i%5 == 0 { // C02 → C01: batched
			r := doc(fmt.Sprint("R", i), fmt.Sprint("<r", i, "/>"))
			r.Sender, r.Recipients, r.Flow = "000.00.00.C02", []string{"000.00.00.C01"}, &Flow{Kind: FlowNew}
			docs = append(docs, r)
		}
		if i%(n/originals) == 0 && i/(n/originals) < originals { // status 01 C02 → C01: one transaction each
			ref := fmt.Sprint("O", i/(n/originals))
			st := doc(ref, fmt.Sprint("<status", i, "/>"))
			st.Sender, st.Recipients = "000.00.00.C02", []string{"000.00.00.C01"}
			st.Flow = &Flow{Kind: FlowStatus, Target: ref, Addressee: "000.00.00.C01", Code: "01"}
			docs = append(docs, st)
		}
	}
	for i, r := range acceptAll(l, docs)() {
		if r.err != nil || r.Duplicate {
			t.Fatalf("document %d: %+v %v", i, r.Accepted, r.err)
		}
	}
	if st := l.AcceptStats(); st.Transactions-before.Transactions >= int64(len(docs)) {
		t.Errorf("%d transactions for %d documents: nothing was batched", st.Transactions-before.Transactions, len(docs))
	}
	for _, r := range []string{"000.00.00.C01", "000.00.00.C02", "000.00.00.C03"} {
		rows, _ := l.Pool().Query(ctx, `SELECT r.seq, e.id FROM deliveries r
			JOIN events e ON e.document_id = r.document_id AND e.kind = 'accepted'
			WHERE r.recipient = $1 ORDER BY r.seq`, r)
		pairs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]int64, error) {
			var p [2]int64
			return p, row.Scan(&p[0], &p[1])
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pairs {
			if p[0] != int64(i+1) {
				t.Fatalf("%s: sequence %d at position %d: gap or repeat", r, p[0], i+1)
			}
			if i > 0 && p[1] <= pairs[i-1][1] {
				t.Fatalf("%s: sequence %d has event %d, before the event %d of sequence %d",
					r, p[0], p[1], pairs[i-1][1], pairs[i-1][0])
			}
		}
		var last int64
		_ = l.Pool().QueryRow(ctx, `SELECT last_seq FROM recipient_sequences WHERE recipient = $1`, r).Scan(&last)
		if last != int64(len(pairs)) {
			t.Fatalf("%s: counter %d, %d deliveries", r, last, len(pairs))
		}
	}
	// Every document has its accepted event, and the outbox no event message.
	var bad, queued int
	_ = l.Pool().QueryRow(ctx, `SELECT count(*) FROM documents d WHERE NOT EXISTS (
		SELECT 1 FROM events e WHERE e.document_id = d.id AND e.kind = 'accepted')`).Scan(&bad)
	_ = l.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = $1`, TopicEvents).Scan(&queued)
	if bad != 0 || queued != 0 {
		t.Fatalf("%d documents without an accepted event, %d lt.events outbox rows", bad, queued)
	}
}

// TestAcceptBatchKeepsEveryBodyExact accepts, in one batch, documents whose
// bodies differ in size (empty, one byte, several KB, larger than the rest
// together) and content (zero bytes, every byte value): the bodies travel
// concatenated in one parameter and are cut apart by offset, so each must
// come back byte for byte, with its size, and none may take a neighbour's
// bytes. A duplicate and a conflict inside the batch do not shift the
// bodies of the documents after them.
func TestAcceptBatchKeepsEveryBodyExact(t *testing.T) {
	l := newBatchLedger(t)
	ctx := context.Background()
	release := holdSequences(t, l, "000.00.00.C02")
	first := acceptAll(l, []NewDocument{doc("FIRST", "<first/>")})
	taken(t, l)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	bodies := [][]byte{{}, {0}, bytes.Repeat([]byte("<a/>"), 2000), every, bytes.Repeat([]byte{0xff, 0}, 150_000),
		[]byte("<dup/>"), []byte("<other/>"), []byte("x")}
	refs := []string{"E0", "E1", "E2", "E3", "E4", "DUP", "DUP", "E7"}
	var docs []NewDocument
	for i, b := range bodies {
		sum := sha256.Sum256(b)
		d := doc(refs[i], "")
		d.Raw, d.SHA256 = b, sum[:]
		docs = append(docs, d)
	}
	docs = append(docs, docs[5]) // the same bytes again: a duplicate
	rest := acceptAll(l, docs)
	queued(t, l, len(docs))
	release()
	if r := first()[0]; r.err != nil {
		t.Fatal(r.err)
	}
	res := rest()
	if st := l.AcceptStats(); st.Transactions != 2 {
		t.Fatalf("stats %+v: the documents were not accepted in one batch", st)
	}
	// The two "DUP" documents raced in the batch: one is new, the other a
	// conflict (other bytes) or a duplicate (the same bytes).
	for i, r := range res {
		want := docs[i].Raw
		switch {
		case r.err != nil:
			if !errors.Is(r.err, ErrConflict) || docs[i].DocRef != "DUP" {
				t.Fatalf("document %d: %v", i, r.err)
			}
			continue
		case r.Duplicate:
			if docs[i].DocRef != "DUP" {
				t.Fatalf("document %d: duplicate of %s", i, r.ID)
			}
		}
		got, _, err := l.Content(ctx, r.ID)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if r.Duplicate {
			want = docs[5].Raw
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("document %d (%s): %d bytes back, want %d bytes", i, docs[i].DocRef, len(got), len(want))
		}
		var size int64
		var empty bool
		if err := l.Pool().QueryRow(ctx, `SELECT size, body IS NOT NULL AND octet_length(body) = 0 FROM documents WHERE id = $1`,
			r.ID).Scan(&size, &empty); err != nil || size != int64(len(want)) || empty != (len(want) == 0) {
			t.Fatalf("document %d: size %d (empty %v), want %d (%v)", i, size, empty, len(want), err)
		}
	}
}

// The batch insert's prepared statement is remembered per connection; a
// server that forgot it (DEALLOCATE ALL, DISCARD ALL from a pooler) must not
// make every later accept on that connection fail.
func TestAcceptBatchSurvivesDeallocate(t *testing.T) {
	l := newBatchLedger(t)
	ctx := context.Background()
	for i := range 3 {
		if _, err := l.Accept(ctx, doc(fmt.Sprintf("DEALLOC%d", i), fmt.Sprintf("<d%d/>", i))); err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		for _, c := range l.Pool().AcquireAllIdle(ctx) {
			if _, err := c.Exec(ctx, "DEALLOCATE ALL"); err != nil {
				t.Fatal(err)
			}
			c.Release()
		}
	}
}
