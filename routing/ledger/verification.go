package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// insertVerification stores a document's verification report in the accept
// transaction (nothing when report is nil).
func insertVerification(ctx context.Context, tx pgx.Tx, id uuid.UUID, report any, now time.Time) error {
	if report == nil {
		return nil
	}
	b, outcome, err := marshalReport(report)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO verification_reports (document_id, outcome, report, created_at)
		VALUES ($1, $2, $3, $4)`, id, outcome, b, now); err != nil {
		return fmt.Errorf("insert verification report: %w", err)
	}
	return nil
}

// Outcomer is implemented by a verification report that can say its
// outcome (the "outcome" field of its JSON) without being serialised and
// read back (envelope/verify's Report).
type Outcomer interface {
	VerificationOutcome() string
}

// outcomeOf returns the "outcome" field of report's JSON b: from report
// itself when it is an Outcomer or a plain map, else by reading b.
func outcomeOf(report any, b []byte) string {
	switch r := report.(type) {
	case Outcomer:
		return r.VerificationOutcome()
	case map[string]any:
		s, _ := r["outcome"].(string)
		return s
	case map[string]string:
		return r["outcome"]
	}
	var head struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return ""
	}
	return head.Outcome
}

// marshalReport returns the JSON of a verification report and its outcome;
// a report without an outcome is an error.
func marshalReport(report any) ([]byte, string, error) {
	b, err := json.Marshal(report)
	if err != nil {
		return nil, "", fmt.Errorf("verification report: %w", err)
	}
	outcome := outcomeOf(report, b)
	if outcome == "" {
		return nil, "", errors.New("verification report has no outcome")
	}
	return b, outcome, nil
}

// Verification returns the stored verification report of a document, or
// ErrNotFound when there is none (the document does not exist, or was
// accepted without trust configuration: see its meta.verification).
func (l *Ledger) Verification(ctx context.Context, id string) (json.RawMessage, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, ErrNotFound
	}
	var b []byte
	err = l.pool.QueryRow(ctx, `SELECT report FROM verification_reports WHERE document_id = $1`, uid).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: verification %s: %w", id, classify(err))
	}
	return b, nil
}
