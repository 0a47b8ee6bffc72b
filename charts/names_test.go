package charts_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/views"
)

// The days of the spelling tests: old ones only Cassandra holds (the
// view keeps 35 days up to chartstest.Now, 2026-03-11), recent ones the
// view holds too.
var (
	oldApril = time.Date(2025, 4, 2, 9, 0, 0, 0, time.UTC)
	oldMay   = time.Date(2025, 5, 10, 9, 0, 0, 0, time.UTC)
	recent   = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	today    = time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)
)

// spellingWorld has three users whose listens spell items differently:
//
//   - "r" (Cassandra and view): Radiohead's "Nude" spelled RADIOHEAD/Nude
//     three times in May 2025 and Radiohead/NUDE five times on 2026-03-10;
//     Portishead five times in May, PORTISHEAD twice on 2026-03-10; Low
//     twice in May, LOW twice on 2026-03-10 (a tie: the earlier wins,
//     though "LOW" < "Low"); abba three times in May, ABBA and Beck twice
//     each on 2026-03-10 (their tie orders by the shown names: Beck before
//     abba, where the range's would put ABBA first).
//   - "v" (view only: the store was not written): Muse once, then MUSE
//     twice on the next day.
//   - "c" (Cassandra only): MUSE once in April 2025, Muse three times in
//     May.
func spellingWorld() *chartstest.World {
	w := &chartstest.World{Days: map[string]map[time.Time]*views.Day{}, Listens: map[string]map[time.Time][]topk.Listen{}}
	play := func(user string, at time.Time, n int, artist, track, album string) {
		for i := range n {
			w.Play(user, at.Add(time.Duration(i)*time.Minute), artist, track, album)
		}
	}
	play("r", oldMay, 3, "RADIOHEAD", "Nude", "In Rainbows")
	play("r", oldMay.Add(time.Hour), 5, "Portishead", "Roads", "Dummy")
	play("r", oldMay.Add(2*time.Hour), 2, "Low", "Lullaby", "")
	play("r", oldMay.Add(3*time.Hour), 3, "abba", "SOS", "")
	play("r", recent, 5, "Radiohead", "NUDE", "IN RAINBOWS")
	play("r", recent.Add(time.Hour), 2, "PORTISHEAD", "Roads", "Dummy")
	play("r", recent.Add(2*time.Hour), 2, "LOW", "Lullaby", "")
	play("r", recent.Add(3*time.Hour), 2, "ABBA", "SOS", "")
	play("r", recent.Add(4*time.Hour), 2, "Beck", "Loser", "")
	play("v", recent, 1, "Muse", "Uprising", "")
	play("v", today, 2, "MUSE", "Uprising", "")
	play("c", oldApril, 1, "MUSE", "Uprising", "")
	play("c", oldMay, 3, "Muse", "Uprising", "")
	return w
}

// spellingService is the service on w, its store holding every user's
// data but "v"'s; view false: no view.
func spellingService(t *testing.T, w *chartstest.World, view bool, cache charts.Cache) (*charts.Service, *chartstest.Store, *prometheus.Registry) {
	t.Helper()
	data := *w.Data()
	data.Days = slices.DeleteFunc(slices.Clone(data.Days), func(d chartstest.Day) bool { return d.User == "v" })
	data.Items = slices.DeleteFunc(slices.Clone(data.Items), func(x chartstest.Items) bool { return x.User == "v" })
	store := chartstest.NewStore(&data)
	reg := prometheus.NewRegistry()
	cfg := charts.Config{Store: store, Cache: cache, CacheTTL: time.Minute, Now: func() time.Time { return chartstest.Now }, Registerer: reg}
	if view {
		cfg.View = chartstest.NewView(w, 35, true)
	}
	svc, err := charts.New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, store, reg
}

func custom(from, to string) charts.Range {
	f, _ := charts.ParseDay(from)
	tt, _ := charts.ParseDay(to)
	return charts.Custom(f, tt)
}

// rows is every row of a chart, asked one item per page.
func rows(t *testing.T, svc *charts.Service, user string, e topk.Entity, r charts.Range) []charts.TopItem {
	t.Helper()
	var out []charts.TopItem
	for offset := 0; ; offset++ {
		a, err := svc.Top(context.Background(), charts.TopQuery{User: user, Entity: e, Range: r, K: 1, Offset: offset})
		if err != nil {
			t.Fatalf("%s %s %s offset %d: %v", user, e, r.Name, offset, err)
		}
		out = append(out, a.Items...)
		if offset+1 >= a.Total {
			return out
		}
	}
}

func show(items []charts.TopItem) string {
	var s []string
	for _, it := range items {
		x := fmt.Sprint(it.Name, "/", it.Plays)
		if it.Artist != "" {
			x = fmt.Sprint(it.Name, "/", it.Artist, "/", it.Plays)
		}
		s = append(s, x)
	}
	return fmt.Sprint(s)
}

// Each item shows the spelling most of the user's listens of it used
// (ties: the earliest), and a track's or album's artist its artist's, the
// same in every row, range and page, whether the days come from the view,
// from Cassandra or from both; equal plays order by those names.
func TestNamesAreAllTimeMajority(t *testing.T) {
	w := spellingWorld()
	want := map[string]string{ // user entity range → rows, one per page
		"r track 7d":       "[NUDE/Radiohead/5 Loser/Beck/2 Lullaby/Low/2 Roads/Portishead/2 SOS/abba/2]",
		"r track may":      "[Roads/Portishead/5 NUDE/Radiohead/3 SOS/abba/3 Lullaby/Low/2]",
		"r track all":      "[NUDE/Radiohead/8 Roads/Portishead/7 SOS/abba/5 Lullaby/Low/4 Loser/Beck/2]",
		"r artist 7d":      "[Radiohead/5 Beck/2 Low/2 Portishead/2 abba/2]",
		"r artist may":     "[Portishead/5 Radiohead/3 abba/3 Low/2]",
		"r artist all":     "[Radiohead/8 Portishead/7 abba/5 Low/4 Beck/2]",
		"r album 7d":       "[IN RAINBOWS/Radiohead/5 Dummy/Portishead/2]",
		"r album may":      "[Dummy/Portishead/5 IN RAINBOWS/Radiohead/3]",
		"r album all":      "[IN RAINBOWS/Radiohead/8 Dummy/Portishead/7]",
		"v artist 7d":      "[MUSE/3]",
		"v artist 03-10":   "[MUSE/1]",
		"v track all":      "[Uprising/MUSE/3]",
		"c artist april":   "[Muse/1]",
		"c artist all":     "[Muse/4]",
		"c track april":    "[Uprising/Muse/1]",
		"c track 365d":     "[Uprising/Muse/4]",
		"r artist 365d":    "[Radiohead/8 Portishead/7 abba/5 Low/4 Beck/2]",
		"r track 2026-03":  "[NUDE/Radiohead/5 Loser/Beck/2 Lullaby/Low/2 Roads/Portishead/2 SOS/abba/2]",
		"r artist 2026-03": "[Radiohead/5 Beck/2 Low/2 Portishead/2 abba/2]",
	}
	ranges := map[string]charts.Range{"7d": charts.Named("7d"), "all": charts.Named("all"), "365d": charts.Named("365d"),
		"may": custom("2025-05-01", "2025-05-31"), "april": custom("2025-04-01", "2025-04-30"),
		"03-10": custom("2026-03-10", "2026-03-10"), "2026-03": charts.Named("this_month")}
	for _, mode := range []struct {
		name  string
		view  bool
		cache bool
	}{{"view and cassandra", true, false}, {"cassandra only", false, false}, {"through redis", true, true}} {
		t.Run(mode.name, func(t *testing.T) {
			var cache charts.Cache
			if mode.cache {
				shared := &chartstest.Cache{}
				svc, _, _ := spellingService(t, w, mode.view, shared)
				warm(t, svc, want, ranges)
				cache = shared
			}
			svc, _, _ := spellingService(t, w, mode.view, cache)
			warm(t, svc, want, ranges)
			for key, rowsWant := range want {
				var user, e, r string
				fmt.Sscan(key, &user, &e, &r)
				if user == "v" && !mode.view {
					continue // nothing holds v's days
				}
				got := rows(t, svc, user, topk.Entity(e), ranges[r])
				if show(got) != rowsWant {
					t.Errorf("%s: %s, want %s", key, show(got), rowsWant)
				}
				// A whole page is the same as its one-item pages, and the
				// count made directly from the days.
				a, err := svc.Top(context.Background(), charts.TopQuery{User: user, Entity: topk.Entity(e), Range: ranges[r], K: 100})
				if err != nil || show(a.Items) != rowsWant {
					t.Errorf("%s, one page: %s %v", key, show(a.Items), err)
				}
				from, to, all, _ := charts.Resolve(ranges[r], chartstest.Now)
				if all {
					from = charts.Earliest
				}
				for i, x := range w.Expect(user, topk.Entity(e), from, to) {
					if i < len(got) && (got[i].Name != x.Name || e != "artist" && got[i].Artist != x.Artist || got[i].Plays != x.Plays) {
						t.Errorf("%s row %d: %+v, the count from the days says %+v", key, i, got[i], x)
					}
				}
			}
		})
	}
}

// warm asks each chart of want once and waits for the background fills
// they start: the first answer of a user's range served from the view
// does not wait for the all-time part of its names
// (TestNamesNeverWaitForCassandra).
func warm(t *testing.T, svc *charts.Service, want map[string]string, ranges map[string]charts.Range) {
	t.Helper()
	for key := range want {
		var user, e, r string
		fmt.Sscan(key, &user, &e, &r)
		if _, err := svc.Top(context.Background(), charts.TopQuery{User: user, Entity: topk.Entity(e), Range: ranges[r], K: 1}); err != nil &&
			!errors.Is(err, topk.ErrNotFound) {
			t.Fatalf("%s: %v", key, err)
		}
	}
	svc.Settle()
}

// Cassandra down: a range of the view still answers, named by the
// range's own majority spellings (plays right), and it is counted; once
// Cassandra is back, the all-time names return.
func TestNamesWithoutCassandraAreTheRanges(t *testing.T) {
	w := spellingWorld()
	svc, store, reg := spellingService(t, w, true, nil)
	store.SetDown(true)
	a, err := svc.Top(context.Background(), charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10})
	if err != nil {
		t.Fatalf("Cassandra down, a range of the view: %v", err)
	}
	if got, want := show(a.Items), "[Radiohead/5 ABBA/2 Beck/2 LOW/2 PORTISHEAD/2]"; got != want {
		t.Errorf("Cassandra down: %s, want the range's names %s", got, want)
	}
	a, err = svc.Top(context.Background(), charts.TopQuery{User: "r", Entity: topk.Tracks, Range: charts.Named("7d"), K: 1, Offset: 0})
	if err != nil || len(a.Items) != 1 || a.Items[0].Name != "NUDE" || a.Items[0].Plays != 5 ||
		a.Items[0].IDs["artist"] != charts.HexKey(listen.ArtistKey("radiohead")) {
		t.Errorf("Cassandra down, tracks: %+v %v", a, err)
	}
	if n := charts.CounterValue(t, reg, "topk_api_top_range_names_total"); n != 2 {
		t.Errorf("topk_api_top_range_names_total %v, want 2", n)
	}
	// The fills those answers started while Cassandra was down end first
	// (failed): one still running when it comes back would keep the next
	// answer from starting its own, and this test from knowing which
	// answer has the names.
	svc.Settle()
	store.SetDown(false)
	// The first answer after starts the fill of the all-time part (range
	// names once more), the next one has it.
	if _, err := svc.Top(context.Background(), charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10}); err != nil {
		t.Fatal(err)
	}
	svc.Settle()
	a, err = svc.Top(context.Background(), charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10})
	if err != nil || show(a.Items) != "[Radiohead/5 Beck/2 Low/2 Portishead/2 abba/2]" {
		t.Errorf("Cassandra back: %s %v", show(a.Items), err)
	}
	if n := charts.CounterValue(t, reg, "topk_api_top_range_names_total"); n != 3 {
		t.Errorf("topk_api_top_range_names_total %v after Cassandra came back, want 3", n)
	}
}

// A range's answer reads the user's all-time Cassandra part once per
// entity and then serves it from the cache: a second request of another
// range of the view reads no *_items partition.
func TestNamesAreCached(t *testing.T) {
	w := spellingWorld()
	svc, store, _ := spellingService(t, w, true, nil)
	ctx := context.Background()
	if _, err := svc.Top(ctx, charts.TopQuery{User: "r", Entity: topk.Tracks, Range: charts.Named("7d"), K: 10}); err != nil {
		t.Fatal(err)
	}
	svc.Settle()
	if r := store.AllReads(); r["month_items"]+r["year_items"]+r["day_items"] == 0 {
		t.Fatalf("the first chart of the view started no read of Cassandra items for its names: %v", r)
	}
	store.ResetReads()
	for _, r := range []charts.Range{charts.Named("today"), charts.Named("30d"), charts.Named("all")} {
		if _, err := svc.Top(ctx, charts.TopQuery{User: "r", Entity: topk.Tracks, Range: r, K: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if r := store.AllReads(); r["month_items"]+r["year_items"]+r["day_items"] != 0 {
		t.Errorf("later charts read Cassandra items again: %v", r)
	}
}

func discard() *slog.Logger { return ops.NewLogger(io.Discard, "error", "text") }

// The first chart of a user served from the view does not wait for the
// all-time part of its names: it answers at once with the range's names
// and fills that part in the background; the next answer has the
// all-time names. (Waiting made bench-api's ordinary view-served p99 203
// ms, from 9.7 ms.)
func TestNamesNeverWaitForCassandra(t *testing.T) {
	w := spellingWorld()
	svc, store, reg := spellingService(t, w, true, nil)
	ctx := context.Background()
	a, err := svc.Top(ctx, charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(a.Items), "[Radiohead/5 ABBA/2 Beck/2 LOW/2 PORTISHEAD/2]"; got != want {
		t.Errorf("first answer: %s, want the range's names %s", got, want)
	}
	if n := charts.CounterValue(t, reg, "topk_api_top_range_names_total"); n != 1 {
		t.Errorf("topk_api_top_range_names_total %v, want 1", n)
	}
	svc.Settle()
	if r := store.AllReads(); r["month_items"]+r["year_items"]+r["day_items"] == 0 {
		t.Fatalf("no background read of the all-time part: %v", r)
	}
	a, err = svc.Top(ctx, charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10})
	if err != nil || show(a.Items) != "[Radiohead/5 Beck/2 Low/2 Portishead/2 abba/2]" {
		t.Errorf("second answer: %s %v, want the all-time names", show(a.Items), err)
	}
}

// The all-time part of the names lives NamesTTL, not CacheTTL: only late
// listens older than the view change it, and reading it every CacheTTL
// for every user asked for was most of bench-api's Cassandra reads. Past
// 3/4 of NamesTTL a request refreshes it in the background.
func TestNamesLiveForNamesTTL(t *testing.T) {
	w := spellingWorld()
	data := *w.Data()
	store := chartstest.NewStore(&data)
	now := chartstest.Now
	svc, err := charts.New(charts.Config{Store: store, View: chartstest.NewView(w, 35, true), CacheTTL: time.Minute, NamesTTL: 10 * time.Minute,
		Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ctx := context.Background()
	itemReads := func(after time.Duration) int {
		t.Helper()
		now = chartstest.Now.Add(after)
		store.ResetReads()
		a, err := svc.Top(ctx, charts.TopQuery{User: "r", Entity: topk.Artists, Range: charts.Named("7d"), K: 10})
		if err != nil {
			t.Fatal(err)
		}
		svc.Settle()
		if after > 0 && show(a.Items) != "[Radiohead/5 Beck/2 Low/2 Portishead/2 abba/2]" {
			t.Errorf("+%v: %s, want the all-time names", after, show(a.Items))
		}
		r := store.AllReads()
		return r["month_items"] + r["year_items"] + r["day_items"]
	}
	if n := itemReads(0); n == 0 {
		t.Fatal("the first chart read no Cassandra items for its names")
	}
	if n := itemReads(5 * time.Minute); n != 0 {
		t.Errorf("+5m (past CacheTTL, within NamesTTL): %d item reads, want 0", n)
	}
	if n := itemReads(8 * time.Minute); n == 0 {
		t.Error("+8m (past 3/4 of NamesTTL): no refresh of the all-time part")
	}
}
