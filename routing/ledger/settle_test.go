package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// pushDoc accepts and routes a document from C02 to the push organ C01 and
// returns its delivery id.
func pushDoc(t *testing.T, l *Ledger, ref string) (docID string, deliveryID int64) {
	t.Helper()
	ctx := context.Background()
	raw := "<push ref=\"" + ref + "\"/>"
	sum := sha256.Sum256([]byte(raw))
	a, err := l.Accept(ctx, NewDocument{Sender: "000.00.00.C02", DocRef: ref, Format: "edxml",
		Recipients: []string{"000.00.00.C01"}, Raw: []byte(raw), SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Route(ctx, []string{a.ID}, l.Organ); err != nil {
		t.Fatal(err)
	}
	if err := l.pool.QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1`, a.ID).Scan(&deliveryID); err != nil {
		t.Fatal(err)
	}
	return a.ID, deliveryID
}

func readAttempt(t *testing.T, l *Ledger, id int64) Attempt {
	t.Helper()
	as, err := l.Attempts(context.Background(), []int64{id})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts of %d: %d, %v", id, len(as), err)
	}
	return as[0]
}

func settle(t *testing.T, l *Ledger, outs ...Outcome) int {
	t.Helper()
	n, err := l.Settle(context.Background(), outs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type deliveryRow struct {
	state    string
	attempts int
}

func rowOf(t *testing.T, l *Ledger, id int64) deliveryRow {
	t.Helper()
	var r deliveryRow
	if err := l.pool.QueryRow(context.Background(), `SELECT state, attempts FROM deliveries WHERE id = $1`, id).
		Scan(&r.state, &r.attempts); err != nil {
		t.Fatal(err)
	}
	return r
}

func kindsOf(t *testing.T, l *Ledger, docID string) string {
	t.Helper()
	evs, err := l.Events(context.Background(), docID)
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, e := range evs {
		if e.Recipient != "" {
			ks = append(ks, e.Kind)
		}
	}
	return strings.Join(ks, " ")
}

// An attempt is read without a write; its settle records the "delivering"
// event at the time the attempt began and the outcome, in that order. A
// worker whose read is stale (another settled the delivery, or it was
// deferred or otherwise changed since) cannot settle it: the delivery keeps
// one outcome and its events appear once.
func TestStaleAttemptCannotSettle(t *testing.T) {
	l, clk := newLedger(t)
	ctx := context.Background()

	t.Run("another worker delivered it", func(t *testing.T) {
		doc, id := pushDoc(t, l, "S1")
		a, b := readAttempt(t, l, id), readAttempt(t, l, id) // two workers hold the same task
		if a.Attempt != 1 || a.IdempotencyKey != doc+"/000.00.00.C01" || a.Body == nil {
			t.Fatalf("attempt read: %+v", a)
		}
		if r := rowOf(t, l, id); r.state != StateRouted || r.attempts != 0 {
			t.Fatalf("reading wrote: %+v", r)
		}
		started := clk.now()
		clk.add(time.Second)
		if n := settle(t, l, b.Delivered(started)); n != 1 {
			t.Fatalf("first settle: %d", n)
		}
		if n := settle(t, l, a.Delivered(started), a.Retry(started, "503", clk.now().Add(time.Minute))); n != 0 {
			t.Fatalf("stale settle settled %d", n)
		}
		if r := rowOf(t, l, id); r.state != StateDelivered || r.attempts != 1 {
			t.Fatalf("after the stale settle: %+v", r)
		}
		if k := kindsOf(t, l, doc); k != "routed delivering delivered" {
			t.Fatalf("events %q", k)
		}
		evs, _ := l.Events(ctx, doc)
		var delivering, delivered Event
		for _, e := range evs {
			switch e.Kind {
			case "delivering":
				delivering = e
			case "delivered":
				delivered = e
			}
		}
		if !delivering.At.Equal(started) || !delivered.At.Equal(started.Add(time.Second)) || delivering.ID > delivered.ID {
			t.Fatalf("delivering %v (#%d), delivered %v (#%d): want the attempt's start, then the settle",
				delivering.At, delivering.ID, delivered.At, delivered.ID)
		}
	})

	t.Run("another worker failed it", func(t *testing.T) {
		doc, id := pushDoc(t, l, "S2")
		a, b := readAttempt(t, l, id), readAttempt(t, l, id)
		if n := settle(t, l, b.Retry(clk.now(), "HTTP 503", clk.now().Add(time.Minute))); n != 1 {
			t.Fatalf("failure settle: %d", n)
		}
		// The row is due again (retrying), but not the version a read: a's
		// late success does not count as a second attempt.
		if n := settle(t, l, a.Delivered(clk.now())); n != 0 {
			t.Fatalf("stale success settled %d", n)
		}
		if r := rowOf(t, l, id); r.state != StateRetrying || r.attempts != 1 {
			t.Fatalf("after the stale settle: %+v", r)
		}
		c := readAttempt(t, l, id) // the retry
		if c.Attempt != 2 {
			t.Fatalf("retry read as attempt %d", c.Attempt)
		}
		if n := settle(t, l, c.Delivered(clk.now())); n != 1 {
			t.Fatalf("retry settle: %d", n)
		}
		if k := kindsOf(t, l, doc); k != "routed delivering retrying delivering delivered" {
			t.Fatalf("events %q", k)
		}
	})

	t.Run("it was deferred", func(t *testing.T) {
		doc, id := pushDoc(t, l, "S3")
		a := readAttempt(t, l, id)
		if ok, err := l.Defer(ctx, id, clk.now().Add(time.Minute), "recipient lane full"); err != nil || !ok {
			t.Fatalf("defer: %v %v", ok, err)
		}
		if n := settle(t, l, a.Delivered(clk.now())); n != 0 {
			t.Fatalf("settled a delivery deferred since the read: %d", n)
		}
		b := readAttempt(t, l, id)
		c := readAttempt(t, l, id)
		if n := settle(t, l, b.Deferred("circuit open", clk.now().Add(time.Minute))); n != 1 {
			t.Fatalf("deferral: %d", n)
		}
		if n := settle(t, l, c.Dead(clk.now(), "HTTP 410")); n != 0 {
			t.Fatalf("settled a delivery deferred by another: %d", n)
		}
		if r := rowOf(t, l, id); r.state != StateRetrying || r.attempts != 0 {
			t.Fatalf("after deferrals: %+v", r)
		}
		// Deferring a routed delivery is an event; deferring a retrying one again is not.
		if k := kindsOf(t, l, doc); k != "routed deferred" {
			t.Fatalf("events %q", k)
		}
	})

	t.Run("dead", func(t *testing.T) {
		doc, id := pushDoc(t, l, "S4")
		if _, err := l.pool.Exec(ctx, `DELETE FROM outbox`); err != nil {
			t.Fatal(err)
		}
		a := readAttempt(t, l, id)
		if n := settle(t, l, a.Dead(clk.now(), "HTTP 410 gone")); n != 1 {
			t.Fatalf("dead settle: %d", n)
		}
		if r := rowOf(t, l, id); r.state != StateDead || r.attempts != 1 {
			t.Fatalf("dead: %+v", r)
		}
		if k := kindsOf(t, l, doc); k != "routed delivering dead" {
			t.Fatalf("events %q", k)
		}
		var n int
		if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2
			AND payload->>'document_id' = $3 AND payload->>'reason' = 'HTTP 410 gone'`, TopicDead, "000.00.00.C01", doc).
			Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d lt.dead messages (%v)", n, err)
		}
		if as, err := l.Attempts(ctx, []int64{id}); err != nil || len(as) != 0 {
			t.Fatalf("a dead delivery read as due: %d %v", len(as), err)
		}
	})

	t.Run("claimed before an upgrade", func(t *testing.T) {
		// A delivery a worker of the previous version claimed (delivering) is
		// not due: the sweep makes it retrying first.
		_, id := pushDoc(t, l, "S5")
		leaveDelivering(t, l, id)
		if as, err := l.Attempts(ctx, []int64{id}); err != nil || len(as) != 0 {
			t.Fatalf("a delivering delivery read as due: %d %v", len(as), err)
		}
	})
}

// A settle of a run keeps the order of its outcomes in the events and
// settles each delivery once even if it is listed twice.
func TestSettleRunInOrder(t *testing.T) {
	l, clk := newLedger(t)
	ctx := context.Background()
	var ids []int64
	var docs []string
	for _, ref := range []string{"R1", "R2", "R3"} {
		d, id := pushDoc(t, l, ref)
		docs, ids = append(docs, d), append(ids, id)
	}
	as, err := l.Attempts(ctx, []int64{ids[2], ids[0], ids[1], 999999})
	if err != nil || len(as) != 3 || as[0].ID != ids[2] || as[1].ID != ids[0] || as[2].ID != ids[1] {
		t.Fatalf("attempts: %+v %v", as, err)
	}
	start := clk.now()
	clk.add(time.Second)
	n, err := l.Settle(ctx, []Outcome{as[0].Delivered(start), as[1].Retry(start, "HTTP 503", clk.now().Add(time.Minute)),
		as[2].Delivered(start), as[0].Dead(start, "twice")})
	if err != nil || n != 3 {
		t.Fatalf("settle: %d %v", n, err)
	}
	var got []string
	rows, err := l.pool.Query(ctx, `SELECT document_id::text || ' ' || kind FROM events
		WHERE kind IN ('delivering', 'delivered', 'retrying', 'dead') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		got = append(got, s)
	}
	want := []string{docs[2] + " delivering", docs[2] + " delivered", docs[0] + " delivering", docs[0] + " retrying",
		docs[1] + " delivering", docs[1] + " delivered"}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
	if _, err := l.Settle(ctx, []Outcome{as[1].Delivered(start), {}}); !errors.Is(err, ErrBadOutcome) {
		t.Fatalf("an empty outcome: %v, want ErrBadOutcome", err)
	}
	if r := rowOf(t, l, ids[0]); r.state != StateRetrying || r.attempts != 1 {
		t.Fatalf("a rejected settle changed %+v", r)
	}
}
