package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/listen"
)

func date(s string) time.Time { d, _ := charts.ParseDay(s); return d }

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
		r, err := parseRange(v)
		got := ""
		if err != nil {
			code, e := StatusOf(err)
			got = fmt.Sprint(code, " ", e.Param)
		} else {
			from, to, _, err := charts.Resolve(r, testNow)
			if err != nil {
				t.Fatalf("%q: parsed, then %v", q, err)
			}
			got = r.Name + " " + day(from) + " " + day(to)
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
	want := f.w.Expect(user, urlEntities[ent], from, to)
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
		if it.Rank != offset+i+1 || it.Name != w.Name || it.Plays != w.Plays || it.IDs[string(urlEntities[ent])] != charts.HexKey(w.Key) ||
			(ent != "artists" && (it.Artist != w.Artist || it.IDs["artist"] != charts.HexKey(listen.ArtistKey(w.Artist)))) {
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
	first := f0(t).w.SortedDays("alice", charts.Earliest, today)[0].Date
	for _, mode := range []struct {
		name string
		o    fixtureOpts
	}{{"view", fixtureOpts{recovered: true}}, {"view recovering", fixtureOpts{}}, {"no view", fixtureOpts{noView: true}},
		{"view cached", fixtureOpts{recovered: true, ttl: time.Minute}}} {
		t.Run(mode.name, func(t *testing.T) {
			f := newFixture(t, mode.o)
			// The first chart of a range served from the view answers
			// with the range's names and fills the user's all-time part
			// in the background (charts/names.go): warm it.
			for ent := range urlEntities {
				f.do("/v1/users/alice/top/" + ent + "?range=7d")
			}
			f.svc.Settle()
			viewOK := mode.o.recovered
			for _, name := range charts.RangeNames {
				from, to, all, _ := charts.Resolve(charts.Named(name), testNow)
				if all {
					from, to = first, today
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
					checkTop(t, f, "alice", ent, "range="+name+"&k=1000", from, to, 1000, 0, src)
					checkTop(t, f, "alice", ent, "range="+name+"&k=3&offset=2", from, to, 3, 2, src)
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

func downCache() *chartstest.Cache {
	c := &chartstest.Cache{}
	c.SetDown(true)
	return c
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
			for _, d := range f.w.SortedDays(user, charts.Earliest, midnight(testNow)) {
				ls := slices.Clone(f.w.Listens[user][d.Date])
				chartstest.SortListens(ls)
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
			for _, d := range f.w.SortedDays("alice", date(a.Range.From), date(a.Range.To)) {
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
	f.svc.Settle() // the background fill of the names' all-time part
	reads := f.store.Reads("month_items")
	if f.cache.Len() == 0 {
		t.Fatal("nothing cached in Redis")
	}
	_, body := f.get(t, path)
	if f.store.Reads("month_items") != reads {
		t.Fatal("a cached answer read Cassandra again")
	}
	a := decodeTop(t, body)
	if a.Source != "mixed" || a.AsOf.After(testNow) {
		t.Fatalf("cached answer %+v", a)
	}

	// A second server on the same Redis finds the answer there.
	g := newFixtureOn(t, fixtureOpts{recovered: true, ttl: time.Minute}, f.cache)
	if code, _ := g.get(t, path); code != 200 || g.store.Reads("month_items") != 0 {
		t.Fatalf("second server: %d, read Cassandra %v", code, g.store.AllReads())
	}

	// Redis down: served uncached.
	h := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute})
	h.cache.SetDown(true)
	for range 3 {
		code, body := h.get(t, "/v1/users/alice/top/tracks?range=all")
		if code != 200 {
			t.Fatalf("redis down: %d %s", code, body)
		}
	}

	// Cassandra down: the view's ranges answer, the others are 503.
	d := newFixture(t, fixtureOpts{recovered: true})
	d.store.SetDown(true)
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
	st := newFixtureOn(t, fixtureOpts{recovered: true, ttl: time.Minute, now: func() time.Time { return clock }}, downCache())
	if code, _ := st.get(t, "/v1/users/alice/top/tracks?range=365d"); code != 200 {
		t.Fatal(code)
	}
	st.svc.Settle() // the names' background fill reads the clock too
	st.store.SetDown(true)
	clock = clock.Add(10 * time.Minute)
	code, body := st.get(t, "/v1/users/alice/top/tracks?range=365d")
	if a := decodeTop(t, body); code != 200 || !a.AsOf.Equal(testNow) {
		t.Fatalf("stale answer: %d as_of %v", code, a.AsOf)
	}
	st.svc.Settle()
	clock = clock.Add(2 * time.Hour)
	if code, _ := st.get(t, "/v1/users/alice/top/tracks?range=365d"); code != 503 {
		t.Fatalf("an answer older than MaxStale: %d", code)
	}

	// Not recovered and Cassandra down: 503.
	d.view.SetRecovered(false)
	if code, _ := d.get(t, "/v1/users/alice/top/tracks?range=7d"); code != 503 {
		t.Errorf("no view, no cassandra: %d", code)
	}
}
