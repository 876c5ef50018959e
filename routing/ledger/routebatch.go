package ledger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// enqueueMany writes outbox rows of one topic in tx, in the order given, with
// one statement.
func enqueueMany(ctx context.Context, tx pgx.Tx, topic string, keys []string, payloads []any) error {
	if len(keys) == 0 {
		return nil
	}
	ps := make([]string, len(payloads))
	for i, p := range payloads {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("outbox payload: %w", err)
		}
		ps[i] = string(b)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, key, payload)
		SELECT $1, k, p::jsonb FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(k, p, o) ORDER BY o`,
		topic, keys, ps); err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

// routeBatch is Route with a constant number of statements per batch of
// documents (one transaction per Kafka fetch batch of the router): one lock
// of the accepted deliveries, one lookup per distinct recipient, one update,
// the routed events and the delivery tasks as multi-row inserts. The rare
// cases (a recipient that left the directory, a delivery accepted before
// sequences were assigned at acceptance) are handled row by row as before.
//
// With Config.InboxOnRoute, the pull deliveries that inboxNow allows are
// delivered in the same update (accepted → delivered, one attempt), with the
// routed, delivering and delivered events and no delivery task, together
// with the earlier routed ones it brings forward (deliverForward).
func (l *Ledger) routeBatch(ctx context.Context, docIDs []string, resolve Resolver) (int, error) {
	uids := make([]uuid.UUID, 0, len(docIDs))
	for _, id := range docIDs {
		if u, err := uuid.Parse(id); err == nil {
			uids = append(uids, u)
		}
	}
	if len(uids) == 0 {
		return 0, nil
	}
	now := l.now().UTC()
	routedN, inboxN := 0, 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, document_id::text, recipient, coalesce(seq, 0), attempts FROM deliveries
			WHERE document_id = ANY ($1) AND state = $2 ORDER BY document_id, id FOR UPDATE`, uids, StateAccepted)
		if err != nil {
			return err
		}
		type row struct {
			id        int64
			doc, recp string
			seq       int64 // assigned at acceptance (0 for rows accepted before migration 0003)
			attempts  int
		}
		todo, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.doc, &x.recp, &x.seq, &x.attempts)
		})
		if err != nil {
			return err
		}
		type found struct {
			organ Organ
			err   error
		}
		organs := map[string]found{}
		type routed struct {
			row
			channel string
			inbox   bool // delivered now (InboxOnRoute)
		}
		var out []routed
		var fwdEvs []eventGroup // events of the earlier deliveries brought forward
		for _, x := range todo {
			f, ok := organs[x.recp]
			if !ok {
				f.organ, f.err = resolve(ctx, x.recp)
				organs[x.recp] = f
			}
			if f.err != nil {
				if errors.Is(f.err, ErrUnknownOrgan) {
					if err := l.markDead(ctx, tx, x.id, x.doc, x.recp, "recipient left the directory", now); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("resolve %s: %w", x.recp, f.err)
			}
			if x.seq == 0 {
				if err := tx.QueryRow(ctx, `INSERT INTO recipient_sequences (recipient, last_seq) VALUES ($1, 1)
					ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_sequences.last_seq + 1
					RETURNING last_seq`, x.recp).Scan(&x.seq); err != nil {
					return fmt.Errorf("sequence: %w", err)
				}
			}
			out = append(out, routed{row: x, channel: f.organ.Channel})
		}
		if len(out) == 0 {
			return nil
		}
		if l.inboxOnRoute {
			ids := make([]int64, len(out))
			recps := make([]string, len(out))
			seqs := make([]int64, len(out))
			pull := make([]bool, len(out))
			for i, x := range out {
				ids[i], recps[i], seqs[i], pull[i] = x.id, x.recp, x.seq, x.channel == ChannelPull
			}
			instant, fwd, err := inboxNow(ctx, tx, ids, recps, seqs, pull)
			if err != nil {
				return err
			}
			for i := range out {
				out[i].inbox = instant[i]
			}
			if fwdEvs, err = deliverForward(ctx, tx, fwd, now); err != nil {
				return err
			}
			inboxN = len(fwdEvs)
		}
		var (
			ids, seqs []int64
			channels  []string
			inbox     []bool
			groups    = fwdEvs
			keys      []string
			tasks     []any
			delivered int
		)
		for _, x := range out {
			ids, seqs, channels, inbox = append(ids, x.id), append(seqs, x.seq), append(channels, x.channel), append(inbox, x.inbox)
			evs := []newEvent{{x.doc, x.recp, "routed", StateRouted,
				map[string]any{"channel": x.channel, "sequence": x.seq}}}
			if x.inbox {
				evs = inboxDelivered(evs, x.doc, x.recp, x.attempts+1, x.channel, x.seq)
			}
			groups = append(groups, eventGroup{x.recp, x.seq, evs})
			if x.inbox {
				delivered++
				continue
			}
			keys = append(keys, x.recp)
			tasks = append(tasks, DeliverMessage{DeliveryID: x.id, DocumentID: x.doc, Recipient: x.recp, Sequence: x.seq})
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries r SET seq = u.s, channel = u.c, updated_at = $5,
				state = CASE WHEN u.d THEN $6 ELSE $4 END,
				attempts = r.attempts + CASE WHEN u.d THEN 1 ELSE 0 END,
				delivered_at = CASE WHEN u.d THEN $5 ELSE r.delivered_at END,
				next_attempt_at = CASE WHEN u.d THEN NULL ELSE r.next_attempt_at END
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $7::bool[]) AS u(i, s, c, d) WHERE r.id = u.i`,
			ids, seqs, channels, StateRouted, now, StateDelivered, inbox); err != nil {
			return err
		}
		if err := appendEvents(ctx, tx, flattenEvents(groups), now); err != nil {
			return err
		}
		if err := enqueueMany(ctx, tx, TopicDeliver, keys, tasks); err != nil {
			return err
		}
		routedN, inboxN = len(ids), inboxN+delivered
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: route: %w", err)
	}
	if inboxN > 0 {
		l.onInboxDelivered(inboxN)
	}
	return routedN, nil
}

// forward is a routed inbox delivery outside a routing batch that the batch
// delivers with its own, to keep the order.
type forward struct {
	id, seq  int64
	doc      string
	recp     string
	attempts int
}

// maxForward bounds the earlier deliveries one routing batch looks at per
// inbox recipient.
const maxForward = 256

// inboxNow says which pull deliveries of a routing batch (ids, recps, seqs;
// pull tells which go to an inbox) may be delivered in the routing
// transaction without breaking the order of first attempts per recipient
// (ARCHITECTURE.md principle 6), and which earlier deliveries to the same
// recipients, outside the batch, it must deliver with them (fwd).
//
// Per recipient it looks at the deliveries outside the batch that still wait
// for their first attempt (accepted or routed; one in retry does not hold
// later ones back, as in the delivery stage) with a lower sequence than the
// batch's highest. The routed ones to the inbox that no other transaction
// holds (the delivery stage delivering them, another router) are brought
// forward, locked by tx; the first of the others (accepted: its document is
// not routed yet; held elsewhere; routed to another channel before the
// directory changed) is where delivering stops: the batch's deliveries
// after it stay routed, for the delivery stage.
//
// A delivery accepted before one of the batch has a lower sequence and is
// committed (the sequence counter of its recipient stays locked until the
// accept commits), so the first statement sees it. The batch's own rows are
// locked by tx and still accepted.
func inboxNow(ctx context.Context, tx pgx.Tx, ids []int64, recps []string, seqs []int64, pull []bool) (
	instant []bool, fwd []forward, err error) {
	instant = make([]bool, len(ids))
	top := map[string]int64{} // per inbox recipient, the batch's highest sequence
	var codes []string
	for i, r := range recps {
		if !pull[i] || seqs[i] <= 0 {
			continue
		}
		if _, ok := top[r]; !ok {
			codes = append(codes, r)
		}
		top[r] = max(top[r], seqs[i])
	}
	if len(codes) == 0 {
		return instant, nil, nil
	}
	tops := make([]int64, len(codes))
	for i, c := range codes {
		tops[i] = top[c]
	}
	rows, err := tx.Query(ctx, `SELECT r.code, w.id, w.document_id::text, w.seq, w.state, w.channel, w.attempts
		FROM unnest($1::text[], $2::bigint[]) AS r(code, top)
		CROSS JOIN LATERAL (SELECT id, document_id, seq, state, channel, attempts FROM deliveries
			WHERE recipient = r.code AND seq < r.top
			AND state IN ('`+StateAccepted+`', '`+StateRouted+`') -- deliveries_waiting_seq, even in a generic plan
			AND id <> ALL ($3) ORDER BY seq LIMIT $4) w
		ORDER BY r.code, w.seq`, codes, tops, ids, maxForward)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting deliveries: %w", err)
	}
	type waiting struct {
		forward
		state, channel string
	}
	before := map[string][]waiting{}
	for rows.Next() {
		var w waiting
		if err := rows.Scan(&w.recp, &w.id, &w.doc, &w.seq, &w.state, &w.channel, &w.attempts); err != nil {
			return nil, nil, fmt.Errorf("waiting deliveries: %w", err)
		}
		before[w.recp] = append(before[w.recp], w)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("waiting deliveries: %w", err)
	}
	// stop: per recipient, the first sequence that may not be delivered now.
	stop := map[string]int64{}
	var candidates []int64
	for _, c := range codes {
		ws := before[c]
		stop[c] = top[c] + 1
		if len(ws) == maxForward { // more may wait beyond what was looked at
			stop[c] = ws[len(ws)-1].seq
		}
		for _, w := range ws {
			if w.seq >= stop[c] {
				break
			}
			if w.state != StateRouted || w.channel != ChannelPull {
				stop[c] = w.seq
				break
			}
			candidates = append(candidates, w.id)
		}
	}
	if len(candidates) > 0 {
		rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE id = ANY ($1) AND state = '`+StateRouted+`'
			ORDER BY id FOR UPDATE SKIP LOCKED`, candidates)
		if err != nil {
			return nil, nil, fmt.Errorf("lock waiting deliveries: %w", err)
		}
		locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, nil, fmt.Errorf("lock waiting deliveries: %w", err)
		}
		ours := make(map[int64]bool, len(locked))
		for _, id := range locked {
			ours[id] = true
		}
		for _, c := range codes {
			for _, w := range before[c] {
				if w.seq >= stop[c] {
					break
				}
				if !ours[w.id] { // held by another transaction, or settled meanwhile
					stop[c] = w.seq
					break
				}
				fwd = append(fwd, w.forward)
			}
		}
		// Locked rows past a stop stay as they are (routed); the lock ends with tx.
	}
	for i, r := range recps {
		if pull[i] && seqs[i] > 0 && seqs[i] < stop[r] {
			instant[i] = true
		}
	}
	return instant, fwd, nil
}

// eventGroup is the events of one delivery in a routing transaction.
type eventGroup struct {
	recp string
	seq  int64
	evs  []newEvent
}

// flattenEvents orders the groups of a routing transaction per recipient by
// sequence, so that the events (and the evidence log, in event id order) show
// the first attempts to a recipient in sequence order even when an earlier
// delivery of the batch is delivered together with later ones brought
// forward. Across recipients any order keeps each document's events causal:
// its accepted event was recorded by its accept transaction.
func flattenEvents(groups []eventGroup) []newEvent {
	slices.SortStableFunc(groups, func(a, b eventGroup) int {
		return cmp.Or(strings.Compare(a.recp, b.recp), cmp.Compare(a.seq, b.seq))
	})
	var evs []newEvent
	for _, g := range groups {
		evs = append(evs, g.evs...)
	}
	return evs
}

// deliverForward delivers the routed inbox deliveries that a routing batch
// brings forward (locked by tx), and returns the events the delivery stage
// records (DeliverInstant), for the batch to append with its own. Their
// tasks, when they come, find them delivered.
func deliverForward(ctx context.Context, tx pgx.Tx, fwd []forward, now time.Time) ([]eventGroup, error) {
	if len(fwd) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(fwd))
	groups := make([]eventGroup, len(fwd))
	for i, f := range fwd {
		ids[i] = f.id
		groups[i] = eventGroup{f.recp, f.seq, inboxDelivered(nil, f.doc, f.recp, f.attempts+1, ChannelPull, f.seq)}
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $2, attempts = attempts + 1, delivered_at = $3, updated_at = $3,
		next_attempt_at = NULL, last_error = '' WHERE id = ANY ($1)`, ids, StateDelivered, now); err != nil {
		return nil, fmt.Errorf("deliver earlier inbox deliveries: %w", err)
	}
	return groups, nil
}
