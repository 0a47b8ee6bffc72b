package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/charts/sitewide"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/listenbrainz"
)

// The sitewide query service is what the api asks.
var _ SitewideCharts = (*sitewide.Service)(nil)

// fakeSitewide is a sitewide query service over the test world of
// chartstest: each user's chart of the range (World.Expect) summed over
// the users, listeners the users with plays of the item, ranked by plays,
// name, artist, key; the range all from charts.Earliest, as the service. It records the queries it was asked and answers err
// when set.
type fakeSitewide struct {
	w   *chartstest.World
	now time.Time

	mu      sync.Mutex
	queries []sitewide.Query
	err     error
}

func newFakeSitewide() *fakeSitewide {
	w, _ := chartstest.Seeded(1) // the fixtures' world
	return &fakeSitewide{w: w, now: testNow}
}

// withSitewide is fixture options serving s as Config.Sitewide.
func withSitewide(s SitewideCharts) fixtureOpts {
	return fixtureOpts{recovered: true, api: func(c *Config) { c.Sitewide = s }}
}

var pathOf = map[topk.Entity]string{topk.Tracks: "tracks", topk.Artists: "artists", topk.Albums: "albums"}

func (f *fakeSitewide) last() sitewide.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return sitewide.Query{}
	}
	return f.queries[len(f.queries)-1]
}

// asked is the number of queries asked so far.
func (f *fakeSitewide) asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func (f *fakeSitewide) Top(_ context.Context, q sitewide.Query) (*sitewide.Answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	err := f.err
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	from, to, all, err := charts.Resolve(q.Range, f.now)
	if err != nil {
		return nil, err
	}
	users := make([]string, 0, len(f.w.Days))
	for u := range f.w.Days {
		users = append(users, u)
	}
	sort.Strings(users)
	if all {
		from = charts.Earliest // as the service: the sitewide chart has no first day
	}
	acc := map[uint64]*sitewide.Item{}
	keys := map[*sitewide.Item]uint64{}
	for _, u := range users {
		for _, it := range f.w.Expect(u, q.Entity, from, to) {
			x := acc[it.Key]
			if x == nil {
				x = &sitewide.Item{Name: it.Name, Artist: it.Artist, IDs: map[string]string{string(q.Entity): charts.HexKey(it.Key)}}
				if q.Entity != topk.Artists {
					x.IDs["artist"] = charts.HexKey(listen.ArtistKey(it.Artist))
				}
				acc[it.Key], keys[x] = x, it.Key
			}
			x.Plays += it.Plays
			x.Listeners++
		}
	}
	items := make([]*sitewide.Item, 0, len(acc))
	for _, x := range acc {
		items = append(items, x)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Plays != b.Plays {
			return a.Plays > b.Plays
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Artist != b.Artist {
			return a.Artist < b.Artist
		}
		return keys[a] < keys[b]
	})
	ans := &sitewide.Answer{Entity: pathOf[q.Entity], Range: charts.RangeJSON{Name: q.Range.Name, From: day(from), To: day(to)},
		Source: charts.SourceView, AsOf: f.now.Truncate(time.Second), ListenersExact: true, Total: len(items), Items: []sitewide.Item{}}
	for i := q.Offset; i < len(items) && i < q.Offset+q.K; i++ {
		it := *items[i]
		it.Rank = i + 1
		ans.Items = append(ans.Items, it)
	}
	return ans, nil
}

// everyone counts the world's listens in [from, to) (Unix seconds) of
// every user, independently of the fake: plays and distinct listeners per
// normalized item (statsWant's keys).
func everyone(f *fixture, e topk.Entity, from, to int64) map[string][2]int64 {
	out := map[string][2]int64{}
	for user := range f.w.Listens {
		seen := map[string]bool{}
		for _, l := range worldListens(f, user, from, to) {
			var k string
			switch e {
			case topk.Artists:
				k = listen.Normalize(l.Artist)
			case topk.Tracks:
				k = listen.Normalize(l.Artist) + "\x00" + listen.Normalize(l.Track)
			case topk.Albums:
				if l.Album == "" {
					continue
				}
				k = listen.Normalize(l.Artist) + "\x00" + listen.Normalize(l.Album)
			}
			n := out[k]
			n[0]++
			if !seen[k] {
				seen[k] = true
				n[1]++
			}
			out[k] = n
		}
	}
	return out
}

// countsOf are the (plays, listeners) pairs of want, ranked as a chart
// (plays descending; listeners descending among equal plays, as the
// answers are compared by their sorted pairs).
func countsOf(want map[string][2]int64) [][2]int64 {
	out := make([][2]int64, 0, len(want))
	for _, n := range want {
		out = append(out, n)
	}
	sortCounts(out)
	return out
}

func sortCounts(c [][2]int64) {
	slices.SortFunc(c, func(a, b [2]int64) int {
		if a[0] != b[0] {
			return int(b[0] - a[0])
		}
		return int(b[1] - a[1])
	})
}

// GET /v1/charts/top/{entity}: every entity and several ranges answer the
// sitewide service's answer as JSON (each item with plays and listeners,
// listeners_exact, source, as_of), equal to an independent count of every
// user's listens; the query passed on holds the route's parameters with
// the per-user route's defaults.
func TestSitewideTop(t *testing.T) {
	sw := newFakeSitewide()
	f := newFixture(t, withSitewide(sw))
	today := midnight(testNow)
	for _, c := range []struct {
		ent, query string
		from, to   time.Time
		q          sitewide.Query
	}{
		{"artists", "", today.AddDate(0, 0, -6), today, sitewide.Query{Entity: topk.Artists, Range: charts.Named("7d"), K: charts.DefaultK}},
		{"tracks", "range=30d&k=1000", today.AddDate(0, 0, -29), today, sitewide.Query{Entity: topk.Tracks, Range: charts.Named("30d"), K: 1000}},
		{"albums", "range=365d&k=1000", today.AddDate(0, 0, -364), today, sitewide.Query{Entity: topk.Albums, Range: charts.Named("365d"), K: 1000}},
		{"artists", "from=2025-03-01&to=2025-03-31&k=1000", date("2025-03-01"), date("2025-03-31"),
			sitewide.Query{Entity: topk.Artists, Range: charts.Custom(date("2025-03-01"), date("2025-03-31")), K: 1000}},
		{"tracks", "range=today&k=3&offset=2", today, today, sitewide.Query{Entity: topk.Tracks, Range: charts.Named("today"), K: 3, Offset: 2}},
	} {
		name := c.ent + "?" + c.query
		rec := f.do("/v1/charts/top/" + name)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body.String())
		}
		if got := sw.last(); !reflect.DeepEqual(got, c.q) {
			t.Errorf("%s: asked %+v, want %+v", name, got, c.q)
		}
		var got sitewide.Answer
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := sw.Top(context.Background(), c.q)
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: answer %+v, want the service's %+v", name, got, want)
		}
		// The JSON's names, as the OpenAPI document has them.
		var raw map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &raw)
		for _, k := range []string{"entity", "range", "source", "as_of", "stale", "listeners_exact", "total", "items"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%s: no %q in %.300s", name, k, rec.Body.String())
			}
		}
		if items, _ := raw["items"].([]any); len(items) > 0 {
			it := items[0].(map[string]any)
			for _, k := range []string{"rank", "name", "plays", "listeners", "ids"} {
				if _, ok := it[k]; !ok {
					t.Errorf("%s: item without %q: %v", name, k, it)
				}
			}
		}
		// Against every user's listens, counted apart.
		exp := countsOf(everyone(f, c.q.Entity, c.from.Unix(), c.to.AddDate(0, 0, 1).Unix()))
		if got.Total != len(exp) || got.Range.From != day(c.from) || got.Range.To != day(c.to) {
			t.Fatalf("%s: total %d range %+v, want %d %s…%s", name, got.Total, got.Range, len(exp), day(c.from), day(c.to))
		}
		if c.q.Offset == 0 && c.q.K >= len(exp) {
			var counts [][2]int64
			for i, it := range got.Items {
				if it.Rank != i+1 {
					t.Errorf("%s: item %d has rank %d", name, i, it.Rank)
				}
				counts = append(counts, [2]int64{it.Plays, it.Listeners})
			}
			sortCounts(counts)
			if fmt.Sprint(counts) != fmt.Sprint(exp) {
				t.Errorf("%s: (plays, listeners) %v, want %v", name, counts, exp)
			}
		}
	}
}

// The route's parameters are the per-user route's: the same errors,
// naming the parameter, before the service is asked; the service's
// errors go through StatusOf (invalid 400, not found 404, unavailable
// 503, busy 503 with Retry-After).
func TestSitewideTopErrors(t *testing.T) {
	sw := newFakeSitewide()
	f := newFixture(t, withSitewide(sw))
	for _, c := range []struct {
		path, user string // user: the same query on the per-user route
		code       int
		param      string
	}{
		{"/v1/charts/top/songs", "/v1/users/alice/top/songs", 404, "entity"},
		{"/v1/charts/top/artists?range=week", "", 400, "range"},
		{"/v1/charts/top/artists?range=", "", 400, "range"},
		{"/v1/charts/top/artists?range=7d&from=2025-01-01", "", 400, "range"},
		{"/v1/charts/top/artists?from=2025-01-01", "", 400, "to"},
		{"/v1/charts/top/artists?from=2025-1-1&to=2025-01-02", "", 400, "from"},
		{"/v1/charts/top/artists?from=2025-01-02&to=2025-01-01", "", 400, "to"},
		{"/v1/charts/top/tracks?k=0", "", 400, "k"},
		{"/v1/charts/top/tracks?k=1001", "", 400, "k"},
		{"/v1/charts/top/tracks?k=ten", "", 400, "k"},
		{"/v1/charts/top/albums?offset=-1", "", 400, "offset"},
		{"/v1/charts/top/albums?offset=1000001", "", 400, "offset"},
		{"/v1/charts/top/albums?range=nope&k=0", "", 400, "range"}, // the first bad one
	} {
		before := sw.asked()
		rec := f.do(c.path)
		e := jsonError(t, rec)
		if rec.Code != c.code || e.Param != c.param {
			t.Errorf("%s: %d %+v, want %d naming %q", c.path, rec.Code, e, c.code, c.param)
		}
		if sw.asked() != before {
			t.Errorf("%s: the service was asked", c.path)
		}
		// The per-user route says the same.
		user := c.user
		if user == "" {
			user = strings.Replace(c.path, "/v1/charts/top/", "/v1/users/alice/top/", 1)
		}
		if ru := f.do(user); ru.Code != rec.Code || jsonError(t, ru) != e {
			t.Errorf("%s: %d %s; the per-user route %d %s", c.path, rec.Code, rec.Body.String(), ru.Code, ru.Body.String())
		}
	}
	for _, c := range []struct {
		err        error
		code       int
		codeName   Code
		retryAfter string
	}{
		{topk.Invalid("range", "the range reaches before 2002"), 400, CodeInvalid, ""},
		{fmt.Errorf("read sitewide_days: %w", topk.ErrUnavailable), 503, CodeUnavailable, ""},
		{topk.Unavailable("every Cassandra slot is taken: retry in a second", charts.ErrBusy), 503, CodeUnavailable, "1"},
		{errors.New("a bug"), 500, CodeInternal, ""},
	} {
		sw.mu.Lock()
		sw.err = c.err
		sw.mu.Unlock()
		rec := f.do("/v1/charts/top/artists?range=365d")
		if e := jsonError(t, rec); rec.Code != c.code || e.Code != c.codeName || rec.Header().Get("Retry-After") != c.retryAfter {
			t.Errorf("%v: %d %+v Retry-After %q, want %d %s %q", c.err, rec.Code, e, rec.Header().Get("Retry-After"), c.code, c.codeName, c.retryAfter)
		}
	}
}

// Without a sitewide service the route exists and answers a JSON 503
// saying so (bad parameters are still 400s); the per-user routes are
// unaffected.
func TestSitewideTopNotServed(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true})
	rec := f.do("/v1/charts/top/tracks?range=30d")
	if e := jsonError(t, rec); rec.Code != 503 || e.Code != CodeUnavailable || e.Message != "sitewide charts are not served by this api" {
		t.Errorf("not served: %d %+v", rec.Code, e)
	}
	if rec := f.do("/v1/charts/top/tracks?k=0"); rec.Code != 400 || jsonError(t, rec).Param != "k" {
		t.Errorf("bad k, not served: %d %s", rec.Code, rec.Body.String())
	}
	if code, body := f.get(t, "/v1/users/alice/top/tracks?range=30d"); code != 200 {
		t.Errorf("per-user route: %d %s", code, body)
	}
}

// The route is rate limited like the per-user ones (the same bucket, its
// headers) and counted in the metrics by route and source.
func TestSitewideTopLimitsAndMetrics(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true, api: func(c *Config) {
		c.Sitewide = newFakeSitewide()
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 2}
	}})
	for i, path := range []string{"/v1/charts/top/tracks", "/v1/users/alice/top/tracks"} {
		rec := f.do(path)
		if rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "2" || rec.Header().Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
	rec := f.do("/v1/charts/top/artists")
	if e := jsonError(t, rec); rec.Code != 429 || e.Code != CodeRateLimited || rec.Header().Get("Retry-After") == "" {
		t.Errorf("past the limit: %d %+v %v", rec.Code, e, rec.Header())
	}
	_, body := f.get(t, "/metrics")
	for _, want := range []string{
		`topk_http_requests_total{code="200",method="GET",route="/v1/charts/top/:entity",source="view"} 1`,
		`topk_http_requests_total{code="429",method="GET",route="/v1/charts/top/:entity",source="none"} 1`,
		`topk_http_request_duration_seconds_bucket{method="GET",route="/v1/charts/top/:entity",source="view",le=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// newLBSitewide is a ListenBrainz fixture with sw as its sitewide service.
func newLBSitewide(t *testing.T, sw SitewideCharts) *lbFixture {
	t.Helper()
	f := &lbFixture{fixture: newFixture(t, withSitewide(sw)), pub: &fakePublisher{}, np: &fakeNowPlaying{}}
	f.srv.MountListenBrainz(ListenBrainzConfig{Charts: f.svc, Tokens: lbTokens{aliceToken: "alice"}, Publisher: f.pub, NowPlaying: f.np})
	return f
}

// The keys of ListenBrainz's sitewide records (listenbrainz_spark's
// sitewide entity queries), by list.
var lbSitewideKeys = map[string][]string{
	"artists": {"artist_mbid", "artist_name", "listen_count"},
	"recordings": {"artist_mbids", "artist_name", "caa_id", "caa_release_mbid", "listen_count", "recording_mbid",
		"release_mbid", "release_name", "track_name"},
	"releases":       {"artist_mbids", "artist_name", "caa_id", "caa_release_mbid", "listen_count", "release_mbid", "release_name"},
	"release_groups": {"artist_mbids", "artist_name", "caa_id", "caa_release_mbid", "listen_count", "release_group_mbid", "release_group_name"},
}

// GET /1/stats/sitewide/{artists|recordings|releases|release-groups}:
// every range name, ListenBrainz's sitewide payload (no user_id; count is
// the page size asked for), its records' keys, listen counts equal to an
// independent count of every user's listens in the range's period, and
// the query passed on.
func TestLBSitewideStats(t *testing.T) {
	sw := newFakeSitewide()
	f := newLBSitewide(t, sw)
	for _, tc := range []struct{ path, rng string }{
		{"artists", "all_time"}, {"recordings", "all_time"}, {"releases", "all_time"}, {"release-groups", "all_time"},
		{"artists", "this_week"}, {"recordings", "this_month"}, {"releases", "this_year"}, {"release-groups", "week"},
		{"artists", "month"}, {"recordings", "quarter"}, {"albums", ""}, {"releases", "half_yearly"}, {"release-groups", "year"},
	} {
		if tc.path == "albums" { // not a ListenBrainz entity
			wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/albums", ""), 404, "The requested URL was not found on the server.")
			continue
		}
		kind := listenbrainz.StatsEntities[tc.path]
		p, err := listenbrainz.StatsPeriod(tc.rng, testNow)
		if err != nil {
			t.Fatal(err)
		}
		name := tc.path + " " + tc.rng
		rec := f.send(http.MethodGet, "/1/stats/sitewide/"+tc.path+"?count=1000&range="+tc.rng, "")
		want := everyone(f.fixture, kind.Entity, p.FromTS(), p.ToTS())
		if len(want) == 0 {
			if rec.Code != http.StatusNoContent {
				t.Errorf("%s: %d, want 204 for no listens", name, rec.Code)
			}
			continue
		}
		q := sw.last()
		first, last := p.Days()
		if l := charts.LastDay(testNow); last.After(l) {
			last = l
		}
		if tc.rng != "all_time" && (q.Entity != kind.Entity || !reflect.DeepEqual(q.Range, charts.Custom(first, last)) || q.K != 1000 || q.Offset != 0) {
			t.Errorf("%s: asked %+v", name, q)
		}
		m := lbBody(t, rec)
		pl, _ := m["payload"].(map[string]any)
		items, _ := pl[kind.ListKey].([]any)
		if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "*" || pl["range"] != tc.rng || pl[kind.TotalKey] != float64(len(want)) ||
			pl["count"] != float64(1000) || pl["offset"] != float64(0) || pl["last_updated"] != float64(testNow.Unix()) {
			t.Fatalf("%s: %d %.400s; want %d items", name, rec.Code, rec.Body.String(), len(want))
		}
		var keys []string
		for k := range pl {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		wantKeys := []string{"count", "from_ts", "last_updated", kind.ListKey, "offset", "range", "to_ts", kind.TotalKey}
		slices.Sort(wantKeys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: payload keys %v, want %v", name, keys, wantKeys)
		}
		if tc.rng != "all_time" && (pl["from_ts"] != float64(p.FromTS()) || pl["to_ts"] != float64(p.ToTS())) {
			t.Errorf("%s: from_ts %v to_ts %v, want %d %d", name, pl["from_ts"], pl["to_ts"], p.FromTS(), p.ToTS())
		}
		var got []int64
		for _, x := range items {
			it := x.(map[string]any)
			var ks []string
			for k := range it {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			if !slices.Equal(ks, lbSitewideKeys[kind.ListKey]) {
				t.Fatalf("%s: record keys %v, want %v", name, ks, lbSitewideKeys[kind.ListKey])
			}
			got = append(got, int64(it["listen_count"].(float64)))
		}
		var exp []int64
		for _, n := range countsOf(want) {
			exp = append(exp, n[0])
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("%s: listen counts %v, want %v", name, got, exp)
		}
	}
}

// count and offset as ListenBrainz takes them: count defaults to 25, is
// clamped at 1000, 0 gives no records; offset pages; an offset past the
// charts' 1,000,000 is a 204; bad values and range names are ListenBrainz's
// 400s; no statistics is a 204; no sitewide service a ListenBrainz 503.
func TestLBSitewideStatsParams(t *testing.T) {
	sw := newFakeSitewide()
	f := newLBSitewide(t, sw)
	all, _ := sw.Top(context.Background(), sitewide.Query{Entity: topk.Tracks, Range: charts.Named("all"), K: charts.MaxK})
	page := func(query string) (map[string]any, []any) {
		t.Helper()
		rec := f.send(http.MethodGet, "/1/stats/sitewide/recordings?"+query, "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body.String())
		}
		pl, _ := lbBody(t, rec)["payload"].(map[string]any)
		items, _ := pl["recordings"].([]any)
		return pl, items
	}
	for _, c := range []struct {
		query          string
		count, offset  int
		items, askedK  int
		firstListensAt int // index in all of the first record
	}{
		{"", 25, 0, 25, 25, 0},
		{"count=5&offset=3", 5, 3, 5, 5, 3},
		{"count=2000", 1000, 0, min(1000, all.Total), 1000, 0},
		{"count=0", 0, 0, 0, 1, 0},
		{"count=10&offset=" + fmt.Sprint(all.Total-4), 10, all.Total - 4, 4, 10, all.Total - 4},
		{"count=10&offset=" + fmt.Sprint(all.Total+5), 10, all.Total + 5, 0, 10, 0},
	} {
		pl, items := page(c.query)
		if pl["count"] != float64(c.count) || pl["offset"] != float64(c.offset) || len(items) != c.items || pl["total_recording_count"] != float64(all.Total) {
			t.Errorf("%q: count %v offset %v, %d records, total %v; want %d %d %d %d", c.query, pl["count"], pl["offset"], len(items), pl["total_recording_count"],
				c.count, c.offset, c.items, all.Total)
		}
		if q := sw.last(); q.K != c.askedK || q.Offset != c.offset || !reflect.DeepEqual(q.Range, charts.Named("all")) {
			t.Errorf("%q: asked %+v", c.query, q)
		}
		if len(items) > 0 {
			want := all.Items[c.firstListensAt]
			if it := items[0].(map[string]any); it["track_name"] != want.Name || it["listen_count"] != float64(want.Plays) || it["artist_name"] != want.Artist {
				t.Errorf("%q: first record %v, want %+v", c.query, it, want)
			}
		}
	}
	if rec := f.send(http.MethodGet, "/1/stats/sitewide/artists?offset=1000001", ""); rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Errorf("offset past the charts: %d %q", rec.Code, rec.Body.String())
	}
	wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/artists?range=decade", ""), 400, "Invalid range: decade")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/artists?count=-1", ""), 400, "'count' should be a non-negative integer")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/artists?count=many", ""), 400, "'count' should be a non-negative integer")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/artists?offset=-1", ""), 400, "'offset' should be a non-negative integer")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/sitewide/artists?range=decade&offset=-1", ""), 400, "Invalid range: decade")
	if rec := f.send(http.MethodOptions, "/1/stats/sitewide/artists", "", "Origin", "https://example.org", "Access-Control-Request-Method", "GET"); rec.Code != 200 ||
		rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}

	// No statistics: an empty site.
	empty := &fakeSitewide{w: &chartstest.World{}, now: testNow}
	g := newLBSitewide(t, empty)
	for _, path := range []string{"artists", "recordings", "releases", "release-groups"} {
		if rec := g.send(http.MethodGet, "/1/stats/sitewide/"+path+"?range=week", ""); rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
			t.Errorf("%s of an empty site: %d %q", path, rec.Code, rec.Body.String())
		}
	}
	// The service's errors, in ListenBrainz's shape.
	sw.mu.Lock()
	sw.err = fmt.Errorf("read: %w", topk.ErrUnavailable)
	sw.mu.Unlock()
	if rec := f.send(http.MethodGet, "/1/stats/sitewide/artists", ""); rec.Code != 503 || lbBody(t, rec)["code"] != float64(503) {
		t.Errorf("service down: %d %s", rec.Code, rec.Body.String())
	}
	// Not served.
	h := newLBFixture(t, fixtureOpts{recovered: true})
	wantLBError(t, h.send(http.MethodGet, "/1/stats/sitewide/artists", ""), 503, "Sitewide statistics are not served by this server.")
	wantLBError(t, h.send(http.MethodGet, "/1/stats/sitewide/artists?range=decade", ""), 400, "Invalid range: decade")
}
