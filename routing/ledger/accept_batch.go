package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commit of the accept path.
//
// Concurrent Accept calls of plain documents (Flow nil or FlowNew) are
// coalesced: each caller queues its prepared document and waits; a flusher
// takes up to AcceptBatch queued documents and records them all in one
// transaction of a handful of multi-row statements, then answers every caller
// of the batch once that transaction has committed. A flusher starts as soon
// as a document is queued and fewer than AcceptFlushers are running, and goes
// on while the queue is not empty, so there is no timer: at low load a
// document gets its own transaction at once, under load the documents that
// arrived while the previous batch committed share the next one.
//
// Semantics are those of one transaction per document, in batch order:
// duplicates and conflicts are resolved per document (also between two
// documents of one batch, because rows are inserted in batch order with ON
// CONFLICT DO NOTHING and the losers are then looked up in the same
// transaction); per-recipient sequence numbers are taken in batch order under
// the recipients' counter-row locks, held until commit, so they follow commit
// order without gaps; event ids increase in batch order. If the batch fails
// as a whole for another reason than the database being unavailable, each of
// its documents is retried alone, so that one bad document fails only itself.
//
// Documents of the other business flows (statuses, recalls, updates,
// replacements) keep the one-transaction-per-document path (flows.go): they
// read and lock the documents they are about. So do large bodies streamed
// into the blob store (blobbody.go): one of them fills a batch anyway.

// Group-commit defaults.
const (
	DefaultAcceptBatch    = 64
	DefaultAcceptFlushers = 2
	// maxBatchBytes bounds the document bytes of one batch; a larger
	// document is a batch of its own.
	maxBatchBytes = 16 << 20
	// batchTimeout bounds one batch transaction; callers wait with their
	// own contexts.
	batchTimeout = time.Minute
)

// pendingAccept is one queued document and, once its batch is over, its outcome.
type pendingAccept struct {
	ctx     context.Context
	d       NewDocument
	id      uuid.UUID
	now     time.Time
	meta    []byte
	dueAt   *time.Time
	outcome string // verification outcome; "" when there is no report
	report  []byte // the verification report, nil when none
	detail  []byte // the accepted event's detail
	route   []byte // the lt.route message
	// channels holds, per recipient (d.Recipients' order), the channel its
	// delivery is routed to in the accept transaction, "" for one left to
	// the router (Config.RouteOnAccept off, or the directory did not
	// resolve it).
	channels []string

	res  Accepted // valid once done is closed
	err  error
	done chan struct{}

	tres Accepted // outcome inside the current transaction attempt
	terr error
}

// committer queues pending accepts and runs the flushers.
type committer struct {
	l        *Ledger
	maxBatch int
	flushers int

	mu      sync.Mutex // guards queue and running
	queue   []*pendingAccept
	running int
}

func newCommitter(l *Ledger, batch, flushers int) *committer {
	if batch <= 0 {
		batch = DefaultAcceptBatch
	}
	if flushers <= 0 {
		flushers = DefaultAcceptFlushers
	}
	return &committer{l: l, maxBatch: batch, flushers: flushers}
}

// Accept records a document, one delivery row per recipient, the accepted
// event and the outbox messages in one transaction, and returns once that
// transaction has committed. With Config.RouteOnAccept, a group-committed
// document is routed in that transaction as well (queueFresh). Submitting
// the same bytes again under the same (sender, DocRef) — or the same
// Source — returns the first id with Duplicate set; other bytes under the
// same DocRef give ErrConflict. Nothing is written in either case. Plain documents are group-committed with other
// concurrent accepts (see above); the transaction then holds several
// documents, each with the outcome it would have had alone. When ctx ends
// before the commit, Accept returns ctx's error and the document may or may
// not have been recorded, as when the answer to a COMMIT is lost.
func (l *Ledger) Accept(ctx context.Context, d NewDocument) (Accepted, error) {
	if len(d.Recipients) == 0 {
		return Accepted{}, errors.New("ledger: accept: no recipients")
	}
	if l.batch.maxBatch <= 1 || d.Body != nil || (d.Flow != nil && d.Flow.Kind != FlowNew) {
		return l.acceptOne(ctx, d)
	}
	p, err := l.prepareAccept(ctx, d)
	if err != nil {
		return Accepted{}, fmt.Errorf("ledger: accept: %w", err)
	}
	l.batch.enqueue(p)
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return Accepted{}, fmt.Errorf("ledger: accept: %w", ctx.Err())
	}
}

// prepareAccept does the per-document work that needs no database: ids,
// JSON, the verification outcome. It runs in the caller's goroutine.
func (l *Ledger) prepareAccept(ctx context.Context, d NewDocument) (*pendingAccept, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	p := &pendingAccept{ctx: ctx, d: d, id: id, now: l.now().UTC(), done: make(chan struct{})}
	if p.meta, err = json.Marshal(d.Meta); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	if d.Flow != nil {
		p.dueAt = dueAt(d.Flow.DueDate)
	}
	// Recipients are canonical and de-duplicated by the intake; keep the
	// first of any repeat so that one document has one delivery per organ.
	rs := make([]string, 0, len(d.Recipients))
	for _, r := range d.Recipients {
		if !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	p.d.Recipients = rs
	p.channels = make([]string, len(rs))
	if l.routeOnAccept {
		for i, r := range rs {
			p.channels[i] = l.channelAtAccept(ctx, r)
		}
	}
	if p.report, p.outcome, err = encodeVerification(d.Verification, d.Evidence); err != nil {
		return nil, err
	}
	// The accepted event's detail, as acceptOne writes it (a map there; the
	// fields here are in the map's key order, so the JSON is the same).
	detail := struct {
		Format       string   `json:"format"`
		Recipients   []string `json:"recipients"`
		Sender       string   `json:"sender"`
		SHA256       string   `json:"sha256"`
		Size         int      `json:"size"`
		Verification string   `json:"verification,omitempty"`
	}{d.Format, d.Recipients, d.Sender, hex.EncodeToString(d.SHA256), len(d.Raw), p.outcome}
	if p.detail, err = json.Marshal(detail); err != nil {
		return nil, fmt.Errorf("event detail: %w", err)
	}
	if p.route, err = json.Marshal(RouteMessage{DocumentID: id.String(), Sender: d.Sender,
		Recipients: d.Recipients, Format: d.Format, AcceptedAt: p.now}); err != nil {
		return nil, fmt.Errorf("outbox payload: %w", err)
	}
	return p, nil
}

// channelAtAccept is the channel recipient's delivery is routed to at
// acceptance, as the router would route it (Route with l.Organ), or "" when
// that is left to the router: the directory does not resolve the recipient
// now (the router then marks the delivery dead, or retries a failed lookup),
// or names a channel this ledger does not know. The intake has just looked
// every recipient up, so this is normally an answer from the directory cache.
func (l *Ledger) channelAtAccept(ctx context.Context, recipient string) string {
	o, err := l.Organ(ctx, recipient)
	if err != nil {
		return ""
	}
	switch o.Channel {
	case ChannelPush, ChannelPull, ChannelAxis, ChannelPartner:
		return o.Channel
	}
	return ""
}

func (c *committer) enqueue(p *pendingAccept) {
	c.mu.Lock()
	c.queue = append(c.queue, p)
	start := c.running < c.flushers
	if start {
		c.running++
	}
	c.mu.Unlock()
	if start {
		go c.flush()
	}
}

// flush commits batches until the queue is empty.
func (c *committer) flush() {
	for {
		c.mu.Lock()
		n, size := 0, 0
		for n < len(c.queue) && n < c.maxBatch && (n == 0 || size+len(c.queue[n].d.Raw) <= maxBatchBytes) {
			size += len(c.queue[n].d.Raw)
			n++
		}
		if n == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()

		live := batch[:0]
		for _, p := range batch {
			if err := p.ctx.Err(); err != nil { // its caller has gone: record nothing
				p.err = fmt.Errorf("ledger: accept: %w", err)
				close(p.done)
				continue
			}
			live = append(live, p)
		}
		if len(live) > 0 {
			c.l.commitBatch(live)
		}
	}
}

// commitBatch records batch in one transaction and answers its callers.
func (l *Ledger) commitBatch(batch []*pendingAccept) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var err error
	for attempt := 1; ; attempt++ {
		var inserted, inboxed int
		err = l.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			inserted, inboxed, err = l.acceptBatchTx(ctx, tx, batch)
			return err
		})
		if err == nil {
			l.stats.transactions.Add(1)
			l.stats.documents.Add(int64(inserted))
			if inboxed > 0 {
				l.onInboxDelivered(inboxed)
			}
			for _, p := range batch {
				if p.terr == nil && !p.tres.Duplicate {
					l.known.committed(p.d.Evidence)
				}
				p.res, p.err = p.tres, p.terr
				close(p.done)
			}
			return
		}
		if !retryable(err) || attempt == 3 {
			break
		}
	}
	if len(batch) == 1 || errors.Is(err, ErrUnavailable) {
		for _, p := range batch {
			p.err = fmt.Errorf("ledger: accept: %w", err)
			close(p.done)
		}
		return
	}
	// Something in the batch broke the transaction: let each document
	// succeed or fail alone.
	l.log.WarnContext(ctx, "ledger: accept batch failed; accepting its documents one by one",
		"documents", len(batch), "error", err)
	for _, p := range batch {
		p.res, p.err = l.acceptOne(p.ctx, p.d)
		close(p.done)
	}
}

// retryable reports a transaction that lost a deadlock or serialisation race,
// or found its prepared statement gone from the server (insertDocuments has
// then forgotten it, so the next attempt prepares it again).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") || staleStatement(err)
}

// staleStatement reports an error saying a prepared statement does not exist.
func staleStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "26000"
}

// acceptBatchTx writes a batch in tx: the documents (in batch order, losers
// of a uniqueness rule skipped), then for the new ones their verification
// reports, accepted events, deliveries with sequence numbers (routed, or
// delivered to an inbox, where queueFresh can; accepted otherwise), their
// events and delivery tasks, and the lt.route outbox rows of the documents
// with a delivery left accepted.
// It sets each document's outcome in tres/terr and returns how many were new
// and how many deliveries it put in inboxes.
func (l *Ledger) acceptBatchTx(ctx context.Context, tx pgx.Tx, batch []*pendingAccept) (inserted, inboxed int, err error) {
	n := len(batch)
	var (
		ids, senders, refs, formats, subjects, codeNums, codeNots, promDates = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		respFor, statusCodes, metas, sources = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		btypes, versions                     = make([]int32, n), make([]int32, n)
		sums, bodies                         = make([][]byte, n), make([][]byte, n)
		sizes                                = make([]int64, n)
		ats                                  = make([]time.Time, n)
		dues                                 = make([]*time.Time, n)
	)
	for i, p := range batch {
		p.tres, p.terr = Accepted{}, nil
		d := &p.d
		ids[i], senders[i], refs[i], formats[i], subjects[i] = p.id.String(), d.Sender, d.DocRef, d.Format, d.Subject
		codeNums[i], codeNots[i], promDates[i], respFor[i] = d.CodeNumber, d.CodeNotation, d.PromulgationDate, d.ResponseFor
		statusCodes[i], metas[i], sources[i] = d.StatusCode, string(p.meta), d.Source
		btypes[i], versions[i] = int32(d.BusinessType), int32(max(d.Version, 1))
		sums[i], bodies[i], sizes[i], ats[i], dues[i] = d.SHA256, d.Raw, int64(len(d.Raw)), p.now, p.dueAt
	}
	got, err := insertDocuments(ctx, tx, bodies, ids, senders, refs, formats, subjects, codeNums, codeNots,
		promDates, btypes, respFor, statusCodes, sums, sizes, metas, sources, ats, versions, dues)
	if err != nil {
		return 0, 0, fmt.Errorf("insert documents: %w", err)
	}
	isNew := make(map[string]bool, len(got))
	for _, id := range got {
		isNew[id] = true
	}

	var b pgx.Batch
	var fresh []*pendingAccept
	for _, p := range batch {
		if !isNew[p.id.String()] {
			p := p
			b.Queue(duplicateSQL, p.d.Sender, p.d.DocRef, p.d.Source, p.d.SHA256).QueryRow(func(row pgx.Row) error {
				return resolveDuplicate(row, p.d.SHA256, &p.tres, &p.terr)
			})
			continue
		}
		p.tres = Accepted{ID: p.id.String()}
		fresh = append(fresh, p)
	}
	if len(fresh) > 0 {
		l.queueFresh(&b, fresh, &inboxed)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return 0, 0, err
	}
	return len(fresh), inboxed, nil
}

// insertDocumentsSQL inserts a batch of documents: the small columns as
// arrays, the bodies as one bytea ($20), each body cut out of it at its
// offset ($14, 1-based) for its size (every size is the length of its body).
//
// The bodies are most of the bytes (up to 64 × 20 KB). As a bytea[] they
// were encoded into pgx's parameter buffer and then copied into the Bind
// message, both grown from a few hundred bytes for every batch by append's
// 1.25× steps: about five times the bodies' bytes allocated, copied and
// zeroed per buffer. As one parameter they are copied once into a reused
// buffer and once into the Bind message, which grows to it in one step
// (insertDocuments); PostgreSQL receives one value instead of building an
// array, and substring copies each body out of it once.
const insertDocumentsSQL = `INSERT INTO documents (id, sender, doc_ref, format, subject, code_number,
		code_notation, promulgation_date, business_type, response_for, status_code, sha256, size, body,
		meta, source, received_at, version, due_at)
		SELECT id::uuid, sender, doc_ref, format, subject, code_number, code_notation, promulgation_date,
			business_type::smallint, response_for, status_code, sha256, size,
			substring($20::bytea FROM off FOR size::int), meta::jsonb, source, received_at, version, due_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::int[], $10::text[], $11::text[], $12::bytea[], $13::bigint[], $14::int[],
			$15::text[], $16::text[], $17::timestamptz[], $18::int[], $19::timestamptz[])
			WITH ORDINALITY AS u(id, sender, doc_ref, format, subject, code_number, code_notation,
				promulgation_date, business_type, response_for, status_code, sha256, size, off, meta,
				source, received_at, version, due_at, ord)
		ORDER BY ord
		ON CONFLICT DO NOTHING
		RETURNING id::text`

// insertDocumentsName is insertDocumentsSQL's prepared statement on each
// connection.
const insertDocumentsName = "lt_accept_documents"

// bodyBuffers holds the buffers insertDocuments concatenates bodies into.
var bodyBuffers sync.Pool

// insertDocuments runs insertDocumentsSQL in tx with the arrays small
// ($1…$13, then $15…$19: the columns in the statement's order, without the
// offsets and the bodies) and returns the ids of the documents inserted (the
// others lost a uniqueness rule). Parameters are encoded in binary with the
// connection's type map; the concatenated bodies are a binary bytea, i.e.
// the bytes themselves.
func insertDocuments(ctx context.Context, tx pgx.Tx, bodies [][]byte, small ...any) ([]string, error) {
	if len(small) != 18 {
		return nil, fmt.Errorf("%d column arrays, want 18", len(small))
	}
	total := 0
	for _, b := range bodies {
		total += len(b)
	}
	if int64(total) >= 1<<31 {
		return nil, fmt.Errorf("%d bytes of bodies in one batch", total)
	}
	var all []byte
	if p, _ := bodyBuffers.Get().(*[]byte); p != nil && cap(*p) >= total {
		all = (*p)[:0]
	} else {
		all = make([]byte, 0, total)
	}
	offs := make([]int32, len(bodies))
	for i, b := range bodies {
		offs[i] = int32(len(all) + 1)
		all = append(all, b...)
	}
	defer func() {
		if cap(all) <= 2*maxBatchBytes {
			bodyBuffers.Put(&all)
		}
	}()
	args := make([]any, 0, 20)
	args = append(args, small[:13]...)
	args = append(args, offs)
	args = append(args, small[13:]...)

	conn := tx.Conn()
	sd, err := conn.Prepare(ctx, insertDocumentsName, insertDocumentsSQL)
	if err != nil {
		return nil, err
	}
	if len(sd.ParamOIDs) != len(args)+1 {
		return nil, fmt.Errorf("statement has %d parameters, want %d", len(sd.ParamOIDs), len(args)+1)
	}
	values := make([][]byte, len(args)+1)
	formats := make([]int16, len(args)+1)
	for i, arg := range args {
		if values[i], err = conn.TypeMap().Encode(sd.ParamOIDs[i], pgtype.BinaryFormatCode, arg, nil); err != nil {
			return nil, fmt.Errorf("encode parameter %d: %w", i+1, err)
		}
		formats[i] = pgtype.BinaryFormatCode
	}
	// Last, so that the Bind message grows to it in one step.
	values[len(args)], formats[len(args)] = all, pgtype.BinaryFormatCode
	res := conn.PgConn().ExecPrepared(ctx, sd.Name, values, formats, []int16{pgtype.TextFormatCode}).Read()
	if res.Err != nil {
		if staleStatement(res.Err) {
			// The server forgot the statement (DEALLOCATE ALL, DISCARD ALL)
			// but pgx still has it: drop pgx's record (closing an unknown
			// statement is no error, even in the failed transaction), so that
			// the retry of the batch prepares it again.
			if err := conn.Deallocate(ctx, insertDocumentsName); err != nil {
				return nil, errors.Join(res.Err, err)
			}
		}
		return nil, res.Err
	}
	got := make([]string, len(res.Rows))
	for i, row := range res.Rows {
		got[i] = string(row[0])
	}
	return got, nil
}

const duplicateSQL = `SELECT id, sha256 FROM documents
	WHERE (sender = $1 AND doc_ref = $2) OR ($3 <> '' AND source = $3)
	ORDER BY (sender = $1 AND doc_ref = $2) DESC, sha256 = $4 DESC LIMIT 1`

// resolveDuplicate is duplicate's decision for a document that lost a
// uniqueness rule: the same bytes are a repeat, other bytes a conflict.
func resolveDuplicate(row pgx.Row, sum []byte, res *Accepted, perr *error) error {
	var id uuid.UUID
	var have []byte
	if err := row.Scan(&id, &have); err != nil {
		return fmt.Errorf("find duplicate: %w", err)
	}
	if string(have) != string(sum) {
		*perr = fmt.Errorf("%w: %s", ErrConflict, id)
		return nil
	}
	*res = Accepted{ID: id.String(), Duplicate: true}
	return nil
}

// queueFresh queues the rows that go with new documents, and the count of
// deliveries put in inboxes into *inboxed.
//
// Routing at acceptance (Config.RouteOnAccept): the recipients' channels
// were resolved before the transaction (channelAtAccept), so each delivery
// is inserted in the state the router would have given it, with the same
// events, instead of being inserted accepted and updated by a routing
// transaction fed through the outbox and lt.route:
//   - a resolved recipient: routed with its channel and sequence, the routed
//     event, and its lt.deliver task;
//   - a pull recipient with Config.InboxOnRoute, when no earlier delivery to
//     it still waits for its first attempt (accepted or routed; as inboxNow
//     decides for the router, without bringing routed ones forward):
//     delivered at once (one attempt), with the routed, delivering and
//     delivered events, and no task;
//   - a recipient left to the router: accepted, and its document gets its
//     lt.route message.
//
// Order per recipient (principle 6): the sequence counters are locked by one
// statement and the deliveries inserted by the next. In READ COMMITTED the
// second statement takes a fresh snapshot, after the first has waited for
// every transaction that held a counter row, so it sees every earlier
// delivery to the recipient committed: none waiting means that every lower
// sequence had its first attempt, and the deliveries of the batch follow in
// sequence order (one not put in the inbox stops the later ones of the batch).
//
// Events are in causal order per document (principle 7, every event is a
// leaf in id order): the accepted events of the batch are inserted first
// (once the counters are locked), then per delivery in batch order its
// routed, delivering and delivered ones.
func (l *Ledger) queueFresh(b *pgx.Batch, fresh []*pendingAccept, inboxed *int) {
	var vDocs, vOutcomes, vReports []string
	var vAts []time.Time
	var dDocs, dRecipients, dChannels []string
	var dAts []time.Time
	eDocs, eDetails := make([]string, len(fresh)), make([]string, len(fresh))
	eAts := make([]time.Time, len(fresh))
	var rKeys, rPayloads []string
	for i, p := range fresh {
		id := p.id.String()
		if p.report != nil {
			vDocs, vOutcomes, vReports, vAts = append(vDocs, id), append(vOutcomes, p.outcome),
				append(vReports, string(p.report)), append(vAts, p.now)
		}
		toRouter := false
		for j, r := range p.d.Recipients {
			dDocs, dRecipients, dChannels, dAts = append(dDocs, id), append(dRecipients, r),
				append(dChannels, p.channels[j]), append(dAts, p.now)
			toRouter = toRouter || p.channels[j] == ""
		}
		eDocs[i], eDetails[i], eAts[i] = id, string(p.detail), p.now
		if toRouter {
			rKeys, rPayloads = append(rKeys, id), append(rPayloads, string(p.route))
		}
	}
	// The evidence the reports refer to, each blob once and only if not
	// known to be stored already (verification.go).
	evidence := make([][]EvidenceBlob, 0, len(fresh))
	for _, p := range fresh {
		if len(p.d.Evidence) > 0 {
			evidence = append(evidence, p.d.Evidence)
		}
	}
	if sums, kinds, ders := l.known.missing(evidence...); len(sums) > 0 {
		b.Queue(insertEvidenceSQL, sums, kinds, ders, fresh[0].now)
	}
	if len(vDocs) > 0 {
		b.Queue(`INSERT INTO verification_reports (document_id, outcome, report, created_at)
			SELECT d::uuid, o, r::jsonb, t FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(d, o, r, t)`,
			vDocs, vOutcomes, vReports, vAts)
	}
	// Sequence numbers: the counter rows are locked in recipient order (as
	// assignSequences does) and stay locked until commit, so sequence
	// numbers follow commit order.
	b.Queue(`INSERT INTO recipient_sequences (recipient, last_seq)
		SELECT r, count(*) FROM unnest($1::text[]) AS u(r) GROUP BY r ORDER BY r
		ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_sequences.last_seq + EXCLUDED.last_seq`,
		dRecipients)
	// Accepted events, ids in batch order, before any other event of these
	// documents; after the counters are locked, so that per recipient event
	// ids follow sequence numbers as well. lt.events is published from the evidence log
	// (routing/relay.Events), not through the outbox.
	b.Queue(`INSERT INTO events (document_id, recipient, kind, state, detail, at)
		SELECT doc::uuid, '', 'accepted', $4, detail::jsonb, at
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(doc, detail, at, ord)
		ORDER BY ord`, eDocs, eDetails, eAts, StateAccepted)
	b.Queue(acceptDeliveriesSQL, dDocs, dRecipients, dAts, dChannels, l.inboxOnRoute, TopicDeliver).
		QueryRow(func(row pgx.Row) error { return row.Scan(inboxed) })
	if len(rKeys) > 0 {
		b.Queue(`INSERT INTO outbox (topic, key, payload)
			SELECT $3, k, p::jsonb FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(k, p, ord) ORDER BY ord`,
			rKeys, rPayloads, TopicRoute)
	}
}

// acceptDeliveriesSQL inserts the deliveries of a batch ($1 documents, $2
// recipients, $3 times, $4 channels, "" for one left to the router), numbered
// per recipient in batch order from the counters the previous statement of
// the batch advanced, with their events and delivery tasks ($6: the
// lt.deliver topic); $5 is Config.InboxOnRoute. It returns how many it
// delivered to inboxes. See queueFresh.
//
// The detail of the events and tasks is what routeBatch, inboxDelivered and
// DeliverMessage write (jsonb stores both the same way).
const acceptDeliveriesSQL = `WITH d AS (
		SELECT doc::uuid AS doc, r, t, ch, ord FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
			WITH ORDINALITY AS u(doc, r, t, ch, ord)),
	c AS (SELECT r, count(*) AS n, bool_or(ch = '` + ChannelPull + `') AS pull FROM d GROUP BY r),
	s AS (SELECT c.r, q.last_seq - c.n AS base,
			$5::bool AND c.pull AND NOT EXISTS (SELECT FROM deliveries w WHERE w.recipient = c.r
				AND w.seq <= q.last_seq - c.n
				AND w.state IN ('` + StateAccepted + `', '` + StateRouted + `')) AS open -- deliveries_waiting_seq
		FROM c JOIN recipient_sequences q ON q.recipient = c.r),
	x AS (SELECT d.doc, d.r, d.t, d.ch, d.ord, s.base + row_number() OVER w AS seq,
			s.open AND bool_and(d.ch = '` + ChannelPull + `') OVER w AS inbox
		FROM d JOIN s ON s.r = d.r
		WINDOW w AS (PARTITION BY d.r ORDER BY d.ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
	ins AS (INSERT INTO deliveries (document_id, recipient, state, channel, seq, attempts, updated_at, delivered_at)
		SELECT doc, r, CASE WHEN inbox THEN '` + StateDelivered + `' WHEN ch <> '' THEN '` + StateRouted + `'
				ELSE '` + StateAccepted + `' END,
			ch, seq, CASE WHEN inbox THEN 1 ELSE 0 END, t, CASE WHEN inbox THEN t END
		FROM x ORDER BY ord
		RETURNING id, document_id, recipient, state, channel, seq),
	y AS (SELECT i.id, i.document_id, i.recipient, i.state, i.channel, i.seq, x.t, x.ord
		FROM ins i JOIN x ON x.doc = i.document_id AND x.r = i.recipient),
	ev AS (INSERT INTO events (document_id, recipient, kind, state, detail, at)
		SELECT y.document_id, y.recipient, k.kind, k.kind, k.detail, y.t
		FROM y CROSS JOIN LATERAL (VALUES
			(1, '` + StateRouted + `', jsonb_build_object('channel', y.channel, 'sequence', y.seq)),
			(2, '` + StateDelivering + `', jsonb_build_object('attempt', 1)),
			(3, '` + StateDelivered + `', jsonb_build_object('attempt', 1, 'channel', y.channel, 'sequence', y.seq))
			) AS k(n, kind, detail)
		WHERE y.state <> '` + StateAccepted + `' AND (k.n = 1 OR y.state = '` + StateDelivered + `')
		ORDER BY y.ord, k.n),
	task AS (INSERT INTO outbox (topic, key, payload)
		SELECT $6, y.recipient, jsonb_build_object('delivery_id', y.id, 'document_id', y.document_id,
			'recipient', y.recipient, 'sequence', y.seq)
		FROM y WHERE y.state = '` + StateRouted + `' ORDER BY y.ord)
	SELECT count(*) FROM y WHERE state = '` + StateDelivered + `'`
