package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// With InboxOnRoute, Route delivers a pull delivery in its own transaction
// when no earlier delivery to the recipient waits for its first attempt:
// a reader sees accepted, then delivered; the events of routing, claiming
// and delivering are all recorded, in that order; no delivery task is
// queued for it. Earlier deliveries that wait routed are brought forward and
// delivered with it, unless another transaction holds them; one behind a
// document not routed yet, or behind a held one, stays routed, with its
// task, for the delivery stage, so the inbox keeps the order of acceptance;
// one in retry does not hold the later ones back. A repeat of the route
// message changes nothing; the sweep has nothing of the inbox to recover.
func TestInboxOnRoute(t *testing.T) {
	base, c := newLedger(t)
	ctx := context.Background()
	if err := base.UpsertOrgan(ctx, Organ{Code: "000.00.00.C03", Name: "Push", Channel: ChannelPush, Endpoint: "http://x",
		Active: true}); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	l := New(base.pool, Config{Now: c.now, InboxOnRoute: true, OnInboxDelivered: func(n int) { delivered += n }})
	const pull, push = "000.00.00.C02", "000.00.00.C03"
	docs := make([]string, 8) // docs[1] … docs[7]
	for i := 1; i < len(docs); i++ {
		d := doc(fmt.Sprintf("IR-%d", i), fmt.Sprintf("<ir n='%d'/>", i))
		d.Recipients = []string{pull, push}
		a, err := l.Accept(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = a.ID
	}
	type row struct {
		id           int64
		state        string
		attempts     int
		delivered    bool
		tasks, seq   int64
		eventKinds   []string
		eventDetails []map[string]any
	}
	look := func(i int, recp string) row {
		t.Helper()
		var r row
		if err := l.pool.QueryRow(ctx, `SELECT id, state, attempts, delivered_at IS NOT NULL, seq,
			(SELECT count(*) FROM outbox o WHERE o.topic = $3 AND (o.payload->>'delivery_id')::bigint = r.id)
			FROM deliveries r WHERE document_id = $1 AND recipient = $2`, docs[i], recp, TopicDeliver).
			Scan(&r.id, &r.state, &r.attempts, &r.delivered, &r.seq, &r.tasks); err != nil {
			t.Fatal(err)
		}
		evs, err := l.Events(ctx, docs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Recipient == recp {
				r.eventKinds = append(r.eventKinds, e.Kind)
				var d map[string]any
				_ = json.Unmarshal(e.Detail, &d)
				r.eventDetails = append(r.eventDetails, d)
			}
		}
		return r
	}
	route := func(is ...int) int {
		t.Helper()
		var ids []string
		for _, i := range is {
			ids = append(ids, docs[i])
		}
		n, err := l.Route(ctx, ids, l.Organ)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	inbox := func() []string {
		t.Helper()
		items, err := l.Inbox(ctx, pull, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			out = append(out, it.DocumentID)
		}
		return out
	}
	wantRouted := func(i int) {
		t.Helper()
		if r := look(i, pull); r.state != StateRouted || r.tasks != 1 || r.delivered || r.attempts != 0 {
			t.Fatalf("document %d to the inbox: %+v, want routed with its task", i, r)
		}
	}
	wantDelivered := func(i int) {
		t.Helper()
		r := look(i, pull)
		if r.state != StateDelivered || r.tasks != 0 || !r.delivered || r.attempts != 1 {
			t.Fatalf("document %d to the inbox: %+v, want delivered at routing, no task", i, r)
		}
		if want := []string{"routed", "delivering", "delivered"}; !slices.Equal(r.eventKinds, want) {
			t.Fatalf("document %d to the inbox: events %v, want %v", i, r.eventKinds, want)
		}
		if d := r.eventDetails[2]; d["channel"] != ChannelPull || d["sequence"] != float64(r.seq) || d["attempt"] != float64(1) {
			t.Fatalf("document %d: delivered event %v", i, d)
		}
		if d := r.eventDetails[0]; d["channel"] != ChannelPull || d["sequence"] != float64(r.seq) {
			t.Fatalf("document %d: routed event %v", i, d)
		}
	}

	// 2 before 1: 1 waits (accepted), so 2 only gets routed.
	if n := route(2); n != 2 {
		t.Fatalf("route 2: %d deliveries, want 2", n)
	}
	wantRouted(2)
	// 1 has nothing before it: delivered at once. Its push delivery is routed, with its task.
	route(1)
	wantDelivered(1)
	if r := look(1, push); r.state != StateRouted || r.tasks != 1 {
		t.Fatalf("document 1 to the push recipient: %+v", r)
	}
	if got := inbox(); !slices.Equal(got, docs[1:2]) {
		t.Fatalf("inbox %v, want %v", got, docs[1:2])
	}
	// 2 waits (routed) and another transaction holds it (the delivery
	// stage delivering it): 3 stays routed behind it.
	hold, err := l.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE`, look(2, pull).id); err != nil {
		t.Fatal(err)
	}
	route(3)
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantRouted(2)
	wantRouted(3)
	// Routing 4 brings 2 and 3 forward: all three are delivered, in order.
	route(4)
	wantDelivered(4)
	for _, i := range []int{2, 3} {
		r := look(i, pull)
		if r.state != StateDelivered || !r.delivered || r.attempts != 1 ||
			!slices.Equal(r.eventKinds, []string{"routed", "delivering", "delivered"}) {
			t.Fatalf("document %d brought forward: %+v", i, r)
		}
	}
	// Their tasks, queued when they were routed, find them delivered.
	done, other, err := l.DeliverInstant(ctx, []int64{look(2, pull).id, look(3, pull).id}, ChannelPull)
	if err != nil || len(done) != 0 || len(other) != 0 {
		t.Fatalf("late tasks of 2 and 3: %d delivered, %d other, %v", len(done), len(other), err)
	}
	// 6 behind 5 stays routed, and is deferred (retrying); 5 is delivered;
	// 7 does not wait for 6 in retry.
	route(6)
	wantRouted(6)
	if ok, err := l.Defer(ctx, look(6, pull).id, c.now().Add(time.Hour), "recipient lane full"); err != nil || !ok {
		t.Fatalf("defer 6: %v %v", ok, err)
	}
	route(5)
	wantDelivered(5)
	route(7)
	wantDelivered(7)
	if got, want := inbox(), []string{docs[1], docs[2], docs[3], docs[4], docs[5], docs[7]}; !slices.Equal(got, want) {
		t.Fatalf("inbox %v, want %v (sequence order)", got, want)
	}
	if delivered != 6 {
		t.Fatalf("OnInboxDelivered told of %d, want 6", delivered)
	}

	// A repeated route message changes nothing.
	var events int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if n := route(1, 2, 3, 4, 5, 6, 7); n != 0 {
		t.Fatalf("repeat: %d deliveries routed again", n)
	}
	var after int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != events {
		t.Fatalf("repeat: %d events, before %d", after, events)
	}
	// The sweep re-announces the push deliveries (routed, without an
	// attempt) and nothing of the inbox.
	c.add(10 * time.Minute)
	n, err := l.RequeueStuck(ctx, 2*time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("sweep: %d deliveries, want the 7 push ones", n)
	}
	for i := 1; i < len(docs); i++ {
		if i != 6 && look(i, pull).state != StateDelivered {
			t.Fatalf("document %d to the inbox after the sweep: %+v", i, look(i, pull))
		}
	}
}

// Without InboxOnRoute (the default), Route only routes pull deliveries;
// the delivery stage delivers them.
func TestRouteLeavesInboxToDeliveryStageByDefault(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	a, err := l.Accept(ctx, doc("IR-default", "<d/>"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Route(ctx, []string{a.ID}, l.Organ); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := l.pool.QueryRow(ctx, `SELECT state FROM deliveries WHERE document_id = $1`, a.ID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != StateRouted {
		t.Fatalf("state %s, want routed", state)
	}
}

// A routing transaction that fails after delivering to the inbox (here: the
// events cannot be written) leaves nothing behind: the deliveries are still
// accepted, no event and no task was recorded, the sweep announces the
// document for routing again, and the next routing delivers it, with each
// event once.
func TestInboxOnRouteIsAtomic(t *testing.T) {
	base, c := newLedger(t)
	ctx := context.Background()
	l := New(base.pool, Config{Now: c.now, InboxOnRoute: true})
	a, err := l.Accept(ctx, doc("IR-atomic", "<atomic/>"))
	if err != nil {
		t.Fatal(err)
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := l.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	events := count(`SELECT count(*) FROM events`)
	outbox := count(`SELECT count(*) FROM outbox`)
	if _, err := l.pool.Exec(ctx, `CREATE FUNCTION no_delivered() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN IF NEW.kind = 'delivered' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER no_delivered BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION no_delivered()`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Route(ctx, []string{a.ID}, l.Organ); err == nil {
		t.Fatal("route succeeded although its events could not be written")
	}
	if st := stateOf(t, l, a.ID); st != StateAccepted {
		t.Fatalf("after the failed routing: %s, want accepted", st)
	}
	if n := count(`SELECT count(*) FROM events`); n != events {
		t.Fatalf("%d events after the failed routing, before %d", n, events)
	}
	if n := count(`SELECT count(*) FROM outbox`); n != outbox {
		t.Fatalf("%d outbox rows after the failed routing, before %d", n, outbox)
	}
	if _, err := l.pool.Exec(ctx, `DROP TRIGGER no_delivered ON events; DROP FUNCTION no_delivered()`); err != nil {
		t.Fatal(err)
	}
	c.add(10 * time.Minute)
	routeMsgs := `SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2`
	announced := count(routeMsgs, TopicRoute, a.ID) // by the accept
	if n, err := l.RequeueStuck(ctx, 2*time.Minute, 100); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want the accepted delivery", n, err)
	}
	if n := count(routeMsgs, TopicRoute, a.ID); n != announced+1 {
		t.Fatalf("%d route messages for the document after the sweep, want %d", n, announced+1)
	}
	if _, err := l.Route(ctx, []string{a.ID}, l.Organ); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, l, a.ID); st != StateDelivered {
		t.Fatalf("after routing again: %s, want delivered", st)
	}
	var kinds []string
	evs, err := l.Events(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"accepted", "routed", "delivering", "delivered"}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}

func stateOf(t *testing.T, l *Ledger, docID string) string {
	t.Helper()
	var st string
	if err := l.pool.QueryRow(context.Background(), `SELECT state FROM deliveries WHERE document_id = $1`, docID).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
