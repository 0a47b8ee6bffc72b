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
// stores no tally of its own. Requests that differ in what they count
// do not. (Reads cannot tell: partitions read within the TTL are kept
// apart from the tallies, so a second tally of the same partitions reads
// none.) (No view: everything is Cassandra's.) Whole months and years
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
		svc, _, cache := sparseService(t, w)
		ans := make([]*charts.TopAnswer, 2)
		var tallies int
		for i, x := range []query{c.a, c.b} {
			tallies = cache.Count("items:")
			var err error
			ans[i], err = svc.Top(context.Background(), charts.TopQuery{User: "u", Entity: x.e, Range: x.r, K: x.k, Offset: x.offset})
			if err != nil {
				t.Fatalf("%s: %v", c.why, err)
			}
			svc.Settle() // the background fills of the names' all-time part
		}
		if added := cache.Count("items:") - tallies; c.shared != (added == 0) {
			t.Errorf("%s: the second request stored %d tallies; want shared=%v", c.why, added, c.shared)
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
	svc, store, _ := sparseService(t, w)
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

func sparseService(t *testing.T, w *chartstest.World) (*charts.Service, *chartstest.Store, *chartstest.Cache) {
	t.Helper()
	store := chartstest.NewStore(w.Data())
	cache := &chartstest.Cache{}
	svc, err := charts.New(charts.Config{Store: store, Cache: cache, CacheTTL: time.Minute, Now: func() time.Time { return chartstest.Now },
		Registerer: prometheus.NewRegistry()}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, store, cache
}

// A tally's partitions read within the TTL serve the next tallies that
// share them: two ranges that differ in their last days read the shared
// year and months once; past the TTL they are read again. Only the
// partitions read are admitted (Cost.Admit).
func TestTallyPartitionsComeFromMemory(t *testing.T) {
	w := sparseWorld()
	store := chartstest.NewStore(w.Data())
	now := chartstest.Now
	svc, err := charts.New(charts.Config{Store: store, Cache: &chartstest.Cache{}, CacheTTL: time.Minute, Now: func() time.Time { return now },
		Registerer: prometheus.NewRegistry()}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	top := func(from, to string) (reads map[string]int, admitted int) {
		t.Helper()
		f, _ := charts.ParseDay(from)
		tt, _ := charts.ParseDay(to)
		svc.Settle()
		store.ResetReads()
		ctx, cost := charts.WithCost(context.Background())
		cost.Admit = func(n int) error { admitted += n; return nil }
		ans, err := svc.Top(ctx, charts.TopQuery{User: "u", Entity: topk.Tracks, Range: charts.Custom(f, tt), K: 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := w.Expect("u", topk.Tracks, f, tt); ans.Total != len(want) {
			t.Fatalf("%s..%s: %d items, want %d", from, to, ans.Total, len(want))
		}
		r := store.AllReads()
		return map[string]int{"day": r["day_items"], "month": r["month_items"], "year": r["year_items"]}, admitted
	}
	first, admitted := top("2024-01-01", "2025-11-20")
	if first["month"] == 0 || admitted == 0 {
		t.Fatalf("the first range read %v, admitted %d", first, admitted)
	}
	// The same months up to May 2025 (the range starts at the first day,
	// 2024-03-05); then one day of June (2025-06-10) where the first had
	// June whole: another tally, one more partition.
	second, admitted := top("2024-01-01", "2025-06-10")
	if second["year"] != 0 || second["month"] != 0 || second["day"] != 1 || admitted != 15+1 { // March 2024 to May 2025, and the day
		t.Errorf("the second range read %v (admitted %d): the shared months again", second, admitted)
	}
	now = now.Add(2 * time.Minute) // past the TTL
	third, _ := top("2024-01-01", "2025-06-10")
	if third["month"] == 0 {
		t.Errorf("past the TTL the months were not read again: %v, the first time %v", third, first)
	}
}
