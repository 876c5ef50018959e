package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"lienthong/routing/ledger"
)

// AdminLedger is what the operator API needs from the ledger.
type AdminLedger interface {
	ListDeliveries(ctx context.Context, f ledger.DeliveryFilter) ([]ledger.DeliveryRow, error)
	DeliveryByID(ctx context.Context, id int64) (ledger.DeliveryRow, []ledger.Event, error)
	Replay(ctx context.Context, id int64, operator string) error
	ReplayDead(ctx context.Context, organ string, from, to time.Time, operator string, limit int) (int, error)
	OrganLimits(ctx context.Context, organ string) (ledger.Limits, error)
	SetLimits(ctx context.Context, organ string, lim ledger.Limits, actor string) error
}

func init() {
	kinds["not_dead"] = problemKind{409, "Chỉ phát lại được lần chuyển đã hỏng (dead) / Only a dead delivery can be replayed"}
}

// registerAdmin adds the operator API (operators only) when the ledger offers it:
//
//	GET  /v1/admin/deliveries?state=dead&organ=&from=&to=&after=&limit=
//	GET  /v1/admin/deliveries/{id}
//	POST /v1/admin/deliveries/{id}/replay
//	POST /v1/admin/deliveries/replay   {"organ": "...", "from": RFC 3339, "to": RFC 3339}
//	GET  /v1/admin/organs/{code}/limits
//	PUT  /v1/admin/organs/{code}/limits  {"max_attempts": 12, "max_age_seconds": 259200, "push_pipeline": 8}
func (s *Server) registerAdmin(v1 *echo.Group) {
	al, ok := s.l.(AdminLedger)
	if !ok {
		return
	}
	a := &admin{l: al}
	g := v1.Group("/admin", operatorOnly)
	g.GET("/deliveries", a.list)
	g.GET("/deliveries/:id", a.get)
	g.POST("/deliveries/:id/replay", a.replayOne)
	g.POST("/deliveries/replay", a.replayBulk)
	g.GET("/organs/:code/limits", a.getLimits)
	g.PUT("/organs/:code/limits", a.putLimits)
}

type admin struct{ l AdminLedger }

func operatorOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c).Kind != ledger.RoleOperator {
			return fail("forbidden", "only an operator may use the admin API")
		}
		return next(c)
	}
}

func operatorName(c echo.Context) string {
	p := principal(c)
	return fmt.Sprintf("%s#%d", p.Name, p.ID)
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fail("bad_request", name+" must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
	}
	return t, nil
}

func deliveryID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fail("bad_request", "delivery id must be a positive integer")
	}
	return id, nil
}

var deliveryStates = map[string]bool{"": true, ledger.StateAccepted: true, ledger.StateRouted: true,
	ledger.StateDelivering: true, ledger.StateDelivered: true, ledger.StateAcknowledged: true,
	ledger.StateRetrying: true, ledger.StateDead: true}

func (a *admin) list(c echo.Context) error {
	q := c.QueryParams()
	f := ledger.DeliveryFilter{State: q.Get("state"), Organ: q.Get("organ")}
	if !deliveryStates[f.State] {
		return fail("bad_request", "unknown state "+strconv.Quote(f.State))
	}
	if len(f.Organ) > 64 {
		return fail("bad_request", "organ code too long")
	}
	var err error
	if f.From, err = parseTime("from", q.Get("from")); err != nil {
		return err
	}
	if f.To, err = parseTime("to", q.Get("to")); err != nil {
		return err
	}
	if v := q.Get("after"); v != "" {
		if f.AfterID, err = strconv.ParseInt(v, 10, 64); err != nil || f.AfterID < 0 {
			return fail("bad_request", "after must be a delivery id")
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return fail("bad_request", "limit must be 1..1000")
		}
	}
	rows, err := a.l.ListDeliveries(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []ledger.DeliveryRow{}
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": rows})
}

func (a *admin) get(c echo.Context) error {
	id, err := deliveryID(c)
	if err != nil {
		return err
	}
	d, evs, err := a.l.DeliveryByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"delivery": d, "events": evs})
}

func (a *admin) replayOne(c echo.Context) error {
	id, err := deliveryID(c)
	if err != nil {
		return err
	}
	if err := a.l.Replay(c.Request().Context(), id, operatorName(c)); err != nil {
		if errors.Is(err, ledger.ErrNotDead) {
			return fail("not_dead", err.Error())
		}
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"id": id, "state": ledger.StateRouted, "replayed": 1})
}

type bulkReplay struct {
	Organ string `json:"organ"`
	From  string `json:"from"`
	To    string `json:"to"`
	Limit int    `json:"limit"`
}

func (a *admin) replayBulk(c echo.Context) error {
	var req bulkReplay
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail("bad_request", "body must be JSON {organ, from, to, limit}: "+err.Error())
	}
	from, err := parseTime("from", req.From)
	if err != nil {
		return err
	}
	to, err := parseTime("to", req.To)
	if err != nil {
		return err
	}
	if req.Organ == "" && (from.IsZero() || to.IsZero()) {
		return fail("bad_request", "give an organ, or both from and to: a bulk replay must be bounded")
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return fail("bad_request", "from must be before to")
	}
	if req.Limit < 0 || req.Limit > 10000 || len(req.Organ) > 64 {
		return fail("bad_request", "limit must be 0..10000 and organ at most 64 characters")
	}
	n, err := a.l.ReplayDead(c.Request().Context(), req.Organ, from, to, operatorName(c), req.Limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"replayed": n})
}

// limitsJSON is an organ's delivery limits; push_pipeline may be left out
// of a PUT, which then keeps it.
type limitsJSON struct {
	MaxAttempts   int   `json:"max_attempts"`
	MaxAgeSeconds int64 `json:"max_age_seconds"`
	PushPipeline  *int  `json:"push_pipeline,omitempty"`
}

func limitsOf(lim ledger.Limits) limitsJSON {
	window := max(lim.PushPipeline, 1)
	return limitsJSON{lim.MaxAttempts, int64(lim.MaxAge / time.Second), &window}
}

func (a *admin) getLimits(c echo.Context) error {
	lim, err := a.l.OrganLimits(c.Request().Context(), c.Param("code"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, limitsOf(lim))
}

func (a *admin) putLimits(c echo.Context) error {
	var req limitsJSON
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail("bad_request", "body must be JSON {max_attempts, max_age_seconds, push_pipeline}: "+err.Error())
	}
	if req.MaxAttempts < 1 || req.MaxAttempts > 1000 || req.MaxAgeSeconds < 1 || req.MaxAgeSeconds > 366*24*3600 ||
		(req.PushPipeline != nil && (*req.PushPipeline < 1 || *req.PushPipeline > ledger.MaxPushPipeline)) {
		return fail("bad_request", fmt.Sprintf("max_attempts must be 1..1000, max_age_seconds 1..31622400 and push_pipeline 1..%d",
			ledger.MaxPushPipeline))
	}
	ctx := c.Request().Context()
	lim := ledger.Limits{MaxAttempts: req.MaxAttempts, MaxAge: time.Duration(req.MaxAgeSeconds) * time.Second}
	if req.PushPipeline != nil {
		lim.PushPipeline = *req.PushPipeline
	} // left out: 0, which SetLimits keeps
	if err := a.l.SetLimits(ctx, c.Param("code"), lim, operatorName(c)); err != nil {
		return err
	}
	return a.getLimits(c)
}
