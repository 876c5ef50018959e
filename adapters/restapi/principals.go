package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"lienthong/routing/ledger"
)

// PrincipalLedger is what the credential admin API needs from the ledger.
type PrincipalLedger interface {
	ListPrincipals(ctx context.Context) ([]ledger.PrincipalRow, error)
	RevokePrincipal(ctx context.Context, id int64, actor, reason string) (ledger.PrincipalRow, error)
}

func init() {
	kinds["already_revoked"] = problemKind{409, "Thông tin xác thực này đã bị thu hồi trước đó / This credential was already revoked"}
	kinds["last_operator"] = problemKind{409, "Không thể thu hồi thông tin xác thực vận hành cuối cùng / The last operator credential cannot be revoked"}
}

// principalJSON is a credential as the admin API shows it: never a token,
// only prefixes of the stored hashes.
type principalJSON struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Organ       string     `json:"organ,omitempty"`
	Name        string     `json:"name"`
	TokenPrefix string     `json:"token_sha256_prefix,omitempty"`
	CertPrefix  string     `json:"cert_sha256_prefix,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RevokedBy   string     `json:"revoked_by,omitempty"`
}

func toPrincipalJSON(p ledger.PrincipalRow) principalJSON {
	return principalJSON{ID: p.ID, Kind: p.Kind, Organ: p.Organ, Name: p.Name, TokenPrefix: p.TokenPrefix,
		CertPrefix: p.CertPrefix, CreatedAt: p.CreatedAt, RevokedAt: p.RevokedAt, RevokedBy: p.RevokedBy}
}

// registerPrincipals adds the credential admin API (operators only):
//
//	GET  /v1/admin/principals
//	POST /v1/admin/principals/{id}/revoke   {"reason": "..."} (optional)
func (s *Server) registerPrincipals(v1 *echo.Group) {
	pl, ok := s.l.(PrincipalLedger)
	if !ok {
		return
	}
	g := v1.Group("/admin/principals", operatorOnly)
	g.GET("", func(c echo.Context) error {
		rows, err := pl.ListPrincipals(c.Request().Context())
		if err != nil {
			return err
		}
		out := make([]principalJSON, len(rows))
		for i, p := range rows {
			out[i] = toPrincipalJSON(p)
		}
		return c.JSON(http.StatusOK, map[string]any{"principals": out})
	})
	g.POST("/:id/revoke", func(c echo.Context) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			return fail("bad_request", "principal id must be a positive integer")
		}
		var req struct {
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			return fail("bad_request", "body must be empty or JSON {reason}: "+err.Error())
		}
		if dec.More() {
			return fail("bad_request", "body must be one JSON object {reason}, nothing after it")
		}
		if len(req.Reason) > 500 {
			return fail("bad_request", "reason must be at most 500 bytes")
		}
		if strings.ContainsFunc(req.Reason, func(r rune) bool { return r == utf8.RuneError || unicode.IsControl(r) }) {
			return fail("bad_request", "reason must be valid UTF-8 text without control characters")
		}
		p, err := pl.RevokePrincipal(c.Request().Context(), id, operatorName(c), req.Reason)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			return fail("not_found", "no credential with id "+strconv.FormatInt(id, 10))
		case errors.Is(err, ledger.ErrAlreadyRevoked):
			return fail("already_revoked", err.Error())
		case errors.Is(err, ledger.ErrLastOperator):
			return fail("last_operator", "revoking it would leave no operator credential; issue another first")
		case err != nil:
			return err
		}
		return c.JSON(http.StatusOK, toPrincipalJSON(p))
	})
}
