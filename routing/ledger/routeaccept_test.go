package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

const (
	raPull = "000.00.00.C02" // pull, from newLedger
	raPush = "000.00.00.C03"
	raGone = "000.00.00.C04" // in the organs table, but inactive: the directory does not resolve it
)

// newRouteAcceptLedger is newLedger's database with a push and an inactive
// organ added, seen through a ledger that routes at acceptance and delivers
// to inboxes (the hub's configuration), and one that does neither (an older
// hubd, or the flag off).
func newRouteAcceptLedger(t *testing.T, batch int) (on, off *Ledger, inboxed *int) {
	t.Helper()
	base, c := newLedger(t)
	ctx := context.Background()
	for _, o := range []Organ{{Code: raPush, Name: "Push", Channel: ChannelPush, Endpoint: "http://x", Active: true},
		{Code: raGone, Name: "Gone", Channel: ChannelPull, Active: false}} {
		if err := base.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	n := 0
	on = New(base.pool, Config{Now: c.now, AcceptBatch: batch, AcceptFlushers: 3, RouteOnAccept: true, InboxOnRoute: true,
		OnInboxDelivered: func(k int) { mu.Lock(); n += k; mu.Unlock() }})
	off = New(base.pool, Config{Now: c.now, AcceptBatch: batch, InboxOnRoute: true})
	return on, off, &n
}

type raDelivery struct {
	id                  int64
	state, channel      string
	seq                 int64
	attempts            int
	delivered           bool
	tasks, routeTasks   int
	kinds               []string
	details             []map[string]any
	task                DeliverMessage
	eventIDs            []int64
	acceptedID, firstID int64 // the document's accepted event, and its first event
}

func raLook(t *testing.T, l *Ledger, docID, recp string) raDelivery {
	t.Helper()
	ctx := context.Background()
	var r raDelivery
	var task *string
	if err := l.pool.QueryRow(ctx, `SELECT id, state, channel, seq, attempts, delivered_at IS NOT NULL,
		(SELECT count(*) FROM outbox o WHERE o.topic = $3 AND (o.payload->>'delivery_id')::bigint = r.id),
		(SELECT min(payload::text) FROM outbox o WHERE o.topic = $3 AND (o.payload->>'delivery_id')::bigint = r.id),
		(SELECT count(*) FROM outbox o WHERE o.topic = $4 AND o.key = $5),
		(SELECT min(id) FILTER (WHERE kind = 'accepted') FROM events e WHERE e.document_id = r.document_id),
		(SELECT min(id) FROM events e WHERE e.document_id = r.document_id)
		FROM deliveries r WHERE document_id = $1 AND recipient = $2`, docID, recp, TopicDeliver, TopicRoute, docID).
		Scan(&r.id, &r.state, &r.channel, &r.seq, &r.attempts, &r.delivered, &r.tasks, &task, &r.routeTasks,
			&r.acceptedID, &r.firstID); err != nil {
		t.Fatal(err)
	}
	if task != nil {
		m, err := DecodeDeliver([]byte(*task))
		if err != nil {
			t.Fatal(err)
		}
		r.task = m
	}
	rows, err := l.pool.Query(ctx, `SELECT id, kind, detail::text FROM events WHERE document_id = $1 AND recipient = $2 ORDER BY id`,
		docID, recp)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var kind, detail string
		if err := rows.Scan(&id, &kind, &detail); err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		_ = json.Unmarshal([]byte(detail), &d)
		r.eventIDs, r.kinds, r.details = append(r.eventIDs, id), append(r.kinds, kind), append(r.details, d)
	}
	return r
}

func raAccept(t *testing.T, l *Ledger, ref string, recipients ...string) string {
	t.Helper()
	d := doc(ref, "<"+ref+"/>")
	d.Recipients = recipients
	a, err := l.Accept(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func raEventCount(t *testing.T, l *Ledger) int {
	t.Helper()
	var n int
	if err := l.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// With RouteOnAccept, a document is routed in its accept transaction: as
// soon as Accept returns, the pull delivery is in the inbox (routed,
// delivering and delivered events, one attempt, no task) and the push
// delivery is routed with its routed event and its lt.deliver task, which
// the delivery stage can attempt and settle; there is no lt.route message. The events
// and the task say what the router's would (channel, sequence; delivery id).
// The accepted event comes first, and per recipient routed < delivering <
// delivered. A repeated lt.route message for the document changes nothing.
func TestRouteOnAcceptRoutesInTheAcceptTransaction(t *testing.T) {
	l, _, inboxed := newRouteAcceptLedger(t, 0)
	ctx := context.Background()
	id := raAccept(t, l, "RA-1", raPull, raPush)

	pull := raLook(t, l, id, raPull)
	if pull.state != StateDelivered || pull.channel != ChannelPull || !pull.delivered || pull.attempts != 1 || pull.tasks != 0 {
		t.Fatalf("pull delivery right after Accept: %+v, want delivered, one attempt, no task", pull)
	}
	if want := []string{"routed", "delivering", "delivered"}; !slices.Equal(pull.kinds, want) {
		t.Fatalf("pull events %v, want %v", pull.kinds, want)
	}
	if d := pull.details[0]; d["channel"] != ChannelPull || d["sequence"] != float64(pull.seq) || len(d) != 2 {
		t.Fatalf("routed event %v", d)
	}
	if d := pull.details[1]; d["attempt"] != float64(1) || len(d) != 1 {
		t.Fatalf("delivering event %v", d)
	}
	if d := pull.details[2]; d["channel"] != ChannelPull || d["sequence"] != float64(pull.seq) || d["attempt"] != float64(1) {
		t.Fatalf("delivered event %v", d)
	}
	push := raLook(t, l, id, raPush)
	if push.state != StateRouted || push.channel != ChannelPush || push.tasks != 1 || push.attempts != 0 || push.delivered {
		t.Fatalf("push delivery right after Accept: %+v, want routed with one task", push)
	}
	if want := (DeliverMessage{DeliveryID: push.id, DocumentID: id, Recipient: raPush, Sequence: push.seq}); push.task != want {
		t.Fatalf("task %+v, want %+v", push.task, want)
	}
	if !slices.Equal(push.kinds, []string{"routed"}) || push.details[0]["channel"] != ChannelPush ||
		push.details[0]["sequence"] != float64(push.seq) {
		t.Fatalf("push events %v %v", push.kinds, push.details)
	}
	if pull.routeTasks != 0 {
		t.Fatalf("%d lt.route messages for a document routed at acceptance", pull.routeTasks)
	}
	if pull.firstID != pull.acceptedID || pull.eventIDs[0] <= pull.acceptedID || push.eventIDs[0] <= pull.acceptedID {
		t.Fatalf("events out of order: accepted %d, first %d, pull %v, push %v", pull.acceptedID, pull.firstID,
			pull.eventIDs, push.eventIDs)
	}
	if items, err := l.Inbox(ctx, raPull, 0, 10); err != nil || len(items) != 1 || items[0].DocumentID != id {
		t.Fatalf("inbox %+v %v", items, err)
	}
	if *inboxed != 1 {
		t.Fatalf("OnInboxDelivered told of %d, want 1", *inboxed)
	}
	// The delivery stage takes the push task as one the router queued, and
	// settles its attempt.
	as, err := l.Attempts(ctx, []int64{push.task.DeliveryID})
	if err != nil || len(as) != 1 || as[0].Sequence != push.seq || as[0].Channel != ChannelPush || as[0].Attempt != 1 {
		t.Fatalf("attempts of the push delivery: %+v %v", as, err)
	}
	if n := settle(t, l, as[0].Delivered(l.now())); n != 1 {
		t.Fatalf("settled %d push deliveries, want 1", n)
	}
	// A repeated lt.route message (or one from the sweep) changes nothing.
	before := raEventCount(t, l)
	if n, err := l.Route(ctx, []string{id}, l.Organ); err != nil || n != 0 {
		t.Fatalf("route again: %d %v", n, err)
	}
	if after := raEventCount(t, l); after != before {
		t.Fatalf("route again: %d events, before %d", after, before)
	}
}

// A pull delivery is put in the inbox at acceptance only when no earlier
// delivery to its recipient waits for a first attempt: behind a document
// accepted without routing (an older hubd, or the flag off) it is routed,
// with its task, and the delivery stage delivers it after the earlier one, so the inbox keeps
// the order of acceptance. The document the
// flag-off ledger accepted has its lt.route message and no routed delivery;
// the router routes it as before.
func TestRouteOnAcceptWaitsForEarlierDeliveries(t *testing.T) {
	on, off, inboxed := newRouteAcceptLedger(t, 0)
	ctx := context.Background()
	first := raAccept(t, off, "RA-OLD", raPull)
	r1 := raLook(t, off, first, raPull)
	if r1.state != StateAccepted || r1.routeTasks != 1 || len(r1.kinds) != 0 {
		t.Fatalf("flag off: %+v, want accepted with its lt.route message", r1)
	}
	second := raAccept(t, on, "RA-NEW", raPull)
	r2 := raLook(t, on, second, raPull)
	if r2.state != StateRouted || r2.tasks != 1 || r2.delivered || !slices.Equal(r2.kinds, []string{"routed"}) || r2.seq != r1.seq+1 {
		t.Fatalf("behind an accepted delivery: %+v, want routed with its task", r2)
	}
	if *inboxed != 0 {
		t.Fatalf("OnInboxDelivered told of %d, want 0", *inboxed)
	}
	if n, err := on.Route(ctx, []string{first}, on.Organ); err != nil || n != 1 {
		t.Fatalf("route the earlier document: %d %v", n, err)
	}
	if r := raLook(t, on, first, raPull); r.state != StateDelivered || r.attempts != 1 {
		t.Fatalf("the earlier document after routing: %+v, want delivered", r)
	}
	// The later one waits for the delivery stage, which takes its task.
	if r := raLook(t, on, second, raPull); r.state != StateRouted {
		t.Fatalf("the later document after routing the earlier one: %+v, want routed", r)
	}
	if done, _, err := on.DeliverInstant(ctx, []int64{r2.task.DeliveryID}, ChannelPull); err != nil || len(done) != 1 {
		t.Fatalf("deliver the later one: %d %v", len(done), err)
	}
	items, err := on.Inbox(ctx, raPull, 0, 10)
	if err != nil || len(items) != 2 || items[0].DocumentID != first || items[1].DocumentID != second {
		t.Fatalf("inbox %+v %v, want %s then %s", items, err, first, second)
	}
	// Now nothing waits: the next one goes to the inbox at acceptance.
	third := raAccept(t, on, "RA-NEXT", raPull)
	if r := raLook(t, on, third, raPull); r.state != StateDelivered || r.tasks != 0 {
		t.Fatalf("nothing waiting: %+v, want delivered at acceptance", r)
	}
}

// A recipient the directory does not resolve at acceptance is left to the
// router: its delivery stays accepted and the document gets its lt.route
// message; the other recipients are routed at acceptance all the same. The
// router then marks the unresolved one dead, and routes nothing twice.
func TestRouteOnAcceptLeavesUnresolvedRecipientsToTheRouter(t *testing.T) {
	l, _, _ := newRouteAcceptLedger(t, 0)
	ctx := context.Background()
	id := raAccept(t, l, "RA-GONE", raPush, raGone)
	gone := raLook(t, l, id, raGone)
	if gone.state != StateAccepted || gone.routeTasks != 1 || len(gone.kinds) != 0 || gone.seq == 0 {
		t.Fatalf("unresolved recipient: %+v, want accepted (with its sequence) and an lt.route message", gone)
	}
	if push := raLook(t, l, id, raPush); push.state != StateRouted || push.tasks != 1 {
		t.Fatalf("resolved recipient: %+v, want routed", push)
	}
	if n, err := l.Route(ctx, []string{id}, l.Organ); err != nil || n != 0 {
		t.Fatalf("route: %d %v", n, err)
	}
	gone = raLook(t, l, id, raGone)
	if gone.state != StateDead || !slices.Equal(gone.kinds, []string{"dead"}) {
		t.Fatalf("after routing: %+v, want dead", gone)
	}
	if push := raLook(t, l, id, raPush); push.state != StateRouted || push.tasks != 1 || len(push.kinds) != 1 {
		t.Fatalf("resolved recipient after routing: %+v, want unchanged", push)
	}
}

// Under concurrent accepts (group commit with several flushers), some by a
// ledger that does not route at acceptance and are routed meanwhile by the
// router, the order per recipient holds: sequences have no gaps, every first
// attempt of a pull delivery comes in sequence order (the delivery stage
// delivering what was left routed, in order, afterwards), and each
// document's events are in causal order.
func TestRouteOnAcceptKeepsOrderUnderConcurrency(t *testing.T) {
	on, off, _ := newRouteAcceptLedger(t, 8)
	ctx := context.Background()
	const n = 240
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		oldPath  []string
		routeErr error
	)
	stop := make(chan struct{})
	routerDone := make(chan struct{})
	go func() { // the router, routing the old path's documents as they come
		defer close(routerDone)
		for {
			mu.Lock()
			ids := slices.Clone(oldPath)
			mu.Unlock()
			if len(ids) > 0 {
				if _, err := on.Route(ctx, ids, on.Organ); err != nil {
					routeErr = err
					return
				}
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	errs := make(chan error, n)
	// A document accepted the old way, not routed until half the others are
	// in: the pull deliveries accepted meanwhile must wait routed behind it
	// (whatever the timing), the later ones may go to the inbox at once.
	seed := doc("RC-seed", "<rc-seed/>")
	seed.Recipients = []string{raPull}
	sa, err := off.Accept(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i == n/2 {
			wg.Wait()
			mu.Lock()
			oldPath = append(oldPath, sa.ID)
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, recps := on, []string{raPull, raPush}
			if i%7 == 3 {
				l = off
			}
			if i%3 == 1 {
				recps = []string{raPull}
			}
			d := doc(fmt.Sprint("RC-", i), fmt.Sprint("<rc", i, "/>"))
			d.Recipients = recps
			a, err := l.Accept(ctx, d)
			if err != nil {
				errs <- err
				return
			}
			if l == off {
				mu.Lock()
				oldPath = append(oldPath, a.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-routerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if routeErr != nil {
		t.Fatal(routeErr)
	}
	if _, err := on.Route(ctx, oldPath, on.Organ); err != nil {
		t.Fatal(err)
	}
	// The delivery stage: what waits routed for the inbox, in sequence order.
	rows, _ := on.pool.Query(ctx, `SELECT id FROM deliveries WHERE recipient = $1 AND state = $2 ORDER BY seq`, raPull, StateRouted)
	waiting, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range waiting {
		if _, _, err := on.DeliverInstant(ctx, []int64{id}, ChannelPull); err != nil {
			t.Fatal(err)
		}
	}
	var instant int
	if err := on.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries r WHERE recipient = $1 AND NOT EXISTS (
		SELECT FROM outbox o WHERE o.topic = $2 AND (o.payload->>'delivery_id')::bigint = r.id)`, raPull, TopicDeliver).
		Scan(&instant); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{raPull, raPush} {
		rows, _ := on.pool.Query(ctx, `SELECT r.seq, r.state, coalesce((SELECT min(e.id) FROM events e
			WHERE e.document_id = r.document_id AND e.recipient = r.recipient AND e.kind = 'delivering'), 0)
			FROM deliveries r WHERE r.recipient = $1 ORDER BY r.seq`, r)
		type rec struct {
			seq   int64
			state string
			first int64
		}
		recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rec, error) {
			var x rec
			return x, row.Scan(&x.seq, &x.state, &x.first)
		})
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for i, x := range recs {
			if x.seq != int64(i+1) {
				t.Fatalf("%s: sequence %d at position %d", r, x.seq, i+1)
			}
			if r != raPull {
				continue
			}
			if x.state != StateDelivered || x.first == 0 {
				t.Fatalf("%s: sequence %d is %s (first attempt event %d)", r, x.seq, x.state, x.first)
			}
			if x.first <= last {
				raDump(t, on, r, x.seq-1, x.seq)
				t.Fatalf("%s: sequence %d first attempted (event %d) before sequence %d (event %d)", r, x.seq, x.first, x.seq-1, last)
			}
			last = x.first
		}
	}
	// Those left routed with a task at acceptance (behind the seed at
	// least) may since have been delivered by the router bringing them
	// forward, or by the delivery stage above: count the tasks.
	var tasked int
	if err := on.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries r WHERE recipient = $1 AND EXISTS (
		SELECT FROM outbox o WHERE o.topic = $2 AND (o.payload->>'delivery_id')::bigint = r.id)`, raPull, TopicDeliver).
		Scan(&tasked); err != nil {
		t.Fatal(err)
	}
	if instant == 0 || tasked == 0 {
		t.Fatalf("%d pull deliveries went to the inbox at acceptance or routing, %d waited routed with a task: the test tests nothing",
			instant, tasked)
	}
	t.Logf("pull deliveries: %d to the inbox without a task, %d waited with a task (%d still routed at the end)", instant, tasked, len(waiting))
	raCausal(t, on)
}

// raCausal checks every document's events: the accepted event first, and per
// recipient routed before delivering before delivered.
func raCausal(t *testing.T, l *Ledger) {
	t.Helper()
	var bad int
	if err := l.pool.QueryRow(context.Background(), `SELECT count(*) FROM events e JOIN events a
		ON a.document_id = e.document_id AND a.kind = 'accepted' AND e.kind <> 'accepted' AND e.id < a.id`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d events before their document's accepted event", bad)
	}
	rank := func(a string) string {
		return `CASE ` + a + `.kind WHEN 'routed' THEN 1 WHEN 'delivering' THEN 2 WHEN 'delivered' THEN 3 END`
	}
	if err := l.pool.QueryRow(context.Background(), `SELECT count(*) FROM events e JOIN events f
		ON f.document_id = e.document_id AND f.recipient = e.recipient AND f.id > e.id
		WHERE `+rank("e")+` > `+rank("f")).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d pairs of events of one delivery out of causal order", bad)
	}
}

// raDump logs the events of the documents of recp's deliveries with the given
// sequences, to explain a failure.
func raDump(t *testing.T, l *Ledger, recp string, seqs ...int64) {
	t.Helper()
	for _, q := range seqs {
		var doc string
		_ = l.pool.QueryRow(context.Background(), `SELECT document_id::text FROM deliveries WHERE recipient = $1 AND seq = $2`, recp, q).Scan(&doc)
		rows, _ := l.pool.Query(context.Background(), `SELECT id, recipient, kind, detail::text FROM events WHERE document_id = $1 ORDER BY id`, doc)
		for rows.Next() {
			var id int64
			var r, k, d string
			_ = rows.Scan(&id, &r, &k, &d)
			t.Logf("seq %d doc %s: event %d %s %s %s", q, doc, id, r, k, d)
		}
		rows.Close()
	}
}
