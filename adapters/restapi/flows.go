package restapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"lienthong/envelope"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// registerFlows adds the business-flow routes: a JSON way to report an edXML
// status about a document known by its hub id. Statuses can equally be
// POSTed as edXML status packages to /v1/documents.
func (s *Server) registerFlows(v1 *echo.Group) {
	v1.POST("/documents/:id/status", s.postStatus, organOnly)
	v1.GET("/admin/deadlines", s.getDeadlines, flowsOperatorOnly)
	v1.PUT("/admin/deadlines/:organ", s.putDeadlines, flowsOperatorOnly)
}

// statusRequest is the body of POST /v1/documents/{id}/status.
type statusRequest struct {
	Code        string `json:"code"`                  // 01 … 06, 15, 16 from a recipient; 13 from the sender
	Description string `json:"description,omitempty"` // free text (reason of a refusal, of a recall …)
	Recipient   string `json:"recipient,omitempty"`   // for 13: the recipient asked (default: the only one)
	Staff       string `json:"staff,omitempty"`
	Department  string `json:"department,omitempty"`
}

// postStatus writes the edXML status package for the caller (From = the
// caller's organ, ResponseFor = the document) and runs it through the same
// accept path as a posted package: the package is what is stored, relayed to
// its addressee and shown as content.
func (s *Server) postStatus(c echo.Context) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	var req statusRequest
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		return fail("bad_request", "the body must be a JSON object of at most 64 KiB")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fail("bad_request", "the body is not a status object: "+err.Error())
	}
	if len(req.Description) > 2000 || len(req.Staff) > 200 || len(req.Department) > 200 || len(req.Recipient) > 64 {
		return fail("bad_request", "a field is too long (description 2000, staff and department 200 bytes)")
	}
	ctx := c.Request().Context()
	d, err := s.l.Document(ctx, id)
	if err != nil {
		return err
	}
	if d.Format == string(envelope.FormatEdXMLStatus) {
		return fail(ledger.FlowIllegalTransition, "this is a status package; report on the original document")
	}
	caller := principal(c).Organ
	rf := envelope.ResponseFor{OrganID: d.Sender, DocumentID: d.DocumentID, PromulgationDate: d.PromulgationDate}
	if d.CodeNumber != "" {
		rf.Code = strings.TrimSuffix(d.CodeNumber+"/"+d.CodeNotation, "/")
	}
	if req.Code == "13" {
		rf.OrganID = req.Recipient
		if rf.OrganID == "" && len(d.Recipients) == 1 {
			rf.OrganID = d.Recipients[0].Organ
		}
		if rf.OrganID == "" {
			return fail("bad_request", "status 13 needs \"recipient\": the organ asked to give the document back")
		}
	}
	raw, err := envelope.BuildStatus(envelope.StatusPackage{From: envelope.Organ{Code: caller}, ResponseFor: rf,
		Code: req.Code, Description: req.Description, Staff: req.Staff, Department: req.Department})
	if err != nil {
		return err
	}
	res, err := s.submit.Submit(ctx, intake.Submission{Raw: raw, Caller: caller, Channel: "api-status"})
	if err != nil {
		s.submitted.WithLabelValues(toProblem(err).Code).Inc()
		return err
	}
	out := map[string]any{"id": res.ID, "document_id": res.Document.DocumentID, "original": id, "code": req.Code}
	if res.Duplicate {
		s.submitted.WithLabelValues("duplicate").Inc()
		out["duplicate"] = true
		return c.JSON(http.StatusOK, out)
	}
	s.submitted.WithLabelValues("accepted").Inc()
	c.Response().Header().Set(echo.HeaderLocation, "/v1/documents/"+res.ID)
	return c.JSON(http.StatusAccepted, out)
}

// deadlineLedger is what the deadline routes need of the ledger.
type deadlineLedger interface {
	DeadlineSettings(ctx context.Context) ([]ledger.DeadlineSetting, error)
	SetDeadlines(ctx context.Context, organ string, d ledger.Deadlines, actor string) error
	Organ(ctx context.Context, code string) (ledger.Organ, error)
}

// flowsOperatorOnly lets only operators through.
func flowsOperatorOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c).Kind != ledger.RoleOperator {
			return fail("forbidden", "only an operator may change deadlines")
		}
		return next(c)
	}
}

type deadlineJSON struct {
	Organ          string `json:"organ"`
	DeliveryWithin string `json:"delivery_within"` // Go duration, e.g. "4h"
	AckWithin      string `json:"ack_within"`
}

// getDeadlines lists the delivery and acknowledgement deadlines (organ "*": the defaults).
func (s *Server) getDeadlines(c echo.Context) error {
	dl, ok := s.l.(deadlineLedger)
	if !ok {
		return fail("not_found", "deadlines are not available")
	}
	list, err := dl.DeadlineSettings(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]deadlineJSON, 0, len(list))
	for _, d := range list {
		out = append(out, deadlineJSON{d.Organ, d.DeliveryWithin.String(), d.AckWithin.String()})
	}
	return c.JSON(http.StatusOK, map[string]any{"deadlines": out})
}

// putDeadlines sets an organ's deadlines as a recipient ({organ} "*": the defaults).
func (s *Server) putDeadlines(c echo.Context) error {
	dl, ok := s.l.(deadlineLedger)
	if !ok {
		return fail("not_found", "deadlines are not available")
	}
	organ := c.Param("organ")
	ctx := c.Request().Context()
	if organ != ledger.DefaultDeadlineOrgan {
		o, err := dl.Organ(ctx, organ)
		if err != nil {
			return fail("not_found", "no organ "+organ+" in the directory")
		}
		organ = o.Code
	}
	var req deadlineJSON
	if err := json.NewDecoder(io.LimitReader(c.Request().Body, 4<<10)).Decode(&req); err != nil {
		return fail("bad_request", "the body must be {\"delivery_within\": \"4h\", \"ack_within\": \"24h\"}")
	}
	del, err1 := time.ParseDuration(req.DeliveryWithin)
	ack, err2 := time.ParseDuration(req.AckWithin)
	if err1 != nil || err2 != nil || del <= 0 || ack <= 0 || del > 365*24*time.Hour || ack > 365*24*time.Hour {
		return fail("bad_request", "delivery_within and ack_within must be durations between 1s and 8760h (e.g. \"4h\")")
	}
	if err := dl.SetDeadlines(ctx, organ, ledger.Deadlines{DeliveryWithin: del, AckWithin: ack}, operatorName(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deadlineJSON{organ, del.String(), ack.String()})
}
