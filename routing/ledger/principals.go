package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminPrincipalRevoked is the admin action of RevokePrincipal.
const AdminPrincipalRevoked = "principal_revoked"

// Errors of RevokePrincipal that callers branch on.
var (
	// ErrAlreadyRevoked: the credential was revoked before.
	ErrAlreadyRevoked = errors.New("ledger: credential already revoked")
	// ErrLastOperator: revoking it would leave no operator credential, and
	// so nobody who could issue or revoke credentials through the API.
	ErrLastOperator = errors.New("ledger: the last operator credential cannot be revoked")
)

// PrincipalRow is a credential as operators list it: never the token, only
// short prefixes of the stored hashes, enough to tell two credentials apart.
type PrincipalRow struct {
	Principal
	TokenPrefix string // first 8 bytes of the token's SHA-256, hex
	CertPrefix  string // first 8 bytes of the certificate's SHA-256, hex
	CreatedAt   time.Time
	RevokedAt   *time.Time
	RevokedBy   string
}

// ListPrincipals returns every credential, revoked ones included, by id.
func (l *Ledger) ListPrincipals(ctx context.Context) ([]PrincipalRow, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, kind, coalesce(organ, ''), name, token_sha256, cert_sha256,
		created_at, revoked_at, revoked_by FROM principals ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: principals: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PrincipalRow, error) {
		var p PrincipalRow
		var tok, cert []byte
		err := r.Scan(&p.ID, &p.Kind, &p.Organ, &p.Name, &tok, &cert, &p.CreatedAt, &p.RevokedAt, &p.RevokedBy)
		p.TokenPrefix, p.CertPrefix = hashPrefix(tok), hashPrefix(cert)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: principals: %w", classify(err))
	}
	return out, nil
}

func hashPrefix(b []byte) string {
	if len(b) > 8 {
		b = b[:8]
	}
	return hex.EncodeToString(b)
}

// RevokePrincipal revokes credential id: from its commit on it no longer
// authenticates, in this process at once and in others as soon as their
// directory watch sees the change (at most DirectoryTTL without one). The
// revocation is an admin event, a leaf of the evidence log, written in the
// same transaction; actor names who revoked it. It returns ErrNotFound,
// ErrAlreadyRevoked or ErrLastOperator and then changes nothing.
func (l *Ledger) RevokePrincipal(ctx context.Context, id int64, actor, reason string) (PrincipalRow, error) {
	var p PrincipalRow
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		// Operator rows are locked together, so two operators revoking each
		// other's credential at once cannot both succeed.
		var kind string
		var revoked *time.Time
		if err := tx.QueryRow(ctx, `SELECT kind, revoked_at FROM principals WHERE id = $1`, id).Scan(&kind, &revoked); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if kind == RoleOperator {
			var active int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM principals
				WHERE kind = $1 AND revoked_at IS NULL ORDER BY id FOR UPDATE) o`, RoleOperator).Scan(&active); err != nil {
				return err
			}
			if revoked == nil && active <= 1 {
				return ErrLastOperator
			}
		}
		now := l.now().UTC()
		var tok, cert []byte
		err := tx.QueryRow(ctx, `UPDATE principals SET revoked_at = $2, revoked_by = $3
			WHERE id = $1 AND revoked_at IS NULL
			RETURNING id, kind, coalesce(organ, ''), name, token_sha256, cert_sha256, created_at, revoked_at, revoked_by`,
			id, now, actor).Scan(&p.ID, &p.Kind, &p.Organ, &p.Name, &tok, &cert, &p.CreatedAt, &p.RevokedAt, &p.RevokedBy)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrAlreadyRevoked
		}
		if err != nil {
			return err
		}
		p.TokenPrefix, p.CertPrefix = hashPrefix(tok), hashPrefix(cert)
		_, err = l.AdminEventTx(ctx, tx, AdminPrincipalRevoked, actor, map[string]any{
			"principal_id": p.ID, "kind": p.Kind, "organ": p.Organ, "name": p.Name,
			"token_sha256_prefix": p.TokenPrefix, "cert_sha256_prefix": p.CertPrefix, "reason": reason,
		})
		return err
	})
	l.dir.invalidate()
	if err != nil {
		return PrincipalRow{}, fmt.Errorf("ledger: revoke principal %d: %w", id, err)
	}
	return p, nil
}
