package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// Charts is what the public read endpoints ask of the charts service
// (charts.Service implements it).
type Charts interface {
	Top(ctx context.Context, q charts.TopQuery) (*charts.TopAnswer, error)
	Activity(ctx context.Context, user string, r charts.Range) (*charts.ActivityAnswer, error)
	Listens(ctx context.Context, q charts.ListensQuery) (*charts.ListensAnswer, error)
	SearchUsers(ctx context.Context, prefix string, limit int) (*charts.SearchAnswer, error)
	// Now is the service's clock (the default end of /listens).
	Now() time.Time
}

// entities are the charts as paths name them.
var entities = map[string]topk.Entity{
	"tracks":  topk.Tracks,
	"artists": topk.Artists,
	"albums":  topk.Albums,
}

// LagHeader carries an answer's Cassandra lag in seconds, or "unknown",
// on answers that read Cassandra.
const LagHeader = "X-Topk-Cassandra-Lag"

// sourceKey is the echo context key under which handlers leave the
// source of their answer for the metrics.
const sourceKey = "topk.source"

// MountCharts adds the public read endpoints, each behind the per-client
// rate limit (limits.go):
//
//	GET /v1/users/{user}/top/{tracks|artists|albums}?range=|from=&to=&k=&offset=
//	GET /v1/users/{user}/activity?range=|from=&to=
//	GET /v1/users/{user}/listens?from=&to=&limit=&cursor=
//	GET /v1/users?prefix=&limit=
//	GET /v1/charts/top/{tracks|artists|albums}?range=|from=&to=&k=&offset=
//
// The last, everyone's chart, asks Config.Sitewide (sitewide.go).
func (s *Server) MountCharts(c Charts) {
	h := &chartsHandler{svc: c, srv: s}
	s.echo.GET("/v1/users/:user/top/:entity", h.top, s.rateLimit)
	s.echo.GET("/v1/charts/top/:entity", h.sitewideTop, s.rateLimit)
	s.echo.GET("/v1/users/:user/activity", h.activity, s.rateLimit)
	s.echo.GET("/v1/users/:user/listens", h.listens, s.rateLimit)
	s.echo.GET("/v1/users", h.search, s.rateLimit)
}

type chartsHandler struct {
	svc Charts
	srv *Server
}

// failed leaves the source of a query that failed after choosing it for
// the metrics, marks a refusal for Cassandra being busy (Retry-After),
// and returns err.
func (h *chartsHandler) failed(c echo.Context, err error) error {
	if src, ok := charts.SourceOf(err); ok {
		c.Set(sourceKey, src)
	}
	return h.srv.busy(c, err)
}

// answer sends a top or activity answer with its source and lag.
func answer(c echo.Context, source string, f charts.Freshness, ans any) error {
	c.Set(sourceKey, source)
	if !f.CassandraLag.IsZero() {
		c.Response().Header().Set(LagHeader, f.CassandraLag.String())
	}
	return c.JSON(http.StatusOK, ans)
}

func (h *chartsHandler) top(c echo.Context) error {
	user := userParam(c)
	if err := charts.ValidUser(user); err != nil {
		return err
	}
	p, err := parseTop(c)
	if err != nil {
		return err
	}
	ans, err := h.svc.Top(c.Request().Context(), charts.TopQuery{User: user, Entity: p.entity, Range: p.rng, K: p.k, Offset: p.offset})
	if err != nil {
		return h.failed(c, err)
	}
	return answer(c, ans.Source, ans.Freshness, ans)
}

// topParams are what a Top-K route reads besides the user: the chart
// ({entity} of the path), its range and its page.
type topParams struct {
	entity    topk.Entity
	rng       charts.Range
	k, offset int
}

// parseTop reads a Top-K route's parameters in this order, the first bad
// one answering: the entity (unknown: 404), the range, k (default
// charts.DefaultK, 1–charts.MaxK), offset (0–charts.MaxOffset); each 400
// names its parameter. The user's and the sitewide Top-K read them alike.
func parseTop(c echo.Context) (topParams, error) {
	name := c.Param("entity")
	e, ok := entities[name]
	if !ok {
		return topParams{}, topk.NotFound("entity", "unknown chart "+strconv.Quote(name)+": tracks, artists or albums")
	}
	q := c.QueryParams()
	r, err := parseRange(q)
	if err != nil {
		return topParams{}, err
	}
	k, err := intParam(q, "k", charts.DefaultK, 1, charts.MaxK)
	if err != nil {
		return topParams{}, err
	}
	offset, err := intParam(q, "offset", 0, 0, charts.MaxOffset)
	if err != nil {
		return topParams{}, err
	}
	return topParams{entity: e, rng: r, k: k, offset: offset}, nil
}

func (h *chartsHandler) activity(c echo.Context) error {
	user := userParam(c)
	if err := charts.ValidUser(user); err != nil {
		return err
	}
	r, err := parseRange(c.QueryParams())
	if err != nil {
		return err
	}
	ans, err := h.svc.Activity(c.Request().Context(), user, r)
	if err != nil {
		return h.failed(c, err)
	}
	return answer(c, ans.Source, ans.Freshness, ans)
}

func (h *chartsHandler) listens(c echo.Context) error {
	user := userParam(c)
	if err := charts.ValidUser(user); err != nil {
		return err
	}
	q := c.QueryParams()
	lq := charts.ListensQuery{User: user, From: charts.Earliest, To: charts.LastDay(h.svc.Now())}
	if _, ok := q["range"]; ok {
		return topk.Invalid("range", "listens take from and to (YYYY-MM-DD), not range")
	}
	var err error
	if _, ok := q["from"]; ok {
		if lq.From, err = dayParam(q.Get("from"), "from"); err != nil {
			return err
		}
	}
	if _, ok := q["to"]; ok {
		if lq.To, err = dayParam(q.Get("to"), "to"); err != nil {
			return err
		}
	}
	if err := charts.Custom(lq.From, lq.To).Validate(); err != nil {
		return err
	}
	if lq.Limit, err = intParam(q, "limit", charts.DefaultLimit, 1, charts.MaxListens); err != nil {
		return err
	}
	if v, ok := q["cursor"]; ok {
		if lq.After, err = charts.ParseCursor(v[0]); err != nil {
			return err
		}
	}
	c.Set(sourceKey, charts.SourceCassandra)
	ans, err := h.svc.Listens(c.Request().Context(), lq)
	if err != nil {
		return h.failed(c, err)
	}
	return c.JSON(http.StatusOK, ans)
}

// search is the user search of the charts page.
func (h *chartsHandler) search(c echo.Context) error {
	q := c.QueryParams()
	prefix := q.Get("prefix")
	if err := charts.ValidPrefix(prefix); err != nil {
		return err
	}
	limit, err := intParam(q, "limit", charts.DefaultUsers, 1, charts.MaxUsers)
	if err != nil {
		return err
	}
	c.Set(sourceKey, charts.SourceCassandra)
	ans, err := h.svc.SearchUsers(c.Request().Context(), prefix, limit)
	if err != nil {
		return h.failed(c, err)
	}
	return c.JSON(http.StatusOK, ans)
}
