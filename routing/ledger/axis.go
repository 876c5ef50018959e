package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// This file holds the ledger's part of the national-axis edge
// (adapters/axis/axishub): which axis packages became which documents, what
// was sent to the axis, and the directory entries the axis owns. It is kept
// apart from the generic status correlation on purpose.

// Event kinds written by the axis edge.
const (
	EventAxisStatus     = "axis_status"      // a status from an axis organ about this document
	EventAxisSent       = "axis_sent"        // this document was handed to the axis (sendEdoc)
	EventAxisStatusSent = "axis_status_sent" // the hub sent a status about this document to the axis
)

// AxisInbound is an axis package the accept path made durable.
type AxisInbound struct {
	SystemID   string
	AxisDocID  string
	DocumentID string
	// Status is set when the package is a status package.
	Status *AxisStatus
}

// AxisStatus is a status an axis organ reports about an earlier document.
type AxisStatus struct {
	OrigSender  string // the original's sender (any of its codes)
	OrigDocRef  string // ResponseFor/DocumentId
	From        string // the recipient row the event belongs to (canonical code)
	Code        string
	Description string
	Timestamp   string
}

// RecordAxisInbound records that (SystemID, AxisDocID) is DocumentID. For a
// status, original is the id of the document it is about ("" if the hub does
// not know it), and the first time the status is recorded it also becomes an
// EventAxisStatus of that document. A repeat changes nothing.
func (l *Ledger) RecordAxisInbound(ctx context.Context, in AxisInbound) (original string, err error) {
	uid, err := uuid.Parse(in.DocumentID)
	if err != nil {
		return "", fmt.Errorf("ledger: axis inbound: %w", err)
	}
	now := l.now().UTC()
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		s := in.Status
		if s != nil {
			err := tx.QueryRow(ctx, `SELECT d.id::text FROM documents d
				WHERE d.doc_ref = $2 AND d.format <> 'edxml-status'
				  AND d.sender IN (SELECT code FROM organs WHERE code = $1 OR $1 = ANY (old_codes))
				ORDER BY d.received_at LIMIT 1`, s.OrigSender, s.OrigDocRef).Scan(&original)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO axis_inbound (system_id, axis_doc_id, document_id, received_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, in.SystemID, in.AxisDocID, uid, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 || original == "" {
			return nil
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM axis_inbound WHERE document_id = $1`, uid).Scan(&n); err != nil {
			return err
		}
		if n > 1 {
			return nil // the same status under another axis docId: attached already
		}
		return l.appendEvent(ctx, tx, original, s.From, EventAxisStatus, "", map[string]any{
			"code": s.Code, "description": s.Description, "timestamp": s.Timestamp,
			"status_document_id": in.DocumentID, "axis_doc_id": in.AxisDocID}, now)
	})
	if err != nil {
		return "", fmt.Errorf("ledger: axis inbound: %w", err)
	}
	return original, nil
}

// AxisOutbound is a package handed to the axis with sendEdoc.
type AxisOutbound struct {
	Key         string // see the axis_outbound table
	DocumentID  string // the document the event goes to
	Recipient   string
	MessageType string // edoc or status
	SystemID    string
	AxisDocID   string
	EventKind   string // EventAxisSent or EventAxisStatusSent
	// Arrival marks the 01 the hub sends on a recipient's behalf when an
	// axis document reached it: the recipient's business state becomes
	// arrived in the same transaction (recordHubArrival).
	Arrival bool
	Detail  map[string]any
}

// AxisSent reports whether a package with this key was sent already.
func (l *Ledger) AxisSent(ctx context.Context, key string) (bool, error) {
	var one int
	err := l.pool.QueryRow(ctx, `SELECT 1 FROM axis_outbound WHERE key = $1`, key).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ledger: axis sent: %w", classify(err))
	}
	return true, nil
}

// RecordAxisOutbound records a send and its event, once per key.
func (l *Ledger) RecordAxisOutbound(ctx context.Context, o AxisOutbound) error {
	uid, err := uuid.Parse(o.DocumentID)
	if err != nil {
		return fmt.Errorf("ledger: axis outbound: %w", err)
	}
	now := l.now().UTC()
	err = l.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO axis_outbound (key, document_id, recipient, message_type, system_id,
			axis_doc_id, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			o.Key, uid, o.Recipient, o.MessageType, o.SystemID, o.AxisDocID, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		detail := map[string]any{"axis_doc_id": o.AxisDocID, "system_id": o.SystemID, "messagetype": o.MessageType}
		for k, v := range o.Detail {
			detail[k] = v
		}
		if err := l.appendEvent(ctx, tx, o.DocumentID, o.Recipient, o.EventKind, "", detail, now); err != nil {
			return err
		}
		if o.Arrival {
			return l.recordHubArrival(ctx, tx, uid, o.Recipient, now)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: axis outbound: %w", err)
	}
	return nil
}

// AxisArrival is a document from the axis that reached an NA recipient and
// for which the hub has not yet sent the 01 ("đã đến") status.
type AxisArrival struct {
	DocumentID       string
	SystemID         string // the axis system it came through
	Sender           string
	DocRef           string
	CodeNumber       string
	CodeNotation     string
	PromulgationDate string
	Recipient        string
	RecipientName    string
}

// ArrivalKey is the axis_outbound key of the 01 status for (document, recipient).
func ArrivalKey(documentID, recipient string) string {
	return documentID + "/" + recipient + "/status/01"
}

// AxisArrivalsDue lists up to limit (document, NA recipient) pairs of
// documents that came through axis system systemID, were delivered (or
// acknowledged) to an NA recipient, and whose 01 status was not sent yet.
func (l *Ledger) AxisArrivalsDue(ctx context.Context, systemID string, limit int) ([]AxisArrival, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT ON (d.id, r.recipient) d.id::text, i.system_id, d.sender,
			d.doc_ref, d.code_number, d.code_notation, d.promulgation_date, r.recipient, o.name
		FROM axis_inbound i
		JOIN documents d ON d.id = i.document_id
		JOIN deliveries r ON r.document_id = d.id
		JOIN organs o ON o.code = r.recipient
		WHERE i.system_id = $5 AND d.format = 'edxml' AND r.state IN ($1, $2) AND r.channel <> $3
		  AND NOT EXISTS (SELECT 1 FROM axis_outbound x WHERE x.key = d.id::text || '/' || r.recipient || '/status/01')
		ORDER BY d.id, r.recipient LIMIT $4`, StateDelivered, StateAcknowledged, ChannelAxis, limit, systemID)
	if err != nil {
		return nil, fmt.Errorf("ledger: axis arrivals: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AxisArrival, error) {
		var a AxisArrival
		err := r.Scan(&a.DocumentID, &a.SystemID, &a.Sender, &a.DocRef, &a.CodeNumber, &a.CodeNotation,
			&a.PromulgationDate, &a.Recipient, &a.RecipientName)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: axis arrivals: %w", classify(err))
	}
	return out, nil
}

// UpsertAxisOrgan keeps an organ registered on the axis in the directory
// (channel axis) with its old codes. An organ the hub serves through another
// channel (an NA organ) is never taken over: changed is false and nothing is
// written. changed reports an insert or an update.
func (l *Ledger) UpsertAxisOrgan(ctx context.Context, code, name string, oldCodes []string) (changed bool, err error) {
	if oldCodes == nil {
		oldCodes = []string{}
	}
	tag, err := l.pool.Exec(ctx, `INSERT INTO organs (code, name, channel, old_codes, active)
		VALUES ($1, $2, $3, $4, true)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, old_codes = EXCLUDED.old_codes, active = true,
			updated_at = now()
		WHERE organs.channel = $3 AND (organs.name <> EXCLUDED.name OR organs.old_codes <> EXCLUDED.old_codes
			OR NOT organs.active)`, code, name, ChannelAxis, oldCodes)
	if err != nil || tag.RowsAffected() > 0 {
		l.dir.invalidate()
	}
	if err != nil {
		return false, fmt.Errorf("ledger: upsert axis organ %s: %w", code, classify(err))
	}
	return tag.RowsAffected() > 0, nil
}
