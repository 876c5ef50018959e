package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NewDocument is what the accept transaction records.
type NewDocument struct {
	Sender           string
	DocRef           string // the envelope's DocumentId
	Format           string
	Subject          string
	CodeNumber       string
	CodeNotation     string
	PromulgationDate string
	BusinessType     int
	ResponseFor      string
	StatusCode       string
	Recipients       []string // canonical organ codes, de-duplicated
	Raw              []byte
	SHA256           []byte
	// Body, when set, is a large body read from a spool instead of Raw;
	// Size is its length (blobbody.go).
	Body   io.Reader
	Size   int64
	Meta   any    // JSON-serialisable: attachments, warnings, verification report
	Source string // optional idempotency key of the intake (e.g. axis doc id)
	// Verification is the verification report (JSON-serialisable, with an
	// "outcome" field); nil when the hub ran without trust configuration.
	// It may refer to DER values by "der_ref" (envelope/verify
	// Report.Stored); Evidence then carries each of them (verification.go).
	Verification any
	Evidence     []EvidenceBlob
	// Flow relates the document to earlier ones (statuses, recalls, updates,
	// replacements); nil: a plain document (flows.go).
	Flow *Flow
	// Version numbers documents under one (Sender, DocRef); 0 means 1. Set by
	// the flow planner for updates under the same DocumentId and statuses.
	Version int
}

// Accepted is the outcome of Accept.
type Accepted struct {
	ID        string
	Duplicate bool // the same document was accepted before; nothing was written
}

// RouteMessage is what lt.route carries: ids, never bodies.
type RouteMessage struct {
	DocumentID string    `json:"document_id"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Format     string    `json:"format"`
	AcceptedAt time.Time `json:"accepted_at"`
}

// acceptOne is Accept in a transaction of its own: the path of the business
// flows other than FlowNew, and of a document whose batch failed.
func (l *Ledger) acceptOne(ctx context.Context, d NewDocument) (Accepted, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Accepted{}, fmt.Errorf("ledger: accept: id: %w", err)
	}
	meta, err := json.Marshal(d.Meta)
	if err != nil {
		return Accepted{}, fmt.Errorf("ledger: accept: meta: %w", err)
	}
	report, outcome, err := encodeVerification(d.Verification, d.Evidence)
	if err != nil {
		return Accepted{}, fmt.Errorf("ledger: accept: %w", err)
	}
	now := l.now().UTC()
	var out Accepted
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		var plan *flowPlan
		if d.Flow != nil {
			p, repeat, err := l.planFlow(ctx, tx, &d, now)
			if err != nil {
				return err
			}
			if repeat != "" {
				out.ID, out.Duplicate = repeat, true
				return nil
			}
			plan = p
		}
		tag, err := tx.Exec(ctx, `INSERT INTO documents (id, sender, doc_ref, format, subject, code_number,
			code_notation, promulgation_date, business_type, response_for, status_code, sha256, size, body,
			meta, source, received_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT DO NOTHING`,
			id, d.Sender, d.DocRef, d.Format, d.Subject, d.CodeNumber, d.CodeNotation, d.PromulgationDate,
			d.BusinessType, d.ResponseFor, d.StatusCode, d.SHA256, d.size(), d.inlineBody(), meta, d.Source, now,
			max(d.Version, 1))
		if err != nil {
			return fmt.Errorf("insert document: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return l.duplicate(ctx, tx, d, &out)
		}
		out.ID = id.String()
		if err := storeBody(ctx, tx, id, &d); err != nil {
			return err
		}
		if err := l.insertVerification(ctx, tx, id, report, outcome, d.Evidence, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (document_id, recipient, state, updated_at)
			SELECT $1, r, $3, $4 FROM unnest($2::text[]) AS r`, id, d.Recipients, StateAccepted, now); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := assignSequences(ctx, tx, id.String(), d.Recipients); err != nil {
			return err
		}
		detail := map[string]any{"sha256": hex.EncodeToString(d.SHA256), "size": d.size(),
			"format": d.Format, "recipients": d.Recipients, "sender": d.Sender}
		if outcome != "" { // the verdict becomes part of the accepted leaf
			detail["verification"] = outcome
		}
		if err := l.appendEvent(ctx, tx, out.ID, "", "accepted", StateAccepted, detail, now); err != nil {
			return err
		}
		if plan != nil {
			if err := l.applyFlow(ctx, tx, plan, out.ID, now); err != nil {
				return err
			}
		}
		return enqueue(ctx, tx, TopicRoute, out.ID, RouteMessage{DocumentID: out.ID, Sender: d.Sender,
			Recipients: d.Recipients, Format: d.Format, AcceptedAt: now})
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return Accepted{}, err
		}
		return Accepted{}, fmt.Errorf("ledger: accept: %w", err)
	}
	if !out.Duplicate {
		l.known.committed(d.Evidence)
		l.stats.transactions.Add(1)
		l.stats.documents.Add(1)
	}
	return out, nil
}

// duplicate resolves an insert that hit a uniqueness rule.
func (l *Ledger) duplicate(ctx context.Context, tx pgx.Tx, d NewDocument, out *Accepted) error {
	var id uuid.UUID
	var sum []byte
	err := tx.QueryRow(ctx, `SELECT id, sha256 FROM documents
		WHERE (sender = $1 AND doc_ref = $2) OR ($3 <> '' AND source = $3)
		ORDER BY (sender = $1 AND doc_ref = $2) DESC, sha256 = $4 DESC LIMIT 1`, d.Sender, d.DocRef, d.Source, d.SHA256).Scan(&id, &sum)
	if err != nil {
		return fmt.Errorf("find duplicate: %w", err)
	}
	if !bytes.Equal(sum, d.SHA256) {
		return fmt.Errorf("%w: %s", ErrConflict, id)
	}
	out.ID, out.Duplicate = id.String(), true
	return nil
}

// DocumentInfo is a document's metadata with its per-recipient state.
type DocumentInfo struct {
	ID               string          `json:"id"`
	Sender           string          `json:"sender"`
	DocumentID       string          `json:"document_id"`
	Format           string          `json:"format"`
	Subject          string          `json:"subject,omitempty"`
	CodeNumber       string          `json:"code_number,omitempty"`
	CodeNotation     string          `json:"code_notation,omitempty"`
	PromulgationDate string          `json:"promulgation_date,omitempty"`
	BusinessType     int             `json:"business_type"`
	ResponseFor      string          `json:"response_for,omitempty"`
	StatusCode       string          `json:"status_code,omitempty"`
	SHA256           string          `json:"sha256"`
	Size             int64           `json:"size"`
	ReceivedAt       time.Time       `json:"received_at"`
	Meta             json.RawMessage `json:"meta,omitempty"`
	Recipients       []RecipientInfo `json:"recipients"`
	Business         *Business       `json:"business,omitempty"` // flows.go
}

// RecipientInfo is the state of one (document, recipient) pair.
type RecipientInfo struct {
	Organ          string     `json:"organ"`
	State          string     `json:"state"`
	Channel        string     `json:"channel,omitempty"`
	Sequence       *int64     `json:"sequence,omitempty"`
	Attempts       int        `json:"attempts"`
	LastError      string     `json:"last_error,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	// Business is the recipient's business state (flows.go); nil for status
	// packages and revocations.
	Business *RecipientBusiness `json:"business,omitempty"`
}

// Document returns a document's metadata and recipients' states.
func (l *Ledger) Document(ctx context.Context, id string) (DocumentInfo, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return DocumentInfo{}, ErrNotFound
	}
	var di DocumentInfo
	var sum []byte
	err = l.pool.QueryRow(ctx, `SELECT id::text, sender, doc_ref, format, subject, code_number, code_notation,
		promulgation_date, business_type, response_for, status_code, sha256, size, received_at, meta
		FROM documents WHERE id = $1`, uid).Scan(&di.ID, &di.Sender, &di.DocumentID, &di.Format, &di.Subject,
		&di.CodeNumber, &di.CodeNotation, &di.PromulgationDate, &di.BusinessType, &di.ResponseFor,
		&di.StatusCode, &sum, &di.Size, &di.ReceivedAt, &di.Meta)
	if errors.Is(err, pgx.ErrNoRows) {
		return DocumentInfo{}, ErrNotFound
	}
	if err != nil {
		return DocumentInfo{}, fmt.Errorf("ledger: document: %w", classify(err))
	}
	di.SHA256 = hex.EncodeToString(sum)
	rows, err := l.pool.Query(ctx, `SELECT recipient, state, channel, seq, attempts, last_error, delivered_at,
		acknowledged_at FROM deliveries WHERE document_id = $1 ORDER BY id`, uid)
	if err != nil {
		return DocumentInfo{}, fmt.Errorf("ledger: document recipients: %w", classify(err))
	}
	di.Recipients, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecipientInfo, error) {
		var ri RecipientInfo
		err := r.Scan(&ri.Organ, &ri.State, &ri.Channel, &ri.Sequence, &ri.Attempts, &ri.LastError,
			&ri.DeliveredAt, &ri.AcknowledgedAt)
		return ri, err
	})
	if err != nil {
		return DocumentInfo{}, fmt.Errorf("ledger: document recipients: %w", classify(err))
	}
	if err := l.fillBusiness(ctx, &di); err != nil {
		return DocumentInfo{}, fmt.Errorf("ledger: document: %w", err)
	}
	return di, nil
}

// Parties returns a document's sender and recipients, for authorisation.
func (l *Ledger) Parties(ctx context.Context, id string) (sender string, recipients []string, err error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return "", nil, ErrNotFound
	}
	err = l.pool.QueryRow(ctx, `SELECT d.sender, coalesce(array_agg(r.recipient ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '{}')
		FROM documents d LEFT JOIN deliveries r ON r.document_id = d.id WHERE d.id = $1 GROUP BY d.sender`, uid).
		Scan(&sender, &recipients)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("ledger: parties: %w", classify(err))
	}
	return sender, recipients, nil
}

// Events returns a document's history in order.
func (l *Ledger) Events(ctx context.Context, id string) ([]Event, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, ErrNotFound
	}
	rows, err := l.pool.Query(ctx, `SELECT id, document_id::text, recipient, kind, state, detail, at
		FROM events WHERE document_id = $1 ORDER BY id`, uid)
	if err != nil {
		return nil, fmt.Errorf("ledger: events: %w", classify(err))
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.DocumentID, &e.Recipient, &e.Kind, &e.State, &e.Detail, &e.At)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: events: %w", classify(err))
	}
	return evs, nil
}

// Content returns the original bytes of a document, exactly as received.
func (l *Ledger) Content(ctx context.Context, id string) ([]byte, string, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, "", ErrNotFound
	}
	var body []byte
	var format string
	var inBlob bool
	err = l.pool.QueryRow(ctx, `SELECT body, format, body_blob IS NOT NULL FROM documents WHERE id = $1`, uid).
		Scan(&body, &format, &inBlob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("ledger: content: %w", classify(err))
	}
	if inBlob { // a large body: ContentStream is the way to read it; this copy is for small callers
		b, err := l.ContentStream(ctx, id)
		if err != nil {
			return nil, "", err
		}
		defer b.Close()
		if body, err = io.ReadAll(b); err != nil {
			return nil, "", fmt.Errorf("ledger: content: %w", err)
		}
	}
	return body, format, nil
}

// InboxItem is a document waiting in a pull recipient's inbox.
type InboxItem struct {
	DocumentID  string    `json:"id"`
	Sender      string    `json:"sender"`
	DocRef      string    `json:"document_id"`
	Subject     string    `json:"subject,omitempty"`
	Format      string    `json:"format"`
	Sequence    int64     `json:"sequence"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// Inbox lists documents delivered to a pull recipient and not acknowledged
// yet, in sequence order, after the given sequence number.
func (l *Ledger) Inbox(ctx context.Context, recipient string, afterSeq int64, limit int) ([]InboxItem, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := l.pool.Query(ctx, `SELECT d.id::text, d.sender, d.doc_ref, d.subject, d.format, r.seq, d.size,
		d.sha256, r.delivered_at
		FROM deliveries r JOIN documents d ON d.id = r.document_id
		WHERE r.recipient = $1 AND r.state = 'delivered' AND r.channel = 'pull' AND r.seq > $2
		ORDER BY r.seq LIMIT $3`, recipient, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: inbox: %w", classify(err))
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InboxItem, error) {
		var it InboxItem
		var sum []byte
		err := r.Scan(&it.DocumentID, &it.Sender, &it.DocRef, &it.Subject, &it.Format, &it.Sequence, &it.Size,
			&sum, &it.DeliveredAt)
		it.SHA256 = hex.EncodeToString(sum)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: inbox: %w", classify(err))
	}
	return items, nil
}

// Ack records that a pull recipient has taken a document. Acknowledging twice
// is harmless; acknowledging a document that was never delivered to the
// recipient gives ErrNotFound.
func (l *Ledger) Ack(ctx context.Context, recipient, id string) (already bool, err error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return false, ErrNotFound
	}
	now := l.now().UTC()
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM deliveries WHERE document_id = $1 AND recipient = $2 FOR UPDATE`,
			uid, recipient).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch state {
		case StateAcknowledged:
			already = true
			return nil
		case StateDelivered:
		default:
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = $3, acknowledged_at = $4, updated_at = $4
			WHERE document_id = $1 AND recipient = $2`, uid, recipient, StateAcknowledged, now); err != nil {
			return err
		}
		return l.appendEvent(ctx, tx, id, recipient, "acknowledged", StateAcknowledged, nil, now)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("ledger: ack: %w", err)
	}
	return already, err
}
