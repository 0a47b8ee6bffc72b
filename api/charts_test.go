package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/cassandra"
)

func date(s string) time.Time {
	t, err := time.Parse(listen.DayLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNamedRanges(t *testing.T) {
	for _, c := range []struct {
		now, name, from, to string
	}{
		{"2026-03-11", "today", "2026-03-11", "2026-03-11"},
		{"2026-03-11", "7d", "2026-03-05", "2026-03-11"},
		{"2026-03-11", "30d", "2026-02-10", "2026-03-11"},
		{"2026-03-11", "90d", "2025-12-12", "2026-03-11"},
		{"2026-03-11", "180d", "2025-09-13", "2026-03-11"},
		{"2026-03-11", "365d", "2025-03-12", "2026-03-11"},
		{"2024-03-01", "365d", "2023-03-03", "2024-03-01"},       // across 29 February
		{"2026-03-11", "this_week", "2026-03-09", "2026-03-11"},  // Wednesday → Monday
		{"2026-03-09", "this_week", "2026-03-09", "2026-03-09"},  // a Monday is its week's first day
		{"2026-03-15", "this_week", "2026-03-09", "2026-03-15"},  // Sunday is the last
		{"2026-01-01", "this_week", "2025-12-29", "2026-01-01"},  // a week across years
		{"2026-03-11", "this_month", "2026-03-01", "2026-03-11"}, //
		{"2026-03-01", "this_month", "2026-03-01", "2026-03-01"},
		{"2026-03-11", "this_year", "2026-01-01", "2026-03-11"},
		{"2026-01-01", "this_year", "2026-01-01", "2026-01-01"},
	} {
		now := date(c.now).Add(23*time.Hour + 59*time.Minute) // late in the UTC day
		r, ok := namedRange(c.name, now)
		if !ok || day(r.From) != c.from || day(r.To) != c.to || r.Name != c.name {
			t.Errorf("%s at %s: %s … %s, want %s … %s", c.name, c.now, day(r.From), day(r.To), c.from, c.to)
		}
	}
	// Another time zone's evening is the next UTC day.
	r, _ := namedRange("today", time.Date(2026, 3, 11, 22, 0, 0, 0, time.FixedZone("x", -5*3600)))
	if day(r.From) != "2026-03-12" {
		t.Errorf("today in UTC: %s", day(r.From))
	}
	r, ok := namedRange("all", testNow)
	if !ok || !r.All {
		t.Errorf("all: %+v", r)
	}
	if _, ok := namedRange("8d", testNow); ok {
		t.Error("8d accepted")
	}
}

func TestParseRange(t *testing.T) {
	for q, want := range map[string]string{
		"":                                    "7d 2026-03-05 2026-03-11",
		"range=30d":                           "30d 2026-02-10 2026-03-11",
		"from=2025-01-01&to=2025-01-31":       "custom 2025-01-01 2025-01-31",
		"from=2025-01-01&to=2025-01-01":       "custom 2025-01-01 2025-01-01",
		"range=7d&from=2025-01-01":            "400 range",
		"range=7d&to=2025-01-01":              "400 range",
		"range=week":                          "400 range",
		"range=":                              "400 range",
		"from=2025-01-01":                     "400 to",
		"to=2025-01-01":                       "400 from",
		"from=2025-1-1&to=2025-01-02":         "400 from",
		"from=2025-02-30&to=2025-03-01":       "400 from",
		"from=2025-01-01&to=yesterday":        "400 to",
		"from=2025-01-02&to=2025-01-01":       "400 to",
		"from=+2025-01-01&to=2025-01-02":      "400 from",
		"from=2025-01-01T00:00&to=2025-01-02": "400 from",
	} {
		v, _ := url.ParseQuery(q)
		r, err := parseRange(v, testNow)
		got := ""
		if err != nil {
			_, e := StatusOf(err)
			got = "400 " + e.Param
		} else {
			got = r.Name + " " + day(r.From) + " " + day(r.To)
		}
		if got != want {
			t.Errorf("%q: %s, want %s", q, got, want)
		}
	}
}

type topJSON struct {
	User   string `json:"user"`
	Entity string `json:"entity"`
	Range  struct {
		Name, From, To string
	} `json:"range"`
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	Total  int       `json:"total"`
	Items  []struct {
		Rank   int               `json:"rank"`
		Name   string            `json:"name"`
		Artist string            `json:"artist"`
		Plays  int64             `json:"plays"`
		IDs    map[string]string `json:"ids"`
	} `json:"items"`
}

func decodeTop(t *testing.T, body string) topJSON {
	t.Helper()
	var a topJSON
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return a
}

var urlEntities = map[string]topk.Entity{"tracks": topk.Tracks, "artists": topk.Artists, "albums": topk.Albums}

// checkTop compares an answer with the independent count over [from, to].
func checkTop(t *testing.T, f *fixture, user, ent, query string, from, to time.Time, k, offset int, source string) {
	t.Helper()
	code, body := f.get(t, "/v1/users/"+url.PathEscape(user)+"/top/"+ent+"?"+query)
	if code != 200 {
		t.Fatalf("%s %s %s: %d %s", user, ent, query, code, body)
	}
	a := decodeTop(t, body)
	want := f.w.expect(user, urlEntities[ent], from, to)
	if a.Total != len(want) || a.Range.From != day(from) || a.Range.To != day(to) || (source != "" && a.Source != source) {
		t.Fatalf("%s %s %s: total %d range %s…%s source %s, want %d %s…%s %s", user, ent, query, a.Total, a.Range.From, a.Range.To, a.Source,
			len(want), day(from), day(to), source)
	}
	want = window(want, offset)
	if len(want) > k {
		want = want[:k]
	}
	if len(a.Items) != len(want) {
		t.Fatalf("%s %s %s: %d items, want %d", user, ent, query, len(a.Items), len(want))
	}
	for i, it := range a.Items {
		w := want[i]
		if it.Rank != offset+i+1 || it.Name != w.name || it.Plays != w.plays || it.IDs[string(urlEntities[ent])] != hexKey(w.key) ||
			(ent != "artists" && (it.Artist != w.artist || it.IDs["artist"] != hexKey(listen.ArtistKey(w.artist)))) {
			t.Fatalf("%s %s %s: item %d %+v, want %+v", user, ent, query, i, it, w)
		}
	}
}

// Every range and entity, with the view recovered, not recovered and
// absent, equals the count made directly from the days; ranges inside the
// view's window come from the view, outside from Cassandra, across from
// both.
func TestTopEveryRangeAndEntity(t *testing.T) {
	today := midnight(testNow)
	first := f0(t).w.sortedDays("alice", Earliest, today)[0].Date
	for _, mode := range []struct {
		name string
		o    fixtureOpts
	}{{"view", fixtureOpts{recovered: true}}, {"view recovering", fixtureOpts{}}, {"no view", fixtureOpts{noView: true}},
		{"view cached", fixtureOpts{recovered: true, ttl: time.Minute}}} {
		t.Run(mode.name, func(t *testing.T) {
			f := newFixture(t, mode.o)
			viewOK := mode.o.recovered
			for _, name := range rangeNames {
				r, _ := namedRange(name, testNow)
				from := r.From
				if r.All {
					from = first
				}
				src := "cassandra"
				if viewOK {
					switch {
					case !from.Before(today.AddDate(0, 0, -34)):
						src = "view"
					default:
						src = "mixed"
					}
				}
				for ent := range urlEntities {
					checkTop(t, f, "alice", ent, "range="+name+"&k=1000", from, r.To, 1000, 0, src)
					checkTop(t, f, "alice", ent, "range="+name+"&k=3&offset=2", from, r.To, 3, 2, src)
				}
			}
			inside, outside := "from=2026-02-10&to=2026-03-01", "from=2025-01-15&to=2025-06-03"
			across := "from=2025-11-30&to=2026-02-20"
			srcIn, srcAcross := "cassandra", "cassandra"
			if viewOK {
				srcIn, srcAcross = "view", "mixed"
			}
			for ent := range urlEntities {
				checkTop(t, f, "alice", ent, inside+"&k=50", date("2026-02-10"), date("2026-03-01"), 50, 0, srcIn)
				checkTop(t, f, "alice", ent, outside+"&k=50", date("2025-01-15"), date("2025-06-03"), 50, 0, "cassandra")
				checkTop(t, f, "alice", ent, across+"&k=50", date("2025-11-30"), date("2026-02-20"), 50, 0, srcAcross)
				checkTop(t, f, "alice", ent, across+"&k=7&offset=9", date("2025-11-30"), date("2026-02-20"), 7, 9, srcAcross)
				checkTop(t, f, "carol", ent, "range=all&k=100", today.AddDate(-1, 0, -19), today, 100, 0, "")
				checkTop(t, f, "bob", ent, "range=all&k=100", today.AddDate(0, 0, -9), today, 100, 0, "")
			}
			// Past the end: empty items, the real total.
			checkTop(t, f, "alice", "tracks", "range=all&offset=100000", first, today, 10, 100000, "")
			// A range with no listens of a known user: 200, empty.
			checkTop(t, f, "carol", "tracks", "range=7d", today.AddDate(0, 0, -6), today, 10, 0, "")
		})
	}
}

func f0(t *testing.T) *fixture { return newFixture(t, fixtureOpts{}) }

// Long ranges read rollups: "all" over three years reads at most two
// partial months of days.
func TestLongRangesReadRollups(t *testing.T) {
	f := newFixture(t, fixtureOpts{noView: true})
	if code, body := f.get(t, "/v1/users/alice/top/tracks?range=all"); code != 200 {
		t.Fatal(code, body)
	}
	r := f.store.reads
	if r["year_items"] < 2 || r["day_items"] > 62 || r["user_days"] > 2 {
		t.Fatalf("reads %v: want the full years from year_items, at most two partial months of days", r)
	}
	f.store.reads = nil
	f.get(t, "/v1/users/alice/top/tracks?range=365d")
	if r := f.store.reads; r["day_items"] > 31 || r["month_items"] < 10 {
		t.Fatalf("365d reads %v", r)
	}
}

func TestTiesOrderByName(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true})
	for _, q := range []string{"range=today", "range=all", "range=90d"} {
		_, body := f.get(t, "/v1/users/tie/top/tracks?"+q)
		a := decodeTop(t, body)
		var got []string
		for _, it := range a.Items {
			got = append(got, fmt.Sprint(it.Name, "/", it.Artist, "/", it.Plays))
		}
		plays := 1
		if q != "range=today" {
			plays = 2
		}
		want := fmt.Sprintf("[a/X/%d a/Y/%d b/X/%d c/X/%d]", plays, plays, plays, plays)
		if fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", q, got, want)
		}
	}
}

// rank against sorting everything, for many splits of the same items
// between an older tally and recent days.
func TestRankMergesOlderAndRecent(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	for seed := range 200 {
		olderAcc, recent, all := newAccumulator(0), newAccumulator(0), newAccumulator(0)
		n := 1 + seed%23
		for i := range n * 3 {
			key := uint64(1 + (i*7+seed)%n)
			name := names[(int(key)+seed)%len(names)]
			plays := int64(1 + (i*13+seed)%5)
			if (i+seed)%3 == 0 {
				recent.add(key, name, "", plays)
			} else {
				olderAcc.add(key, name, "", plays)
			}
		}
		// all = older then recent, as the api orders periods.
		for _, it := range olderAcc.items {
			all.add(it.key, it.name, it.artist, it.plays)
		}
		for _, it := range recent.items {
			all.add(it.key, it.name, it.artist, it.plays)
		}
		want := all.tally().items
		older := olderAcc.tally()
		if seed%5 == 0 {
			older = nil
			want = slices.Clone(recent.items)
			slices.SortFunc(want, compare)
		}
		for _, ko := range [][2]int{{1, 0}, {3, 0}, {1000, 0}, {2, 3}, {5, n}, {10, 100}} {
			spent := &accumulator{index: recent.index, items: slices.Clone(recent.items)} // rank spends it
			p := rank(older, spent, ko[1], ko[0])
			w := window(want, ko[1])
			if len(w) > ko[0] {
				w = w[:ko[0]]
			}
			if p.total != len(want) || fmt.Sprint(p.items) != fmt.Sprint(w) {
				t.Fatalf("seed %d k %d offset %d: %v (total %d), want %v (total %d)", seed, ko[0], ko[1], p.items, p.total, w, len(want))
			}
		}
	}
}

func TestTallyEncoding(t *testing.T) {
	acc := newAccumulator(0)
	acc.add(1, "Nude", "Radiohead", 3)
	acc.add(1<<63+5, "Ünïcödé", "", 7)
	acc.add(2, "", "x", 0)
	tl := acc.tally()
	got, err := decodeTally(tl.encode())
	if err != nil || fmt.Sprint(got.items) != fmt.Sprint(tl.items) || got.index[1<<63+5] != 0 {
		t.Fatalf("%v %v", err, got)
	}
	b := tl.encode()
	for i := range len(b) {
		if _, err := decodeTally(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

type errJSON struct {
	Error Error `json:"error"`
}

// Every bad parameter is a 400 whose body names it; an unknown entity or a
// user without listens is a 404.
func TestBadParameters(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true})
	for path, want := range map[string]string{
		"/v1/users/alice/top/tracks?k=0":                                    "400 k",
		"/v1/users/alice/top/tracks?k=1001":                                 "400 k",
		"/v1/users/alice/top/tracks?k=ten":                                  "400 k",
		"/v1/users/alice/top/tracks?k=":                                     "400 k",
		"/v1/users/alice/top/tracks?offset=-1":                              "400 offset",
		"/v1/users/alice/top/tracks?offset=99999999999999999999":            "400 offset",
		"/v1/users/alice/top/tracks?range=forever":                          "400 range",
		"/v1/users/alice/top/tracks?range=7d&from=2026-01-01&to=2026-01-02": "400 range",
		"/v1/users/alice/top/tracks?from=2026-01-01":                        "400 to",
		"/v1/users/alice/top/tracks?from=2026-01-05&to=2026-01-01":          "400 to",
		"/v1/users/alice/top/songs":                                         "404 entity",
		"/v1/users/alice/top/Tracks":                                        "404 entity",
		"/v1/users/nobody/top/tracks":                                       "404 user",
		"/v1/users/nobody/top/tracks?range=all":                             "404 user",
		"/v1/users/nobody/activity":                                         "404 user",
		"/v1/users/nobody/listens":                                          "404 user",
		"/v1/users/a%7Cb/top/tracks":                                        "400 user",
		"/v1/users/%20alice/top/tracks":                                     "400 user",
		"/v1/users/%01/top/tracks":                                          "400 user",
		"/v1/users/%FF/top/tracks":                                          "400 user",
		"/v1/users/" + strings.Repeat("x", 129) + "/top/tracks":             "400 user",
		"/v1/users/alice/activity?range=1y":                                 "400 range",
		"/v1/users/alice/listens?limit=0":                                   "400 limit",
		"/v1/users/alice/listens?limit=1001":                                "400 limit",
		"/v1/users/alice/listens?from=2026-13-01":                           "400 from",
		"/v1/users/alice/listens?to=x":                                      "400 to",
		"/v1/users/alice/listens?from=2026-02-02&to=2026-02-01":             "400 to",
		"/v1/users/alice/listens?range=7d":                                  "400 range",
		"/v1/users/alice/listens?cursor=abc":                                "400 cursor",
		"/v1/users/alice/listens?cursor=":                                   "400 cursor",
		"/v1/users":                                                         "400 prefix",
		"/v1/users?prefix=":                                                 "400 prefix",
		"/v1/users?prefix=a%7C":                                             "400 prefix",
		"/v1/users?prefix=a&limit=101":                                      "400 limit",
	} {
		code, body := f.get(t, path)
		var e errJSON
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: %d %q is not a JSON error", path, code, body)
			continue
		}
		if got := fmt.Sprint(code, " ", e.Error.Param); got != want {
			t.Errorf("%s: %s (%s), want %s", path, got, e.Error.Message, want)
		}
	}
}

// Paging through every listen, newest first, with ties of played_at; a
// cursor from another from/to is refused.
func TestListensPaging(t *testing.T) {
	for _, o := range []fixtureOpts{{recovered: true}, {ttl: time.Minute}} {
		f := newFixture(t, o)
		for _, user := range []string{"alice", "tie", "bob"} {
			var want []string
			for _, d := range f.w.sortedDays(user, Earliest, midnight(testNow)) {
				ls := slices.Clone(f.w.listens[user][d.Date])
				slices.SortFunc(ls, func(a, b cassandra.Listen) int {
					if c := b.PlayedAt.Compare(a.PlayedAt); c != 0 {
						return c
					}
					return strings.Compare(string(a.Identity), string(b.Identity))
				})
				var day []string
				for _, l := range ls {
					day = append(day, l.PlayedAt.Format(time.RFC3339)+" "+l.Track)
				}
				want = append(day, want...)
			}
			var got []string
			cur := ""
			for pages := 0; ; pages++ {
				q := "limit=7"
				if cur != "" {
					q += "&cursor=" + url.QueryEscape(cur)
				}
				code, body := f.get(t, "/v1/users/"+user+"/listens?"+q)
				if code != 200 {
					t.Fatalf("%s page %d: %d %s", user, pages, code, body)
				}
				var a struct {
					Listens []struct {
						PlayedAt time.Time `json:"played_at"`
						Track    string    `json:"track_name"`
					} `json:"listens"`
					Next string `json:"next"`
				}
				_ = json.Unmarshal([]byte(body), &a)
				for _, l := range a.Listens {
					got = append(got, l.PlayedAt.Format(time.RFC3339)+" "+l.Track)
				}
				if a.Next == "" {
					break
				}
				cur = a.Next
				if pages > 10000 {
					t.Fatal("no end")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: %d listens %v…, want %d %v…", user, len(got), got[:min(5, len(got))], len(want), want[:min(5, len(want))])
			}
		}
		// from/to select days; a cursor outside them is refused.
		_, body := f.get(t, "/v1/users/alice/listens?from=2026-03-10&to=2026-03-10&limit=1")
		var a struct {
			Next string `json:"next"`
		}
		_ = json.Unmarshal([]byte(body), &a)
		if code, _ := f.get(t, "/v1/users/alice/listens?from=2026-03-11&to=2026-03-11&cursor="+a.Next); code != 400 {
			t.Fatalf("a cursor of another day range: %d", code)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := &cursor{day: date("2026-03-10"), playedAt: date("2026-03-10").Add(5*time.Hour + 123*time.Millisecond), identity: []byte{1, 2, 3}}
	got, err := decodeCursor(c.encode())
	if err != nil || !got.day.Equal(c.day) || !got.playedAt.Equal(c.playedAt) || string(got.identity) != string(c.identity) {
		t.Fatalf("%v %+v", err, got)
	}
	bad := &cursor{day: date("2026-03-10"), playedAt: date("2026-03-11")}
	if _, err := decodeCursor(bad.encode()); err == nil {
		t.Fatal("a played_at outside its day decoded")
	}
}

func TestActivity(t *testing.T) {
	for _, o := range []fixtureOpts{{recovered: true}, {}} {
		f := newFixture(t, o)
		for _, q := range []string{"range=30d", "range=all", "range=this_year", "from=2025-06-01&to=2026-03-01"} {
			code, body := f.get(t, "/v1/users/alice/activity?"+q)
			if code != 200 {
				t.Fatal(code, body)
			}
			var a struct {
				Range struct{ From, To string } `json:"range"`
				Plays int64                     `json:"plays"`
				Days  []struct {
					Day   string `json:"day"`
					Plays int64  `json:"plays"`
				} `json:"days"`
			}
			_ = json.Unmarshal([]byte(body), &a)
			var want []string
			var total int64
			for _, d := range f.w.sortedDays("alice", date(a.Range.From), date(a.Range.To)) {
				want = append(want, fmt.Sprint(day(d.Date), " ", d.Plays))
				total += d.Plays
			}
			var got []string
			for _, d := range a.Days {
				got = append(got, fmt.Sprint(d.Day, " ", d.Plays))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || a.Plays != total {
				t.Fatalf("%s: %v (%d), want %v (%d)", q, got, a.Plays, want, total)
			}
		}
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, fixtureOpts{ttl: time.Minute})
	for q, want := range map[string]string{
		"prefix=a":                  "[alice]",
		"prefix=ALI":                "[alice]",
		"prefix=%C3%A9mile":         "[Émile Zola émile-2]",
		"prefix=%C3%89MILE&limit=1": "[Émile Zola]",
		"prefix=zz":                 "[]",
	} {
		code, body := f.get(t, "/v1/users?"+q)
		var a struct {
			Users []string `json:"users"`
		}
		_ = json.Unmarshal([]byte(body), &a)
		if code != 200 || fmt.Sprint(a.Users) != want {
			t.Errorf("%s: %d %v, want %s", q, code, a.Users, want)
		}
	}
}

// Cassandra answers are cached (in this process and in Redis); Redis down
// is served uncached; Cassandra down leaves the view's ranges answering
// and makes the others a 503, never a 400 or a 500.
func TestCacheAndOutages(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute})
	path := "/v1/users/alice/top/artists?range=365d"
	if code, _ := f.get(t, path); code != 200 {
		t.Fatal(code)
	}
	reads := f.store.reads["month_items"]
	if len(f.cache.m) == 0 {
		t.Fatal("nothing cached in Redis")
	}
	_, body := f.get(t, path)
	if f.store.reads["month_items"] != reads {
		t.Fatal("a cached answer read Cassandra again")
	}
	a := decodeTop(t, body)
	if a.Source != "mixed" || a.AsOf.After(testNow) {
		t.Fatalf("cached answer %+v", a)
	}

	// A second server on the same Redis finds the answer there.
	g := newFixtureOn(t, fixtureOpts{recovered: true, ttl: time.Minute}, f.cache)
	if code, _ := g.get(t, path); code != 200 || g.store.reads["month_items"] != 0 {
		t.Fatalf("second server: %d, read Cassandra %v", code, g.store.reads)
	}

	// Redis down: served uncached.
	h := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute})
	h.cache.down = true
	for range 3 {
		code, body := h.get(t, "/v1/users/alice/top/tracks?range=all")
		if code != 200 {
			t.Fatalf("redis down: %d %s", code, body)
		}
	}

	// Cassandra down: the view's ranges answer, the others are 503.
	d := newFixture(t, fixtureOpts{recovered: true})
	d.store.down = true
	for _, q := range []string{"range=7d", "range=30d", "range=this_month", "range=today", "from=2026-03-01&to=2026-03-11"} {
		code, body := d.get(t, "/v1/users/alice/top/tracks?"+q)
		if code != 200 || decodeTop(t, body).Source != "view" {
			t.Errorf("cassandra down, %s: %d %s", q, code, body)
		}
	}
	for _, q := range []string{"range=90d", "range=all", "from=2025-01-01&to=2025-02-01"} {
		if code, body := d.get(t, "/v1/users/alice/top/tracks?"+q); code != 503 {
			t.Errorf("cassandra down, %s: %d %s, want 503", q, code, body)
		}
	}
	// An answer cached before Cassandra went down is served after it
	// expired (as_of tells its age) rather than a 503.
	clock := testNow
	st := newFixtureOn(t, fixtureOpts{recovered: true, ttl: time.Minute, now: func() time.Time { return clock }}, &fakeCache{down: true})
	if code, _ := st.get(t, "/v1/users/alice/top/tracks?range=365d"); code != 200 {
		t.Fatal(code)
	}
	st.store.down = true
	clock = clock.Add(10 * time.Minute)
	code, body := st.get(t, "/v1/users/alice/top/tracks?range=365d")
	if a := decodeTop(t, body); code != 200 || !a.AsOf.Equal(testNow) {
		t.Fatalf("stale answer: %d as_of %v", code, a.AsOf)
	}
	clock = clock.Add(2 * time.Hour)
	if code, _ := st.get(t, "/v1/users/alice/top/tracks?range=365d"); code != 503 {
		t.Fatalf("an answer older than MaxStale: %d", code)
	}

	// Not recovered and Cassandra down: 503.
	d.view.recovered = false
	if code, _ := d.get(t, "/v1/users/alice/top/tracks?range=7d"); code != 503 {
		t.Errorf("no view, no cassandra: %d", code)
	}
}

// As entries near the end of their TTL, one background fill replaces them
// while requests keep being served from the old one.
func TestCacheRefreshAhead(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := newAnswers(nil, time.Minute, 1<<20, "", ops.NewLogger(io.Discard, "error", "text"), clock, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var fills atomic.Int32
	fill := func(context.Context) (int, error) { return int(fills.Add(1)), nil }
	c := jsonCodec[int]()
	get := func() int {
		v, _, err := fetch(context.Background(), a, "k", c, fill)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if first, second := get(), get(); first != 1 || second != 1 || fills.Load() != 1 {
		t.Fatalf("fills %d", fills.Load())
	}
	mu.Lock()
	now = now.Add(50 * time.Second) // past 3/4 of the TTL: served, refreshed behind
	mu.Unlock()
	if v := get(); v != 1 {
		t.Fatalf("served %d while refreshing", v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("never refreshed")
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // expired: a new fill
	mu.Unlock()
	if v := get(); v != 3 {
		t.Fatalf("after expiry %d", v)
	}
}

func TestLRUBudget(t *testing.T) {
	l := newLRU(1000)
	for i := range 30 {
		l.put(fmt.Sprint(i), cached{size: 100})
	}
	if l.used > 1000 || len(l.m) != 10 {
		t.Fatalf("used %d, %d entries", l.used, len(l.m))
	}
	if _, ok := l.get("29"); !ok {
		t.Fatal("newest evicted")
	}
	if _, ok := l.get("0"); ok {
		t.Fatal("oldest kept")
	}
	l.put("big", cached{size: 600})
	if _, ok := l.get("big"); ok {
		t.Fatal("an entry over half the budget was kept")
	}
}
