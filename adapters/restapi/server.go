package restapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lienthong/envelope"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// Ledger is what the API reads and writes besides the accept path.
type Ledger interface {
	Ping(ctx context.Context) error
	PrincipalByToken(ctx context.Context, token string) (ledger.Principal, error)
	PrincipalByCert(ctx context.Context, certSHA256 []byte) (ledger.Principal, error)
	Document(ctx context.Context, id string) (ledger.DocumentInfo, error)
	Parties(ctx context.Context, id string) (string, []string, error)
	Events(ctx context.Context, id string) ([]ledger.Event, error)
	ContentStream(ctx context.Context, id string) (ledger.Body, error)
	Inbox(ctx context.Context, recipient string, afterSeq int64, limit int) ([]ledger.InboxItem, error)
	Ack(ctx context.Context, recipient, id string) (bool, error)
	AckMany(ctx context.Context, recipient string, ids []string) ([]ledger.AckResult, error)
	Organs(ctx context.Context) ([]ledger.Organ, error)
}

// Submitter is the accept path.
type Submitter interface {
	Submit(ctx context.Context, sub intake.Submission) (intake.Result, error)
}

// Config wires a Server.
type Config struct {
	MaxBody int64 // bytes; default 32 MiB
	// BlobThreshold: a submitted body above it is spooled to a private
	// temporary file while it is read and hashed, and goes through the
	// streaming accept path (parse, verify, blob store) instead of memory;
	// default 1 MiB (spool.go).
	BlobThreshold int64
	// SpoolDir holds the spool files; default os.TempDir().
	SpoolDir string
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Ready reports extra readiness conditions (e.g. migrations applied).
	Ready func(ctx context.Context) error
}

// Server is the echo application.
type Server struct {
	e      *echo.Echo
	l      Ledger
	submit Submitter
	cfg    Config

	submitted *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// New builds the API.
func New(l Ledger, submit Submitter, cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 32 << 20
	}
	if cfg.BlobThreshold <= 0 {
		cfg.BlobThreshold = DefaultBlobThreshold
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{l: l, submit: submit, cfg: cfg,
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lt_submissions_total",
			Help: "Submissions by outcome code (accepted, duplicate or a rejection code)."}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lt_http_request_seconds",
			Help: "HTTP request latency by route and status.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"route", "status"}),
	}
	cfg.Registry.MustRegister(s.submitted, s.latency)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.observe)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))

	v1 := e.Group("/v1", s.authenticate)
	v1.POST("/documents", s.postDocument, organOnly)
	v1.GET("/documents/:id", s.getDocument)
	v1.GET("/documents/:id/events", s.getEvents)
	v1.GET("/documents/:id/content", s.getContent)
	v1.GET("/inbox", s.getInbox, organOnly)
	v1.POST("/inbox/:id/ack", s.postAck, organOnly)
	v1.POST("/inbox/ack", s.postAckMany, organOnly)
	v1.GET("/organs", s.getOrgans)
	s.mountVerification(v1)
	s.registerFlows(v1) // flows.go
	s.registerAdmin(v1)
	s.registerPrincipals(v1)
	s.e = e
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.e }

// Echo exposes the echo instance so that cmd can mount extra routes (the demo sink).
func (s *Server) Echo() *echo.Echo { return s.e }

func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toProblem(err).Status
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.latency.WithLabelValues(route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		return err
	}
}

func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.l.Ping(ctx); err != nil {
		return err
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			return fail("unavailable", err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

const principalKey = "lt.principal"

// authenticate maps a bearer token or a verified client certificate to a principal.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		var p ledger.Principal
		var err error = ledger.ErrNotFound
		if auth := c.Request().Header.Get("Authorization"); auth != "" {
			tok, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok || tok == "" || len(tok) > 512 {
				return fail("unauthenticated", "Authorization must be 'Bearer <token>'")
			}
			p, err = s.l.PrincipalByToken(ctx, tok)
		} else if st := c.Request().TLS; st != nil && len(st.VerifiedChains) > 0 {
			sum := sha256.Sum256(st.VerifiedChains[0][0].Raw)
			p, err = s.l.PrincipalByCert(ctx, sum[:])
		}
		if errors.Is(err, ledger.ErrNotFound) {
			return fail("unauthenticated", "missing or unknown credentials")
		}
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principal(c echo.Context) ledger.Principal {
	p, _ := c.Get(principalKey).(ledger.Principal)
	return p
}

func organOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c).Kind != ledger.RoleOrgan {
			return fail("forbidden", "only an organ may do this; the auditor and operators read")
		}
		return next(c)
	}
}

// mayRead: the auditor and operators read everything; an organ reads what it
// sent or received. Anything else is "not found", so ids do not leak.
func (s *Server) mayRead(c echo.Context, id string) error {
	p := principal(c)
	if p.Kind == ledger.RoleAuditor || p.Kind == ledger.RoleOperator {
		return nil
	}
	sender, recipients, err := s.l.Parties(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if sender == p.Organ {
		return nil
	}
	for _, r := range recipients {
		if r == p.Organ {
			return nil
		}
	}
	return ledger.ErrNotFound
}

func (s *Server) postDocument(c echo.Context) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" && !strings.Contains(ct, "xml") &&
		!strings.HasPrefix(ct, "application/octet-stream") {
		return fail("unsupported_media_type", "Content-Type "+ct+" is not XML")
	}
	if req.ContentLength > s.cfg.MaxBody {
		s.submitted.WithLabelValues(string(envelope.CodeTooLarge)).Inc()
		return &envelope.Error{Code: envelope.CodeTooLarge, Msg: "body of " + strconv.FormatInt(req.ContentLength, 10) +
			" bytes is over the limit of " + strconv.FormatInt(s.cfg.MaxBody, 10)}
	}
	raw, err := readBody(req.Body, req.ContentLength, min(s.cfg.MaxBody, s.cfg.BlobThreshold)+1)
	if err != nil {
		return fail("bad_request", "reading the body: "+err.Error())
	}
	sub := intake.Submission{Raw: raw, Caller: principal(c).Organ, Channel: "api"}
	if int64(len(raw)) > s.cfg.BlobThreshold && int64(len(raw)) <= s.cfg.MaxBody {
		// A large body: spooled, hashed and size-checked as it is read (spool.go).
		sp, cleanup, err := s.spool(raw, req.Body)
		defer cleanup()
		if err != nil {
			return err
		}
		sub.Raw, sub.Spool = nil, sp
	}
	if sub.Spool == nil && int64(len(raw)) > s.cfg.MaxBody {
		s.submitted.WithLabelValues(string(envelope.CodeTooLarge)).Inc()
		return &envelope.Error{Code: envelope.CodeTooLarge, Msg: "body is over the limit of " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"}
	}
	res, err := s.submit.Submit(req.Context(), sub)
	if err != nil {
		s.submitted.WithLabelValues(toProblem(err).Code).Inc()
		return err
	}
	body := map[string]any{"id": res.ID, "document_id": res.Document.DocumentID}
	if res.Duplicate {
		s.submitted.WithLabelValues("duplicate").Inc()
		body["duplicate"] = true
		return c.JSON(http.StatusOK, body)
	}
	s.submitted.WithLabelValues("accepted").Inc()
	c.Response().Header().Set(echo.HeaderLocation, "/v1/documents/"+res.ID)
	return c.JSON(http.StatusAccepted, body)
}

func (s *Server) getDocument(c echo.Context) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	d, err := s.l.Document(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) getEvents(c echo.Context) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	evs, err := s.l.Events(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "events": evs})
}

func (s *Server) getContent(c echo.Context) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	body, err := s.l.ContentStream(c.Request().Context(), id)
	if err != nil {
		return err
	}
	defer body.Close()
	if body.Purged || body.Size == 0 { // only retention empties a body: no document parses from zero bytes
		return fail("purged", "the bytes of "+id+" were purged; its digest, receipts and proofs stay in the evidence log")
	}
	// The digest is the one recorded at intake, over the bytes as received;
	// the body streams (from the blob store when it is large).
	h := c.Response().Header()
	h.Set("Digest", "sha-256="+base64.StdEncoding.EncodeToString(body.SHA256))
	h.Set(echo.HeaderContentLength, strconv.FormatInt(body.Size, 10))
	return c.Stream(http.StatusOK, "application/xml", body)
}

func (s *Server) getInbox(c echo.Context) error {
	after, _ := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	items, err := s.l.Inbox(c.Request().Context(), principal(c).Organ, after, limit)
	if err != nil {
		return err
	}
	if items == nil {
		items = []ledger.InboxItem{}
	}
	return c.JSON(http.StatusOK, map[string]any{"organ": principal(c).Organ, "documents": items})
}

func (s *Server) postAck(c echo.Context) error {
	id := c.Param("id")
	already, err := s.l.Ack(c.Request().Context(), principal(c).Organ, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "state": ledger.StateAcknowledged, "already": already})
}

// postAckMany acknowledges a page of the inbox at once:
// {"ids": ["…", …]} → {"results": [{"id", "outcome"}, …]} in the same order,
// outcome acknowledged, already_acknowledged or not_found.
func (s *Server) postAckMany(c echo.Context) error {
	var req struct {
		IDs []string `json:"ids"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail("bad_request", `body must be JSON {"ids": ["document id", …]} of at most 64 KiB: `+err.Error())
	}
	if len(req.IDs) == 0 || len(req.IDs) > ledger.MaxAckBatch {
		return fail("bad_request", fmt.Sprintf("give 1 to %d document ids", ledger.MaxAckBatch))
	}
	res, err := s.l.AckMany(c.Request().Context(), principal(c).Organ, req.IDs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"results": res})
}

func (s *Server) getOrgans(c echo.Context) error {
	organs, err := s.l.Organs(c.Request().Context())
	if err != nil {
		return err
	}
	type pub struct {
		Code     string `json:"code"`
		Name     string `json:"name"`
		Delivery string `json:"delivery"`
		Demo     bool   `json:"demo,omitempty"`
	}
	out := make([]pub, 0, len(organs))
	for _, o := range organs {
		if o.Active {
			out = append(out, pub{o.Code, o.Name, o.Channel, o.Demo})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"organs": out})
}
