package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Kinds of business flow a submitted document takes part in.
const (
	FlowNew         = "new"         // a business document (type 0, or a hub envelope)
	FlowStatus      = "status"      // an edXML status package (01–06, 13, 15, 16)
	FlowRevocation  = "revocation"  // type 1: asks its recipients to give the original back
	FlowUpdate      = "update"      // type 2: a new version of the original
	FlowReplacement = "replacement" // type 3: replaces the original
)

// Flow tells the accept transaction how a document relates to the documents
// before it. The intake derives it from the parsed envelope.
type Flow struct {
	Kind string
	// Target is the DocumentId of the original: ResponseFor/DocumentId of a
	// status or revocation, Bussiness/DocumentId of an update, the replaced
	// DocumentId of a replacement.
	Target string
	// Addressee is the canonical organ of a status's ResponseFor/OrganId: the
	// original's sender (01–06, 15, 16) or the recipient asked (13).
	Addressee   string
	Code        string // status code
	Description string // status Description, kept in the event
	DueDate     string // DueDate as written (yyyy/MM/dd), business documents only
}

// flowPlan is what planFlow decided, applied by applyFlow once the document
// row exists.
type flowPlan struct {
	kind     string
	original uuid.UUID // zero for new documents
	dueAt    *time.Time
	changes  []bizChange
	// supersede marks the original as superseded by the new document.
	supersede bool
}

// bizChange is one (original, recipient) transition and its event.
type bizChange struct {
	recipient string
	next      bizRow
	event     string // event kind on the original
	detail    map[string]any
	recallBy  bool // the new document is the pending recall
}

// lockDocRef serialises submissions under one (sender, DocumentId) so that
// versions are numbered without gaps or races.
func lockDocRef(ctx context.Context, tx pgx.Tx, sender, docRef string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, sender, docRef)
	return err
}

// planFlow runs before the document row is inserted, in the accept
// transaction. It returns the id of an earlier submission when this one is a
// repeat (the same bytes, or a status already recorded), a *FlowError when the
// flow forbids it, or the plan to apply. It sets d.Version.
func (l *Ledger) planFlow(ctx context.Context, tx pgx.Tx, d *NewDocument, now time.Time) (*flowPlan, string, error) {
	f := d.Flow
	if err := lockDocRef(ctx, tx, d.Sender, d.DocRef); err != nil {
		return nil, "", fmt.Errorf("lock document id: %w", err)
	}
	var dup uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM documents WHERE sender = $1 AND doc_ref = $2 AND sha256 = $3
		ORDER BY version LIMIT 1`, d.Sender, d.DocRef, d.SHA256).Scan(&dup)
	if err == nil {
		return nil, dup.String(), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("find repeat: %w", err)
	}
	p := &flowPlan{kind: f.Kind}
	switch f.Kind {
	case FlowNew:
		p.dueAt = dueAt(f.DueDate)
		return p, "", nil
	case FlowStatus:
		return l.planStatus(ctx, tx, d, p, now)
	case FlowRevocation:
		return p, "", l.planRevocation(ctx, tx, d, p, now)
	case FlowUpdate, FlowReplacement:
		return p, "", l.planSupersede(ctx, tx, d, p, now)
	}
	return nil, "", fmt.Errorf("unknown flow kind %q", f.Kind)
}

// original is a business document found by (sender, DocumentId).
type original struct {
	id           uuid.UUID
	businessType int
	originalID   *uuid.UUID
	supersededBy *uuid.UUID
}

// findOriginal returns the latest version of a business document (or of a
// revocation, when revocations is set) of sender under docRef, preferring a
// version that organ received.
func findOriginal(ctx context.Context, tx pgx.Tx, sender, docRef, organ string, revocations bool) (original, bool, error) {
	var o original
	err := tx.QueryRow(ctx, `SELECT d.id, d.business_type, d.original_id, d.superseded_by FROM documents d
		WHERE d.sender = $1 AND d.doc_ref = $2 AND d.format <> 'edxml-status' AND (d.business_type <> 1 OR $4)
		ORDER BY EXISTS (SELECT 1 FROM deliveries r WHERE r.document_id = d.id AND r.recipient = $3) DESC,
			d.version DESC LIMIT 1`, sender, docRef, organ, revocations).
		Scan(&o.id, &o.businessType, &o.originalID, &o.supersededBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("find original: %w", err)
	}
	return o, true, nil
}

// lockBiz returns the business state of (doc, recipient), locked for the
// transaction; ok is false when recipient is not a recipient of doc.
func lockBiz(ctx context.Context, tx pgx.Tx, doc uuid.UUID, recipient string, now time.Time) (bizRow, bool, error) {
	_, err := tx.Exec(ctx, `INSERT INTO business_states (document_id, recipient, updated_at)
		SELECT document_id, recipient, $3 FROM deliveries WHERE document_id = $1 AND recipient = $2
		ON CONFLICT DO NOTHING`, doc, recipient, now)
	if err != nil {
		return bizRow{}, false, fmt.Errorf("business state: %w", err)
	}
	var b bizRow
	err = tx.QueryRow(ctx, `SELECT state, last_status, statuses, recall FROM business_states
		WHERE document_id = $1 AND recipient = $2 FOR UPDATE`, doc, recipient).Scan(&b.State, &b.LastStatus, &b.Statuses, &b.Recall)
	if errors.Is(err, pgx.ErrNoRows) {
		return bizRow{}, false, nil
	}
	if err != nil {
		return bizRow{}, false, fmt.Errorf("business state: %w", err)
	}
	return b, true, nil
}

func nextVersion(ctx context.Context, tx pgx.Tx, sender, docRef string) (int, error) {
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) + 1 FROM documents WHERE sender = $1 AND doc_ref = $2`,
		sender, docRef).Scan(&v); err != nil {
		return 0, fmt.Errorf("next version: %w", err)
	}
	return v, nil
}

// statusEvents names the event a status records on the original.
var statusEvents = map[string]string{"13": "recall_requested", "15": "recall_accepted", "16": "recall_refused"}

func (l *Ledger) planStatus(ctx context.Context, tx pgx.Tx, d *NewDocument, p *flowPlan, now time.Time) (*flowPlan, string, error) {
	f := d.Flow
	// 13 comes from the original's sender and names the recipient; every
	// other code comes from a recipient and names the original's sender.
	origSender, recipient := f.Addressee, d.Sender
	if f.Code == "13" {
		origSender, recipient = d.Sender, f.Addressee
	}
	o, ok, err := findOriginal(ctx, tx, origSender, f.Target, recipient, true)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", flowErr(FlowUnknownOriginal, "no document %q sent by %s is known to the hub", f.Target, origSender)
	}
	if o.businessType == 1 { // an answer to a revocation: it is about the revoked document
		if f.Code != "15" && f.Code != "16" {
			return nil, "", flowErr(FlowIllegalTransition, "%q is a revocation: answer it with 15 or 16, not %s", f.Target, f.Code)
		}
		if o.originalID == nil {
			return nil, "", flowErr(FlowUnknownOriginal, "revocation %q names no known original", f.Target)
		}
		o.id = *o.originalID
	}
	cur, ok, err := lockBiz(ctx, tx, o.id, recipient, now)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", flowErr(FlowNotRecipient, "%s is not a recipient of document %q of %s", recipient, f.Target, origSender)
	}
	next, dup, ferr := transition(cur, f.Code)
	if ferr != nil {
		return nil, "", ferr
	}
	if dup {
		id, err := repeatedStatus(ctx, tx, o.id, d.Sender, f.Code)
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, id, err
		}
		// No status document recorded it: the hub attested it (the 01 it
		// sends to the axis on arrival, recordHubArrival). The recipient's
		// own copy is accepted, recorded as an event and relayed; the state
		// does not change.
		next = cur
	}
	if d.Version, err = nextVersion(ctx, tx, d.Sender, d.DocRef); err != nil {
		return nil, "", err
	}
	ev := statusEvents[f.Code]
	if ev == "" {
		ev = "status"
	}
	p.original = o.id
	p.changes = []bizChange{{recipient: recipient, next: next, event: ev, recallBy: f.Code == "13",
		detail: map[string]any{"code": f.Code, "description": f.Description, "business_state": next.State,
			"recall": next.Recall, "from": d.Sender}}}
	return p, "", nil
}

// repeatedStatus finds the status document that already recorded code.
func repeatedStatus(ctx context.Context, tx pgx.Tx, orig uuid.UUID, sender, code string) (string, error) {
	var id uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM documents WHERE original_id = $1 AND sender = $2
		AND (status_code = $3 OR ($3 IN ('13') AND business_type = 1))
		ORDER BY received_at DESC, version DESC LIMIT 1`, orig, sender, code).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("find repeated status: %w", err)
	}
	return id.String(), nil
}

func (l *Ledger) planRevocation(ctx context.Context, tx pgx.Tx, d *NewDocument, p *flowPlan, now time.Time) error {
	f := d.Flow
	o, ok, err := findOriginal(ctx, tx, d.Sender, f.Target, "", false)
	if err != nil {
		return err
	}
	if !ok {
		return flowErr(FlowUnknownOriginal, "no document %q sent by %s is known to the hub; nothing to revoke", f.Target, d.Sender)
	}
	p.original = o.id
	// Rows are locked in recipient order everywhere, so flows never deadlock.
	for _, r := range slices.Sorted(slices.Values(d.Recipients)) {
		cur, ok, err := lockBiz(ctx, tx, o.id, r, now)
		if err != nil {
			return err
		}
		if !ok {
			return flowErr(FlowNotRecipient, "%s is not a recipient of document %q; it cannot be asked to give it back", r, f.Target)
		}
		next, _, ferr := transition(cur, "13")
		if ferr != nil {
			return ferr
		}
		p.changes = append(p.changes, bizChange{recipient: r, next: next, event: "recall_requested", recallBy: true,
			detail: map[string]any{"business_type": 1, "business_state": next.State, "recall": next.Recall, "from": d.Sender}})
	}
	return nil
}

func (l *Ledger) planSupersede(ctx context.Context, tx pgx.Tx, d *NewDocument, p *flowPlan, now time.Time) error {
	f := d.Flow
	target := f.Target
	if target == "" {
		target = d.DocRef
	}
	o, ok, err := findOriginal(ctx, tx, d.Sender, target, "", false)
	if err != nil {
		return err
	}
	if !ok {
		return flowErr(FlowUnknownOriginal, "no document %q sent by %s is known to the hub; there is nothing to %s", target, d.Sender,
			map[string]string{FlowUpdate: "update", FlowReplacement: "replace"}[f.Kind])
	}
	if o.supersededBy != nil {
		return flowErr(FlowSuperseded, "document %q was already superseded by %s; update or replace the latest version", target, o.supersededBy)
	}
	if target == d.DocRef {
		if d.Version, err = nextVersion(ctx, tx, d.Sender, d.DocRef); err != nil {
			return err
		}
	}
	state, event := BizUpdated, "updated"
	if f.Kind == FlowReplacement {
		state, event = BizReplaced, "replaced"
	}
	rows, err := tx.Query(ctx, `SELECT recipient FROM deliveries WHERE document_id = $1 ORDER BY recipient`, o.id)
	if err != nil {
		return fmt.Errorf("original recipients: %w", err)
	}
	recipients, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("original recipients: %w", err)
	}
	live := 0
	for _, r := range recipients {
		cur, _, err := lockBiz(ctx, tx, o.id, r, now)
		if err != nil {
			return err
		}
		if cur.State == BizRecalled {
			continue
		}
		live++
		if !slices.Contains(d.Recipients, r) {
			continue // not addressed by the new version: its state stays
		}
		next := cur
		next.State = state
		p.changes = append(p.changes, bizChange{recipient: r, next: next, event: event,
			detail: map[string]any{"business_type": map[string]int{FlowUpdate: 2, FlowReplacement: 3}[f.Kind],
				"business_state": state, "previous_state": cur.State}})
	}
	if live == 0 {
		return flowErr(FlowRecalled, "document %q was taken back from every recipient; it cannot be %s", target, state)
	}
	p.original, p.supersede, p.dueAt = o.id, true, dueAt(f.DueDate)
	return nil
}

// applyFlow records the plan once the new document (id) exists: its link to
// the original, the business states, and one event per change on the
// original.
func (l *Ledger) applyFlow(ctx context.Context, tx pgx.Tx, p *flowPlan, id string, now time.Time) error {
	if p.original != uuid.Nil || p.dueAt != nil {
		var orig any
		if p.original != uuid.Nil {
			orig = p.original
		}
		if _, err := tx.Exec(ctx, `UPDATE documents SET original_id = $2, due_at = $3 WHERE id = $1`, id, orig, p.dueAt); err != nil {
			return fmt.Errorf("link to original: %w", err)
		}
	}
	if p.supersede {
		if _, err := tx.Exec(ctx, `UPDATE documents SET superseded_by = $2 WHERE id = $1`, p.original, id); err != nil {
			return fmt.Errorf("supersede original: %w", err)
		}
	}
	for _, c := range p.changes {
		var recallBy any
		if c.recallBy {
			recallBy = id
		}
		if _, err := tx.Exec(ctx, `UPDATE business_states SET state = $3, last_status = $4, statuses = $5, recall = $6,
			recall_by = coalesce($7, recall_by), updated_at = $8 WHERE document_id = $1 AND recipient = $2`,
			p.original, c.recipient, c.next.State, c.next.LastStatus, c.next.Statuses, c.next.Recall, recallBy, now); err != nil {
			return fmt.Errorf("business state: %w", err)
		}
		c.detail["document"] = id
		if err := l.appendEvent(ctx, tx, p.original.String(), c.recipient, c.event, "", c.detail, now); err != nil {
			return err
		}
	}
	return nil
}

// vietnam is the time zone of edXML dates (edxml.md §4.3, an inference).
var vietnam = time.FixedZone("ICT", 7*3600)

// dueAt turns a DueDate (yyyy/MM/dd) into the end of that day in Vietnam;
// nil when there is none or it does not parse (sample data has 2014/02/30).
func dueAt(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.ParseInLocation("2006/01/02", s, vietnam)
	if err != nil {
		return nil
	}
	t = t.AddDate(0, 0, 1).UTC()
	return &t
}

// RecipientBusiness is the business state of one recipient of a document.
type RecipientBusiness struct {
	State      string   `json:"state"`
	LastStatus string   `json:"last_status,omitempty"`
	Statuses   []string `json:"statuses,omitempty"`
	Recall     string   `json:"recall,omitempty"`
	RecallBy   string   `json:"recall_by,omitempty"`
}

// Business is a document's place in the business flows.
type Business struct {
	// State is the aggregate over the recipients (see the README's state
	// machine); empty for status packages and revocations.
	State         string         `json:"state,omitempty"`
	RecallPending bool           `json:"recall_pending,omitempty"`
	Version       int            `json:"version"`
	OriginalID    string         `json:"original_id,omitempty"`
	SupersededBy  string         `json:"superseded_by,omitempty"`
	DueAt         *time.Time     `json:"due_at,omitempty"`
	Overdue       []OverdueMark  `json:"overdue,omitempty"`
	Related       []RelatedEntry `json:"related,omitempty"`
}

// RelatedEntry is a document that refers to this one (a status, recall,
// update or replacement).
type RelatedEntry struct {
	ID           string `json:"id"`
	Sender       string `json:"sender"`
	BusinessType int    `json:"business_type"`
	StatusCode   string `json:"status_code,omitempty"`
}

// OverdueMark is one deadline a recipient missed.
type OverdueMark struct {
	Recipient string    `json:"recipient"`
	Kind      string    `json:"kind"` // delivery, acknowledgement, due_date
	Deadline  time.Time `json:"deadline"`
	MarkedAt  time.Time `json:"marked_at"`
}

// fillBusiness adds the business view to a document read by Document.
func (l *Ledger) fillBusiness(ctx context.Context, di *DocumentInfo) error {
	b := &Business{}
	var orig, sup *uuid.UUID
	if err := l.pool.QueryRow(ctx, `SELECT version, original_id, superseded_by, due_at FROM documents WHERE id = $1`, di.ID).
		Scan(&b.Version, &orig, &sup, &b.DueAt); err != nil {
		return fmt.Errorf("business: %w", classify(err))
	}
	if orig != nil {
		b.OriginalID = orig.String()
	}
	if sup != nil {
		b.SupersededBy = sup.String()
	}
	isBusiness := di.Format != "edxml-status" && di.BusinessType != 1
	if isBusiness {
		by := map[string]*RecipientBusiness{}
		rows, err := l.pool.Query(ctx, `SELECT recipient, state, last_status, statuses, recall, coalesce(recall_by::text, '')
			FROM business_states WHERE document_id = $1`, di.ID)
		if err != nil {
			return fmt.Errorf("business states: %w", classify(err))
		}
		for rows.Next() {
			var r string
			rb := &RecipientBusiness{}
			if err := rows.Scan(&r, &rb.State, &rb.LastStatus, &rb.Statuses, &rb.Recall, &rb.RecallBy); err != nil {
				rows.Close()
				return fmt.Errorf("business states: %w", classify(err))
			}
			by[r] = rb
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("business states: %w", classify(err))
		}
		states := make([]string, 0, len(di.Recipients))
		for i := range di.Recipients {
			rb := by[di.Recipients[i].Organ]
			if rb == nil {
				rb = &RecipientBusiness{State: BizPending}
			}
			di.Recipients[i].Business = rb
			states = append(states, rb.State)
			if rb.Recall == RecallPending {
				b.RecallPending = true
			}
		}
		b.State = aggregate(states)
	}
	rows, err := l.pool.Query(ctx, `SELECT recipient, kind, deadline, marked_at FROM overdue_marks
		WHERE document_id = $1 ORDER BY marked_at, recipient, kind`, di.ID)
	if err != nil {
		return fmt.Errorf("overdue: %w", classify(err))
	}
	b.Overdue, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OverdueMark, error) {
		var m OverdueMark
		return m, r.Scan(&m.Recipient, &m.Kind, &m.Deadline, &m.MarkedAt)
	})
	if err != nil {
		return fmt.Errorf("overdue: %w", classify(err))
	}
	rows, err = l.pool.Query(ctx, `SELECT id::text, sender, business_type, status_code FROM documents
		WHERE original_id = $1 ORDER BY received_at, id LIMIT 200`, di.ID)
	if err != nil {
		return fmt.Errorf("related: %w", classify(err))
	}
	b.Related, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RelatedEntry, error) {
		var e RelatedEntry
		return e, r.Scan(&e.ID, &e.Sender, &e.BusinessType, &e.StatusCode)
	})
	if err != nil {
		return fmt.Errorf("related: %w", classify(err))
	}
	di.Business = b
	return nil
}

// recordHubArrival applies a 01 ("đã đến") that the hub itself attested for
// (doc, recipient), e.g. the arrival status it sends to the axis when an axis
// document reached an NA recipient, so that the recipient's later 03 … 06
// follow the state machine. It does nothing unless the recipient's business
// state is still pending; it records a "status" event with by=hub.
func (l *Ledger) recordHubArrival(ctx context.Context, tx pgx.Tx, doc uuid.UUID, recipient string, now time.Time) error {
	cur, ok, err := lockBiz(ctx, tx, doc, recipient, now)
	if err != nil || !ok || cur.State != BizPending {
		return err
	}
	next, dup, ferr := transition(cur, "01")
	if ferr != nil || dup {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE business_states SET state = $3, last_status = $4, statuses = $5, updated_at = $6
		WHERE document_id = $1 AND recipient = $2`, doc, recipient, next.State, next.LastStatus, next.Statuses, now); err != nil {
		return fmt.Errorf("business state: %w", err)
	}
	return l.appendEvent(ctx, tx, doc.String(), recipient, "status", "", map[string]any{"code": "01",
		"business_state": next.State, "from": recipient, "by": "hub"}, now)
}
