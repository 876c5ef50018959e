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
	b, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("verification report: %w", err)
	}
	var head struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Outcome == "" {
		return fmt.Errorf("verification report has no outcome")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO verification_reports (document_id, outcome, report, created_at)
		VALUES ($1, $2, $3, $4)`, id, head.Outcome, b, now); err != nil {
		return fmt.Errorf("insert verification report: %w", err)
	}
	return nil
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
