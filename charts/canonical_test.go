package charts_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/views"
)

// sparseWorld is one user, "u", with plays on five days only: 2024-03-05
// (the first), 2024-03-20, 2025-06-10, 2025-06-11 and 2025-11-02.
func sparseWorld() *chartstest.World {
	w := &chartstest.World{Days: map[string]map[time.Time]*views.Day{}, Listens: map[string]map[time.Time][]topk.Listen{}}
	for i, d := range []string{"2024-03-05", "2024-03-20", "2025-06-10", "2025-06-11", "2025-11-02"} {
		day, _ := charts.ParseDay(d)
		for j := range 3 {
			w.Play("u", day.Add(time.Duration(j)*time.Hour), fmt.Sprint("Artist ", (i+j)%3), fmt.Sprint("Track ", i+j), "")
		}
	}
	return w
}

// Two requests that mean the same thing share a cache entry: the second
// reads no *_items partition. Requests that differ in what they count
// do not. (No view: everything is Cassandra's.) Whole months and years
// are planned as such whether they hold plays or not (knowing would cost
// a read each), so a range that adds an empty whole month has a key of
// its own.
func TestCanonicalCacheKeys(t *testing.T) {
	w := sparseWorld()
	custom := func(from, to string) charts.Range {
		f, _ := charts.ParseDay(from)
		tt, _ := charts.ParseDay(to)
		return charts.Custom(f, tt)
	}
	type query struct {
		e         topk.Entity
		r         charts.Range
		k, offset int
	}
	q := func(from, to string) query { return query{topk.Tracks, custom(from, to), 10, 0} }
	for _, c := range []struct {
		why    string
		a, b   query
		shared bool
	}{
		{"from before the first day (the event contract's first day)", q("2002-01-01", "2025-12-31"), q("2024-03-05", "2025-12-31"), true},
		{"from in the first day's month, before it", q("2024-03-01", "2025-12-31"), q("2024-03-05", "2025-12-31"), true},
		{"a whole year before the first day", q("2023-01-01", "2025-12-31"), q("2024-03-05", "2025-12-31"), true},
		{"a partial month holding every day with plays of its month is its rollup", q("2025-06-10", "2025-06-11"), q("2025-06-01", "2025-06-30"), true},
		{"two partial months with the same days with plays", q("2025-06-05", "2025-06-20"), q("2025-06-10", "2025-06-25"), true},
		{"days without plays at both ends", q("2024-03-01", "2024-03-10"), q("2024-03-05", "2024-03-19"), true},
		{"a partial month ending in days without plays", q("2025-11-01", "2025-11-20"), q("2025-11-02", "2025-11-05"), true},
		{"k and offset: the tally holds every item", q("2024-03-05", "2025-12-31"), query{topk.Tracks, custom("2024-03-05", "2025-12-31"), 3, 2}, true},
		{"all and a custom range from the first day to today", query{topk.Tracks, charts.Named("all"), 10, 0}, q("2024-03-05", "2026-03-11"), true},
		{"one more day with plays", q("2024-03-05", "2024-03-19"), q("2024-03-05", "2024-03-20"), false},
		{"another entity", q("2024-03-05", "2025-12-31"), query{topk.Artists, custom("2024-03-05", "2025-12-31"), 10, 0}, false},
		{"the later half only", q("2025-01-01", "2025-12-31"), q("2024-03-05", "2025-12-31"), false},
		{"an empty whole month more", q("2025-11-01", "2025-11-30"), q("2025-11-01", "2025-12-31"), false},
	} {
		svc, store := sparseService(t, w)
		ans := make([]*charts.TopAnswer, 2)
		for i, x := range []query{c.a, c.b} {
			store.ResetReads()
			var err error
			ans[i], err = svc.Top(context.Background(), charts.TopQuery{User: "u", Entity: x.e, Range: x.r, K: x.k, Offset: x.offset})
			if err != nil {
				t.Fatalf("%s: %v", c.why, err)
			}
			svc.Settle() // the background fills of the names' all-time part
		}
		r := store.AllReads()
		items := r["day_items"] + r["month_items"] + r["year_items"]
		if c.shared != (items == 0) {
			t.Errorf("%s: the second request read %v; want shared=%v", c.why, r, c.shared)
		}
		if c.shared && c.a.k == c.b.k && c.a.offset == c.b.offset && fmt.Sprint(ans[0].Items) != fmt.Sprint(ans[1].Items) {
			t.Errorf("%s: shared an entry but answered %v and %v", c.why, ans[0].Items, ans[1].Items)
		}
		// Every answer is still the count of its range.
		for i, x := range []query{c.a, c.b} {
			from, to, all, _ := charts.Resolve(x.r, chartstest.Now)
			if all {
				from, _ = charts.ParseDay("2024-03-05")
			}
			want := w.Expect("u", x.e, from, to)
			if x.offset < len(want) {
				want = want[x.offset:]
			} else {
				want = nil
			}
			want = want[:min(x.k, len(want))]
			if ans[i].Total != len(w.Expect("u", x.e, from, to)) || len(ans[i].Items) != len(want) {
				t.Errorf("%s, request %d: total %d, %d items; want %d items", c.why, i+1, ans[i].Total, len(ans[i].Items), len(want))
				continue
			}
			for j, it := range want {
				if got := ans[i].Items[j]; got.Name != it.Name || got.Plays != it.Plays {
					t.Errorf("%s, request %d: #%d %s/%d, want %s/%d", c.why, i+1, j+1, got.Name, got.Plays, it.Name, it.Plays)
				}
			}
		}
	}

	// Activity: a range reaching before the first day reads the same
	// user_days entry as one starting at it.
	svc, store := sparseService(t, w)
	for i, r := range []charts.Range{custom("2002-01-01", "2025-12-31"), custom("2024-03-05", "2025-12-31")} {
		store.ResetReads()
		a, err := svc.Activity(context.Background(), "u", r)
		if err != nil || a.Plays != 15 {
			t.Fatalf("activity %d: %v, %+v", i, err, a)
		}
	}
	if n := store.Reads("user_days"); n != 0 {
		t.Errorf("activity from the first day read user_days %d times after a range from 2002", n)
	}
}

func sparseService(t *testing.T, w *chartstest.World) (*charts.Service, *chartstest.Store) {
	t.Helper()
	store := chartstest.NewStore(w.Data())
	svc, err := charts.New(charts.Config{Store: store, CacheTTL: time.Minute, Now: func() time.Time { return chartstest.Now },
		Registerer: prometheus.NewRegistry()}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, store
}
