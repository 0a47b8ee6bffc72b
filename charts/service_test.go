package charts_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/ops"
)

// fixture is the service on the fakes, without HTTP.
type fixture struct {
	w     *chartstest.World
	view  *chartstest.View
	store *chartstest.Store
	svc   *charts.Service
}

func newFixture(t testing.TB, noView, recovered bool) *fixture {
	t.Helper()
	w, data := chartstest.Seeded(1)
	f := &fixture{w: w, view: chartstest.NewView(w, 35, recovered), store: chartstest.NewStore(data)}
	cfg := charts.Config{Store: f.store, Now: func() time.Time { return chartstest.Now }, Registerer: prometheus.NewRegistry()}
	if !noView {
		cfg.View = f.view
	}
	svc, err := charts.New(cfg, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func (f *fixture) top(t testing.TB, user string, e topk.Entity, r charts.Range, k, offset int) *charts.TopAnswer {
	t.Helper()
	a, err := f.svc.Top(context.Background(), charts.TopQuery{User: user, Entity: e, Range: r, K: k, Offset: offset})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Long ranges read rollups: "all" over three years reads at most two
// partial months of days.
func TestLongRangesReadRollups(t *testing.T) {
	f := newFixture(t, true, false)
	f.top(t, "alice", topk.Tracks, charts.Named("all"), 10, 0)
	r := f.store.AllReads()
	if r["year_items"] < 2 || r["day_items"] > 62 || r["user_days"] > 2 {
		t.Fatalf("reads %v: want the full years from year_items, at most two partial months of days", r)
	}
	f.store.ResetReads()
	f.top(t, "alice", topk.Tracks, charts.Named("365d"), 10, 0)
	if r := f.store.AllReads(); r["day_items"] > 31 || r["month_items"] < 10 {
		t.Fatalf("365d reads %v", r)
	}
}

func TestTiesOrderByName(t *testing.T) {
	f := newFixture(t, false, true)
	for _, name := range []string{"today", "all", "90d"} {
		a := f.top(t, "tie", topk.Tracks, charts.Named(name), 10, 0)
		var got []string
		for _, it := range a.Items {
			got = append(got, fmt.Sprint(it.Name, "/", it.Artist, "/", it.Plays))
		}
		plays := 1
		if name != "today" {
			plays = 2
		}
		want := fmt.Sprintf("[a/X/%d a/Y/%d b/X/%d c/X/%d]", plays, plays, plays, plays)
		if fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
	}
}

// The service's failures are the domain's errors: invalid naming the
// parameter, not found, unavailable (with the source it was answering
// from once it knew it); never an HTTP code.
func TestErrorsAreDomainErrors(t *testing.T) {
	f := newFixture(t, false, true)
	ctx := context.Background()
	week := charts.Named("7d")
	for _, c := range []struct {
		q     charts.TopQuery
		kind  error
		param string
	}{
		{charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: week, K: 0}, topk.ErrInvalid, "k"},
		{charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: week, K: 1, Offset: -1}, topk.ErrInvalid, "offset"},
		{charts.TopQuery{User: "a|b", Entity: topk.Tracks, Range: week, K: 1}, topk.ErrInvalid, "user"},
		{charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: charts.Named("8d"), K: 1}, topk.ErrInvalid, "range"},
		{charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: charts.Custom(chartstest.Now, chartstest.Now.AddDate(0, 0, -1)), K: 1}, topk.ErrInvalid, "to"},
		{charts.TopQuery{User: "alice", Entity: "song", Range: week, K: 1}, topk.ErrNotFound, "entity"},
		{charts.TopQuery{User: "nobody", Entity: topk.Tracks, Range: week, K: 1}, topk.ErrNotFound, "user"},
	} {
		_, err := f.svc.Top(ctx, c.q)
		var de *topk.Error
		if !errors.Is(err, c.kind) || !errors.As(err, &de) || de.Param != c.param {
			t.Errorf("%+v: %v, want %v naming %s", c.q, err, c.kind, c.param)
		}
	}
	if _, err := f.svc.Listens(ctx, charts.ListensQuery{User: "alice", From: charts.Earliest, To: chartstest.Now, Limit: 0}); !errors.Is(err, topk.ErrInvalid) {
		t.Errorf("listens limit 0: %v", err)
	}
	if _, err := f.svc.SearchUsers(ctx, "", 10); !errors.Is(err, topk.ErrInvalid) {
		t.Errorf("search without prefix: %v", err)
	}
	f.store.SetDown(true)
	_, err := f.svc.Top(ctx, charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: charts.Named("365d"), K: 1})
	if src, ok := charts.SourceOf(err); !errors.Is(err, topk.ErrUnavailable) || !errors.Is(err, chartstest.ErrDown) || !ok || src != charts.SourceMixed {
		t.Errorf("store down: %v (source %q %v), want unavailable from a mixed answer", err, src, ok)
	}
	if a, err := f.svc.Top(ctx, charts.TopQuery{User: "alice", Entity: topk.Tracks, Range: week, K: 1}); err != nil || a.Source != charts.SourceView {
		t.Errorf("store down, a range of the view: %v", err)
	}
}

// BenchmarkTop30dView is the service's cost of a 30-day chart of a heavy
// user from the view, without HTTP (api.BenchmarkTop30dView adds it).
func BenchmarkTop30dView(b *testing.B) {
	svc, err := charts.New(charts.Config{View: chartstest.NewHeavyView(), Store: chartstest.NewStore(&chartstest.Data{}),
		Now: func() time.Time { return chartstest.Now }, Registerer: prometheus.NewRegistry()}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		b.Fatal(err)
	}
	q := charts.TopQuery{User: "heavy", Entity: topk.Tracks, Range: charts.Named("30d"), K: 10}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Top(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
