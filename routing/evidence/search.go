package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Query selects events (or receipts) for the auditor. Empty fields match
// everything; times are inclusive From, exclusive To.
type Query struct {
	Sender     string
	Recipient  string
	DocumentID string
	Kind       string
	State      string
	From, To   time.Time
	Cursor     string // from a previous page's Next; "" for the first page
	Limit      int    // default 100, at most 1000
}

// MaxPage is the largest page Search and SearchReceipts return.
const MaxPage = 1000

// EventRow is one event as the auditor sees it.
type EventRow struct {
	EventID    int64           `json:"event_id"`
	DocumentID string          `json:"document_id,omitempty"`
	Sender     string          `json:"sender,omitempty"`
	Recipient  string          `json:"recipient,omitempty"`
	Kind       string          `json:"kind"`
	State      string          `json:"state,omitempty"`
	At         time.Time       `json:"at"`
	LeafIndex  *int64          `json:"leaf_index"` // nil until sequenced
	Detail     json.RawMessage `json:"detail,omitempty"`
}

// Page is one page of a search; Next is the cursor of the next page, "" at the end.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next_cursor,omitempty"`
}

// ErrBadQuery: a search parameter is malformed.
var ErrBadQuery = fmt.Errorf("%w: bad query", ErrBadRange)

func (q *Query) normalise() error {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > MaxPage {
		q.Limit = MaxPage
	}
	if q.DocumentID != "" {
		u, err := uuid.Parse(q.DocumentID)
		if err != nil {
			return fmt.Errorf("%w: document id %q", ErrBadQuery, q.DocumentID)
		}
		q.DocumentID = u.String()
	}
	for _, s := range []string{q.Sender, q.Recipient, q.Kind, q.State} {
		if len(s) > 200 {
			return fmt.Errorf("%w: parameter longer than 200 characters", ErrBadQuery)
		}
	}
	return nil
}

// cursor: base64url of "<event id>" or "<event id>/<recipient>".
func decodeCursor(c string) (int64, string, error) {
	if c == "" {
		return 0, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", fmt.Errorf("%w: cursor", ErrBadQuery)
	}
	ids, recp, _ := strings.Cut(string(b), "/")
	id, err := strconv.ParseInt(ids, 10, 64)
	if err != nil || id < 0 {
		return 0, "", fmt.Errorf("%w: cursor", ErrBadQuery)
	}
	return id, recp, nil
}

func encodeCursor(id int64, recp string) string {
	s := strconv.FormatInt(id, 10)
	if recp != "" {
		s += "/" + recp
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// filters builds the WHERE clause shared by both searches; recipient makes
// the condition on the recipient given its parameter.
func (q *Query) filters(recipient func(param string) string, args *[]any) string {
	var w []string
	add := func(cond string, v any) {
		*args = append(*args, v)
		w = append(w, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(*args))))
	}
	if q.Sender != "" {
		add("d.sender = ?", q.Sender)
	}
	if q.Recipient != "" {
		add(recipient("?"), q.Recipient)
	}
	if q.DocumentID != "" {
		add("e.document_id = ?::uuid", q.DocumentID)
	}
	if q.Kind != "" {
		add("e.kind = ?", q.Kind)
	}
	if q.State != "" {
		add("e.state = ?", q.State)
	}
	if !q.From.IsZero() {
		add("e.at >= ?", q.From)
	}
	if !q.To.IsZero() {
		add("e.at < ?", q.To)
	}
	if len(w) == 0 {
		return "true"
	}
	return strings.Join(w, " AND ")
}

// Search returns events matching q in event id order. A recipient filter
// matches events of that recipient and document-wide events of documents
// addressed to it. Admin events have no document and match only filters on
// kind, state and time.
func (l *Log) Search(ctx context.Context, q Query) (Page[EventRow], error) {
	if err := q.normalise(); err != nil {
		return Page[EventRow]{}, err
	}
	after, _, err := decodeCursor(q.Cursor)
	if err != nil {
		return Page[EventRow]{}, err
	}
	args := []any{after, q.Limit + 1}
	where := q.filters(func(p string) string { // and document-wide events of documents addressed to it
		return "(e.recipient = " + p + " OR (e.recipient = '' AND EXISTS (SELECT 1 FROM deliveries r " +
			"WHERE r.document_id = e.document_id AND r.recipient = " + p + ")))"
	}, &args)
	rows, err := l.pool.Query(ctx, `SELECT e.id, coalesce(e.document_id::text, ''), coalesce(d.sender, ''), e.recipient,
		e.kind, e.state, e.at, log_leaf_index(e.id), e.detail
		FROM events e LEFT JOIN documents d ON d.id = e.document_id
		WHERE e.id > $1 AND `+where+` ORDER BY e.id LIMIT $2`, args...)
	if err != nil {
		return Page[EventRow]{}, fmt.Errorf("evidence: search: %w", err)
	}
	defer rows.Close()
	var p Page[EventRow]
	for rows.Next() {
		var r EventRow
		if err := rows.Scan(&r.EventID, &r.DocumentID, &r.Sender, &r.Recipient, &r.Kind, &r.State, &r.At, &r.LeafIndex, &r.Detail); err != nil {
			return Page[EventRow]{}, fmt.Errorf("evidence: search: %w", err)
		}
		p.Items = append(p.Items, r)
	}
	if err := rows.Err(); err != nil {
		return Page[EventRow]{}, fmt.Errorf("evidence: search: %w", err)
	}
	if len(p.Items) > q.Limit {
		p.Items = p.Items[:q.Limit]
		p.Next = encodeCursor(p.Items[len(p.Items)-1].EventID, "")
	}
	if p.Items == nil {
		p.Items = []EventRow{}
	}
	return p, nil
}

// ReceiptRow is one (event, recipient) receipt as the auditor sees it; the
// receipt itself is in GET /v1/documents/{id}/receipts and the bundle.
type ReceiptRow struct {
	DocumentID string    `json:"document_id"`
	Sender     string    `json:"sender"`
	Recipient  string    `json:"recipient"`
	EventID    int64     `json:"event_id"`
	Kind       string    `json:"kind"`
	State      string    `json:"state,omitempty"`
	At         time.Time `json:"at"`
	LeafIndex  *int64    `json:"leaf_index"`
	Name       string    `json:"name,omitempty"` // its file name in the bundle, once sequenced
}

// SearchReceipts returns receipts matching q: one per event and recipient
// the event concerns, in (event id, recipient) order.
func (l *Log) SearchReceipts(ctx context.Context, q Query) (Page[ReceiptRow], error) {
	if err := q.normalise(); err != nil {
		return Page[ReceiptRow]{}, err
	}
	after, afterRecp, err := decodeCursor(q.Cursor)
	if err != nil {
		return Page[ReceiptRow]{}, err
	}
	args := []any{after, afterRecp, q.Limit + 1}
	where := q.filters(func(p string) string { return "r.recipient = " + p }, &args)
	rows, err := l.pool.Query(ctx, `SELECT e.document_id::text, d.sender, r.recipient, e.id, e.kind, e.state, e.at, log_leaf_index(e.id)
		FROM events e JOIN documents d ON d.id = e.document_id
		JOIN deliveries r ON r.document_id = e.document_id AND (e.recipient = '' OR e.recipient = r.recipient)
		WHERE (e.id, r.recipient) > ($1, $2) AND `+where+` ORDER BY e.id, r.recipient LIMIT $3`, args...)
	if err != nil {
		return Page[ReceiptRow]{}, fmt.Errorf("evidence: search receipts: %w", err)
	}
	defer rows.Close()
	var p Page[ReceiptRow]
	for rows.Next() {
		var r ReceiptRow
		if err := rows.Scan(&r.DocumentID, &r.Sender, &r.Recipient, &r.EventID, &r.Kind, &r.State, &r.At, &r.LeafIndex); err != nil {
			return Page[ReceiptRow]{}, fmt.Errorf("evidence: search receipts: %w", err)
		}
		if r.LeafIndex != nil {
			r.Name = fmt.Sprintf("%d-%s.xml", *r.LeafIndex, r.Recipient)
		}
		p.Items = append(p.Items, r)
	}
	if err := rows.Err(); err != nil {
		return Page[ReceiptRow]{}, fmt.Errorf("evidence: search receipts: %w", err)
	}
	if len(p.Items) > q.Limit {
		p.Items = p.Items[:q.Limit]
		last := p.Items[len(p.Items)-1]
		p.Next = encodeCursor(last.EventID, last.Recipient)
	}
	if p.Items == nil {
		p.Items = []ReceiptRow{}
	}
	return p, nil
}
