package restapi

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"lienthong/routing/evidence"
	"lienthong/routing/ledger"
)

// EvidenceConfig wires the evidence routes (MountEvidence).
type EvidenceConfig struct {
	Log    *evidence.Log
	Bundle evidence.BundleConfig
}

// MountEvidence registers the evidence log, receipts and auditor routes:
//
//	GET /v1/log/checkpoint, /v1/log/leaves/:index, /v1/log/proof/inclusion, /v1/log/proof/consistency
//	                                    any authenticated caller (schemas/checkpoint.md)
//	GET /v1/documents/:id/receipts      who may read the document
//	GET /v1/audit/events                auditor: search events (JSON, or CSV with format=csv)
//	GET /v1/audit/receipts              auditor: search receipts
//	GET /v1/audit/documents/:id/evidence  auditor: the evidence bundle (zip)
//
// Every route is a read; the auditor API answers 403 to anyone but the
// auditor.
func (s *Server) MountEvidence(cfg EvidenceConfig) {
	v1 := s.e.Group("/v1", s.authenticate)
	cfg.Log.Routes(v1)
	v1.GET("/documents/:id/receipts", func(c echo.Context) error { return s.getReceipts(c, cfg) })
	audit := s.e.Group("/v1/audit", s.authenticate, auditorOnly)
	audit.GET("/events", func(c echo.Context) error { return s.auditEvents(c, cfg) })
	audit.GET("/receipts", func(c echo.Context) error { return s.auditReceipts(c, cfg) })
	audit.GET("/documents/:id/evidence", func(c echo.Context) error { return s.auditBundle(c, cfg) })
}

func auditorOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c).Kind != ledger.RoleAuditor {
			return fail("forbidden", "only the auditor may use the auditor API / chỉ kiểm toán viên được dùng API kiểm toán")
		}
		return next(c)
	}
}

// evidenceError maps the evidence package's sentinels to problems.
func evidenceError(err error) error {
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return fail("not_found", err.Error())
	case errors.Is(err, evidence.ErrBadRange):
		return fail("bad_request", err.Error())
	}
	return err
}

// receiptJSON is one receipt in GET /v1/documents/:id/receipts.
type receiptJSON struct {
	evidence.IssuedReceipt
	Receipt     string `json:"receipt"`                // the receipt XML (schemas/receipt.xsd)
	EdXMLStatus string `json:"edxml_status,omitempty"` // for a delivered edXML document: the matching status 01
}

func (s *Server) getReceipts(c echo.Context, cfg EvidenceConfig) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	set, err := cfg.Log.Receipts(c.Request().Context(), id)
	if err != nil {
		return evidenceError(err)
	}
	out := make([]receiptJSON, 0, len(set.Receipts))
	for _, r := range set.Receipts {
		out = append(out, receiptJSON{IssuedReceipt: r, Receipt: string(r.XML), EdXMLStatus: string(r.EdXMLStatus)})
	}
	proofs := make([]any, 0, len(set.Proofs))
	for _, p := range set.Proofs {
		proofs = append(proofs, p)
	}
	return c.JSON(http.StatusOK, map[string]any{"id": set.DocumentID, "checkpoint": set.Checkpoint.Note,
		"tree_size": set.Checkpoint.Size, "receipts": out, "proofs": proofs, "pending_events": set.Pending})
}

// auditQuery reads the search parameters shared by both searches.
func auditQuery(c echo.Context) (evidence.Query, error) {
	q := evidence.Query{Sender: c.QueryParam("sender"), Recipient: c.QueryParam("recipient"),
		DocumentID: c.QueryParam("document"), Kind: c.QueryParam("kind"), State: c.QueryParam("state"),
		Cursor: c.QueryParam("cursor")}
	if q.DocumentID == "" {
		q.DocumentID = c.QueryParam("document_id")
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.QueryParam(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return q, fail("bad_request", "parameter "+tp.name+" must be an RFC 3339 time / tham số "+tp.name+" phải là thời điểm RFC 3339")
			}
			*tp.dst = t
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > evidence.MaxPage {
			return q, fail("bad_request", "limit must be 1…"+strconv.Itoa(evidence.MaxPage))
		}
		q.Limit = n
	}
	switch c.QueryParam("format") {
	case "", "json", "csv":
	default:
		return q, fail("bad_request", "format must be json or csv")
	}
	return q, nil
}

func (s *Server) auditEvents(c echo.Context, cfg EvidenceConfig) error {
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	p, err := cfg.Log.Search(c.Request().Context(), q)
	if err != nil {
		return evidenceError(err)
	}
	if c.QueryParam("format") != "csv" {
		return c.JSON(http.StatusOK, p)
	}
	rows := [][]string{{"event_id", "document_id", "sender", "recipient", "kind", "state", "at", "leaf_index", "detail"}}
	for _, r := range p.Items {
		rows = append(rows, []string{strconv.FormatInt(r.EventID, 10), r.DocumentID, r.Sender, r.Recipient, r.Kind,
			r.State, r.At.UTC().Format(time.RFC3339Nano), leafIndex(r.LeafIndex), string(r.Detail)})
	}
	return writeCSV(c, "events.csv", p.Next, rows)
}

func (s *Server) auditReceipts(c echo.Context, cfg EvidenceConfig) error {
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	p, err := cfg.Log.SearchReceipts(c.Request().Context(), q)
	if err != nil {
		return evidenceError(err)
	}
	if c.QueryParam("format") != "csv" {
		return c.JSON(http.StatusOK, p)
	}
	rows := [][]string{{"document_id", "sender", "recipient", "event_id", "kind", "state", "at", "leaf_index", "name"}}
	for _, r := range p.Items {
		rows = append(rows, []string{r.DocumentID, r.Sender, r.Recipient, strconv.FormatInt(r.EventID, 10), r.Kind,
			r.State, r.At.UTC().Format(time.RFC3339Nano), leafIndex(r.LeafIndex), r.Name})
	}
	return writeCSV(c, "receipts.csv", p.Next, rows)
}

func leafIndex(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

// writeCSV answers text/csv; the next page's cursor is in the
// Lt-Next-Cursor header (empty on the last page).
func writeCSV(c echo.Context, name, next string, rows [][]string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	if next != "" {
		h.Set("Lt-Next-Cursor", next)
	}
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return nil
}

func (s *Server) auditBundle(c echo.Context, cfg EvidenceConfig) error {
	id := c.Param("id")
	err := cfg.Log.WriteBundle(c.Request().Context(), c.Response(), id, cfg.Bundle, func() {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "application/zip")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="evidence-`+id+`.zip"`)
		c.Response().WriteHeader(http.StatusOK)
	})
	if err != nil && !c.Response().Committed {
		if errors.Is(err, evidence.ErrNotFound) {
			return fail("not_found", "no evidence for this document yet (not in a checkpoint): "+err.Error())
		}
		return evidenceError(err)
	}
	return err
}
