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
	reg := prometheus.NewRegistry()
	log := ops.NewLogger(io.Discard, "error", "text")
	srv, err := New(Config{Registerer: reg, Gatherer: reg}, log)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := charts.New(charts.Config{View: chartstest.NewHeavyView(), Store: chartstest.NewStore(&chartstest.Data{}),
		Now: func() time.Time { return testNow }, Registerer: reg}, log)
	if err != nil {
		b.Fatal(err)
	}
	srv.MountCharts(svc)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/users/heavy/top/tracks?range=30d", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
