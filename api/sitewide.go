package api

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/charts/sitewide"
)

// SitewideCharts is what everyone's charts ask of the sitewide query
// service (charts/sitewide's Service implements it): a page of the
// sitewide chart of one entity over a range, each item with its plays
// and distinct listeners. Its errors are the charts service's: a
// topk.ErrInvalid or ErrNotFound naming the parameter, ErrUnavailable
// when no store can answer, charts.ErrBusy when every Cassandra slot is
// taken.
type SitewideCharts interface {
	Top(ctx context.Context, q sitewide.Query) (*sitewide.Answer, error)
}

// errSitewideOff answers the sitewide routes of an api without a
// sitewide query service (Config.Sitewide nil): 503, since the route
// exists and another api process may serve it.
func errSitewideOff() *Error {
	return Errorf(CodeUnavailable, "", "sitewide charts are not served by this api")
}

// sitewideTop answers GET /v1/charts/top/{entity}: everyone's chart,
// with the per-user Top-K's parameters (parseTop), defaults, errors,
// metrics labels (the answer's source) and lag header. Without a
// sitewide service, a request with good parameters is a 503.
func (h *chartsHandler) sitewideTop(c echo.Context) error {
	p, err := parseTop(c)
	if err != nil {
		return err
	}
	svc := h.srv.cfg.Sitewide
	if svc == nil {
		return errSitewideOff()
	}
	ans, err := svc.Top(c.Request().Context(), sitewide.Query{Entity: p.entity, Range: p.rng, K: p.k, Offset: p.offset})
	if err != nil {
		return h.failed(c, err)
	}
	return answer(c, ans.Source, ans.Freshness, ans)
}
