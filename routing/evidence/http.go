package evidence

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// LeafJSON is the answer of GET /log/leaves/:index.
type LeafJSON struct {
	Index    uint64 `json:"index"`
	EventID  int64  `json:"event_id"`
	Leaf     []byte `json:"leaf"`      // base64 in JSON: canonical leaf bytes
	LeafHash []byte `json:"leaf_hash"` // base64 in JSON
}

// InclusionJSON is the answer of GET /log/proof/inclusion.
type InclusionJSON struct {
	Index  uint64   `json:"index"`
	Size   uint64   `json:"size"`
	Hashes [][]byte `json:"hashes"` // base64 each, leaf to root
}

// ConsistencyJSON is the answer of GET /log/proof/consistency.
type ConsistencyJSON struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"`
}

// Routes registers the read-only log API on g (mounted by the caller, e.g.
// under /v1 behind authentication):
//
//	GET /log/checkpoint                        latest signed note, text/plain
//	GET /log/leaves/:index                     LeafJSON
//	GET /log/proof/inclusion?index=&size=      InclusionJSON
//	GET /log/proof/consistency?from=&to=       ConsistencyJSON
func (l *Log) Routes(g *echo.Group) {
	g.GET("/log/checkpoint", l.getCheckpoint)
	g.GET("/log/leaves/:index", l.getLeaf)
	g.GET("/log/proof/inclusion", l.getInclusion)
	g.GET("/log/proof/consistency", l.getConsistency)
}

func (l *Log) getCheckpoint(c echo.Context) error {
	sc, err := l.Checkpoint(c.Request().Context())
	if err != nil {
		return httpError(err)
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(sc.Note))
}

func (l *Log) getLeaf(c echo.Context) error {
	index, err := uintParam("index", c.Param("index"))
	if err != nil {
		return err
	}
	e, err := l.Leaf(c.Request().Context(), index)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, LeafJSON{Index: e.Index, EventID: e.EventID, Leaf: e.Data, LeafHash: e.Hash})
}

func (l *Log) getInclusion(c echo.Context) error {
	index, err := uintParam("index", c.QueryParam("index"))
	if err != nil {
		return err
	}
	size, err := uintParam("size", c.QueryParam("size"))
	if err != nil {
		return err
	}
	p, err := l.InclusionProof(c.Request().Context(), index, size)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, InclusionJSON{Index: index, Size: size, Hashes: p})
}

func (l *Log) getConsistency(c echo.Context) error {
	from, err := uintParam("from", c.QueryParam("from"))
	if err != nil {
		return err
	}
	to, err := uintParam("to", c.QueryParam("to"))
	if err != nil {
		return err
	}
	p, err := l.ConsistencyProof(c.Request().Context(), from, to)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, ConsistencyJSON{From: from, To: to, Hashes: p})
}

func uintParam(name, v string) (uint64, error) {
	if v == "" {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "missing parameter "+name)
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "parameter "+name+" must be a non-negative integer, got "+strconv.Quote(v))
	}
	return n, nil
}

// httpError maps the package's sentinels to HTTP; anything else is a 500
// left to the server's error handler.
func httpError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	case errors.Is(err, ErrBadRange):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	return err
}
