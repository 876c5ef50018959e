package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	routed := 0
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, document_id::text, recipient, coalesce(seq, 0) FROM deliveries
			WHERE document_id = ANY ($1) AND state = $2 ORDER BY document_id, id FOR UPDATE`, uids, StateAccepted)
		if err != nil {
			return err
		}
		type row struct {
			id        int64
			doc, recp string
			seq       int64 // assigned at acceptance (0 for rows accepted before migration 0003)
		}
		todo, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.doc, &x.recp, &x.seq)
		})
		if err != nil {
			return err
		}
		type found struct {
			organ Organ
			err   error
		}
		organs := map[string]found{}
		var (
			ids, seqs []int64
			channels  []string
			evs       []newEvent
			keys      []string
			tasks     []any
		)
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
			seq := x.seq
			if seq == 0 {
				if err := tx.QueryRow(ctx, `INSERT INTO recipient_sequences (recipient, last_seq) VALUES ($1, 1)
					ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_sequences.last_seq + 1
					RETURNING last_seq`, x.recp).Scan(&seq); err != nil {
					return fmt.Errorf("sequence: %w", err)
				}
			}
			ids, seqs, channels = append(ids, x.id), append(seqs, seq), append(channels, f.organ.Channel)
			evs = append(evs, newEvent{x.doc, x.recp, "routed", StateRouted,
				map[string]any{"channel": f.organ.Channel, "sequence": seq}})
			keys = append(keys, x.recp)
			tasks = append(tasks, DeliverMessage{DeliveryID: x.id, DocumentID: x.doc, Recipient: x.recp, Sequence: seq})
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries r SET state = $4, seq = u.s, channel = u.c, updated_at = $5
			FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(i, s, c) WHERE r.id = u.i`,
			ids, seqs, channels, StateRouted, now); err != nil {
			return err
		}
		if err := appendEvents(ctx, tx, evs, now); err != nil {
			return err
		}
		if err := enqueueMany(ctx, tx, TopicDeliver, keys, tasks); err != nil {
			return err
		}
		routed = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: route: %w", err)
	}
	return routed, nil
}
