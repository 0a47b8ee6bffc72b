package api

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/views"
)

// heavyView is a view of one user with 91 plays a day over 20k tracks.
type heavyView struct{ days []views.Day }

func newHeavyView() *heavyView {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.05, 10, 19_999)
	v := &heavyView{}
	today := midnight(testNow)
	for d := 34; d >= 0; d-- {
		day := views.Day{Date: today.AddDate(0, 0, -d)}
		idx := map[uint64]int{}
		for range 91 {
			t := z.Uint64()
			key := t*2654435761 + 1
			if i, ok := idx[key]; ok {
				day.Tracks[i].Plays++
			} else {
				idx[key] = len(day.Tracks)
				day.Tracks = append(day.Tracks, topk.Item{Key: key, Name: fmt.Sprint("Track ", t), Artist: fmt.Sprint("Artist ", t%1500), Plays: 1})
			}
			day.Plays++
		}
		v.days = append(v.days, day)
	}
	return v
}

func (v *heavyView) Recovered() bool                  { return true }
func (v *heavyView) FirstDay(now time.Time) time.Time { return midnight(now).AddDate(0, 0, -34) }
func (v *heavyView) Range(_ string, from, to time.Time) ([]views.Day, error) {
	var out []views.Day
	for _, d := range v.days {
		if !d.Date.Before(from) && !d.Date.After(to) {
			out = append(out, d)
		}
	}
	return out, nil
}

// BenchmarkTop30dView is the api's own cost of a 30-day chart of a heavy
// user from the view (no decoding: the view hands out decoded days).
func BenchmarkTop30dView(b *testing.B) {
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Registerer: reg, Gatherer: reg}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(1)
	if err := srv.MountCharts(ChartsConfig{View: newHeavyView(), Store: &fakeStore{w: w}, Now: func() time.Time { return testNow }}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/users/heavy/top/tracks?range=30d", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
