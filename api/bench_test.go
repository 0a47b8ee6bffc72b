package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/ops"
)

// BenchmarkTop30dView is the api's own cost of a 30-day chart of a heavy
// user from the view (no decoding: the view hands out decoded days),
// over HTTP; charts.BenchmarkTop30dView is the service's part of it.
func BenchmarkTop30dView(b *testing.B) {
	srv := benchServer(b, Config{}, charts.Config{View: chartstest.NewHeavyView(), Now: func() time.Time { return testNow }})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/users/heavy/top/tracks?range=30d", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkRateLimited is the api's cost of refusing a request with a
// 429 (a client past its burst), beside BenchmarkHealthz, the cheapest
// route: what an attacker's refused requests cost the server, without
// the network.
func BenchmarkRateLimited(b *testing.B) {
	srv := benchServer(b, Config{RateLimit: RateLimit{PerSecond: 0.001, Burst: 1}}, charts.Config{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/users/someone/top/tracks?from=2020-01-01&to=2020-06-30", nil)
		srv.Echo().ServeHTTP(rec, req)
		if rec.Code != http.StatusTooManyRequests && rec.Code != http.StatusNotFound {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkHealthz is the cost of the cheapest route, the reference of
// BenchmarkRateLimited.
func BenchmarkHealthz(b *testing.B) {
	srv := benchServer(b, Config{}, charts.Config{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// benchServer is a server of ac with the charts of sc mounted (an empty
// store unless sc names one), on a registry of its own.
func benchServer(b *testing.B, ac Config, sc charts.Config) *Server {
	b.Helper()
	reg := prometheus.NewRegistry()
	log := ops.NewLogger(io.Discard, "error", "text")
	ac.Registerer, ac.Gatherer, sc.Registerer = reg, reg, reg
	if sc.Store == nil {
		sc.Store = chartstest.NewStore(&chartstest.Data{})
	}
	srv, err := New(ac, log)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := charts.New(sc, log)
	if err != nil {
		b.Fatal(err)
	}
	srv.MountCharts(svc)
	return srv
}
