package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/ops"
)

// The api's tests run the real charts service on the fakes of
// chartstest: a world of users, a view and a store reading it, a Redis
// stand-in.

var testNow = chartstest.Now

func midnight(t time.Time) time.Time { return charts.Midnight(t) }

func day(t time.Time) string { return t.Format(topk.DayLayout) }

// window is items from offset on.
func window(items []topk.Item, offset int) []topk.Item {
	if offset >= len(items) {
		return nil
	}
	return items[offset:]
}

// fixture is a server on the fakes.
type fixture struct {
	w     *chartstest.World
	view  *chartstest.View
	store *chartstest.Store
	cache *chartstest.Cache
	srv   *Server
	svc   *charts.Service
}

type fixtureOpts struct {
	noView    bool
	ttl       time.Duration
	recovered bool
	now       func() time.Time // nil: testNow
	lag       charts.LagSource // nil: unknown
	// api and svc adjust the server's and the service's configuration;
	// store wraps the fake store.
	api   func(*Config)
	svc   func(*charts.Config)
	store func(*chartstest.Store) charts.Store
}

func newFixture(t testing.TB, o fixtureOpts) *fixture { return newFixtureOn(t, o, &chartstest.Cache{}) }

// newFixtureOn is a fixture on a given Redis stand-in.
func newFixtureOn(t testing.TB, o fixtureOpts, cache *chartstest.Cache) *fixture {
	t.Helper()
	w, data := chartstest.Seeded(1)
	f := &fixture{w: w, view: chartstest.NewView(w, 35, o.recovered), store: chartstest.NewStore(data), cache: cache}
	reg := prometheus.NewRegistry()
	log := ops.NewLogger(io.Discard, "error", "text")
	ac := Config{Registerer: reg, Gatherer: reg}
	if o.api != nil {
		o.api(&ac)
	}
	srv, err := New(ac, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := charts.Config{Store: f.store, Cache: f.cache, CacheTTL: o.ttl, Now: o.now, Lag: o.lag, Registerer: reg}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if !o.noView {
		cfg.View = f.view
	}
	if o.store != nil {
		cfg.Store = o.store(f.store)
	}
	if o.svc != nil {
		o.svc(&cfg)
	}
	svc, err := charts.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.MountCharts(svc)
	f.srv, f.svc = srv, svc
	return f
}

func (f *fixture) get(t testing.TB, path string) (int, string) {
	t.Helper()
	rec := f.do(path)
	return rec.Code, rec.Body.String()
}

// do serves one GET, for its headers too.
func (f *fixture) do(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}
