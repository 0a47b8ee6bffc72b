package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/views"
)

// world is the test's data: per user, per day, the day's items (as the
// aggregator would count them) and raw listens. The fake view and the
// fake store both read it; expected answers are computed from it
// independently of the api's merging.
type world struct {
	days    map[string]map[time.Time]*views.Day
	listens map[string]map[time.Time][]cassandra.Listen
}

var testNow = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC) // a Wednesday

func newWorld(seed uint64) *world {
	w := &world{days: map[string]map[time.Time]*views.Day{}, listens: map[string]map[time.Time][]cassandra.Listen{}}
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	today := midnight(testNow)
	add := func(user string, d time.Time, n int) {
		for i := range n {
			a := r.IntN(6)
			tr := r.IntN(12)
			artist := fmt.Sprintf("Artist %d", a)
			if r.IntN(4) == 0 {
				artist = strings.ToUpper(artist) // another spelling of the same artist
			}
			track := fmt.Sprintf("Track %d", tr)
			album := ""
			if tr%3 != 0 {
				album = fmt.Sprintf("Album %d", tr%2)
			}
			w.play(user, d.Add(time.Duration(i*97)*time.Second), artist, track, album)
		}
	}
	// alice: three years, a day in three with plays, denser lately.
	for d := today.AddDate(-3, 0, 0); !d.After(today); d = d.AddDate(0, 0, 1) {
		if r.IntN(3) == 0 || today.Sub(d) < 60*24*time.Hour {
			add("alice", d, 1+r.IntN(8))
		}
	}
	// bob: only recent days; carol: only a year ago; tie: equal plays.
	for i := range 10 {
		add("bob", today.AddDate(0, 0, -i), 3)
	}
	for i := range 20 {
		add("carol", today.AddDate(-1, 0, -i), 4)
	}
	for _, tr := range []string{"b", "a", "c"} {
		w.play("tie", today, "X", tr, "")
		w.play("tie", today.AddDate(0, -2, 0), "X", tr, "")
	}
	w.play("tie", today, "Y", "a", "")
	w.play("tie", today.AddDate(0, -2, 0), "Y", "a", "")
	w.play("Émile Zola", today, "Z", "z", "")
	w.play("émile-2", today.AddDate(0, -3, 0), "Z", "z", "")
	return w
}

func (w *world) play(user string, at time.Time, artist, track, album string) {
	d := midnight(at)
	if w.days[user] == nil {
		w.days[user] = map[time.Time]*views.Day{}
		w.listens[user] = map[time.Time][]cassandra.Listen{}
	}
	day := w.days[user][d]
	if day == nil {
		day = &views.Day{Date: d}
		w.days[user][d] = day
	}
	day.Plays++
	bump := func(items *[]topk.Item, key uint64, name, artist string) {
		for i := range *items {
			if (*items)[i].Key == key {
				(*items)[i].Plays++
				(*items)[i].Name, (*items)[i].Artist = name, artist
				return
			}
		}
		*items = append(*items, topk.Item{Key: key, Name: name, Artist: artist, Plays: 1})
	}
	bump(&day.Tracks, listen.TrackKey(artist, track), track, artist)
	bump(&day.Artists, listen.ArtistKey(artist), artist, "")
	if album != "" {
		bump(&day.Albums, listen.AlbumKey(artist, album), album, artist)
	}
	id := listen.Listen{UserID: user, PlayedAt: at, ArtistName: artist, TrackName: track}.Identity()
	w.listens[user][d] = append(w.listens[user][d], cassandra.Listen{PlayedAt: at, Identity: id[:], Artist: artist, Track: track, Album: album})
}

// sortedDays are the user's days in [from, to], oldest first.
func (w *world) sortedDays(user string, from, to time.Time) []*views.Day {
	var out []*views.Day
	for d, day := range w.days[user] {
		if !d.Before(from) && !d.After(to) {
			out = append(out, day)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}

// expect is the chart computed directly from the days: sum, latest
// spelling, sorted by plays desc, name, artist, key.
func (w *world) expect(user string, e topk.Entity, from, to time.Time) []item {
	acc := map[uint64]*item{}
	for _, d := range w.sortedDays(user, from, to) {
		for _, it := range d.Items(e) {
			x := acc[it.Key]
			if x == nil {
				x = &item{key: it.Key}
				acc[it.Key] = x
			}
			x.plays += it.Plays
			x.name, x.artist = it.Name, it.Artist
		}
	}
	var out []item
	for _, x := range acc {
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.plays != b.plays {
			return a.plays > b.plays
		}
		if a.name != b.name {
			return a.name < b.name
		}
		if a.artist != b.artist {
			return a.artist < b.artist
		}
		return a.key < b.key
	})
	return out
}

// fakeView serves the world's days from FirstDay on.
type fakeView struct {
	w         *world
	days      int
	recovered bool
	reads     int
	mu        sync.Mutex
}

func (v *fakeView) Recovered() bool { return v.recovered }
func (v *fakeView) FirstDay(now time.Time) time.Time {
	return midnight(now).AddDate(0, 0, -(v.days - 1))
}
func (v *fakeView) Range(user string, from, to time.Time) ([]views.Day, error) {
	v.mu.Lock()
	v.reads++
	v.mu.Unlock()
	if f := v.FirstDay(testNow); from.Before(f) {
		from = f
	}
	var out []views.Day
	for _, d := range v.w.sortedDays(user, from, to) {
		out = append(out, *d)
	}
	return out, nil
}

// fakeStore answers like Cassandra's tables: day values and rollups
// summed from the days (rollup spelling: the latest period's).
type fakeStore struct {
	w    *world
	down bool
	mu   sync.Mutex
	// reads counts queries by table.
	reads map[string]int
}

var errDown = fmt.Errorf("%w: connection refused", cassandra.ErrUnavailable)

func (s *fakeStore) count(t string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads == nil {
		s.reads = map[string]int{}
	}
	s.reads[t]++
	if s.down {
		return errDown
	}
	return nil
}

func (s *fakeStore) FirstDay(_ context.Context, user string) (time.Time, bool, error) {
	if err := s.count("first"); err != nil {
		return time.Time{}, false, err
	}
	days := s.w.sortedDays(user, Earliest, Earliest.AddDate(100, 0, 0))
	if len(days) == 0 {
		return time.Time{}, false, nil
	}
	return days[0].Date, true, nil
}

func (s *fakeStore) UserDays(_ context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	if err := s.count("user_days"); err != nil {
		return nil, err
	}
	var out []topk.DayTotal
	for _, d := range s.w.sortedDays(user, from, to) {
		out = append(out, topk.DayTotal{Day: d.Date, Plays: d.Plays})
	}
	return out, nil
}

func (s *fakeStore) Items(_ context.Context, p topk.Period, user, entity string) ([]topk.Item, error) {
	if err := s.count([...]string{"day_items", "month_items", "year_items"}[p.Kind]); err != nil {
		return nil, err
	}
	var out []topk.Item
	for _, it := range s.w.expect(user, topk.Entity(entity), p.Start, p.End()) {
		out = append(out, topk.Item{Key: it.key, Name: it.name, Artist: it.artist, Plays: it.plays})
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] }) // Cassandra orders by key hash
	return out, nil
}

func (s *fakeStore) Listens(_ context.Context, user string, day time.Time, after *cassandra.ListenPos, limit int) ([]cassandra.Listen, error) {
	if err := s.count("raw_listens"); err != nil {
		return nil, err
	}
	ls := slices.Clone(s.w.listens[user][day])
	slices.SortFunc(ls, func(a, b cassandra.Listen) int {
		if c := b.PlayedAt.Compare(a.PlayedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.Identity), string(b.Identity))
	})
	var out []cassandra.Listen
	for _, l := range ls {
		if after != nil && (l.PlayedAt.After(after.PlayedAt) || l.PlayedAt.Equal(after.PlayedAt) && string(l.Identity) <= string(after.Identity)) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, l)
	}
	return out, nil
}

func (s *fakeStore) SearchUsers(_ context.Context, prefix string, limit int) ([]string, error) {
	if err := s.count("users_by_prefix"); err != nil {
		return nil, err
	}
	_, f := cassandra.SearchKey(prefix)
	var out []string
	for u := range s.w.days {
		if _, uf := cassandra.SearchKey(u); strings.HasPrefix(uf, f) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// fakeCache is a Redis stand-in; down makes every call fail.
type fakeCache struct {
	mu   sync.Mutex
	m    map[string][]byte
	down bool
	gets int
}

func (c *fakeCache) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if c.down {
		return nil, errors.New("dial tcp: connection refused")
	}
	return c.m[key], nil
}

func (c *fakeCache) Set(_ context.Context, key string, v []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errors.New("dial tcp: connection refused")
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[key] = v
	return nil
}

// fixture is a server on the fakes.
type fixture struct {
	w     *world
	view  *fakeView
	store *fakeStore
	cache *fakeCache
	srv   *Server
}

type fixtureOpts struct {
	noView    bool
	ttl       time.Duration
	recovered bool
	now       func() time.Time // nil: testNow
	lag       LagSource        // nil: unknown
}

func newFixture(t testing.TB, o fixtureOpts) *fixture { return newFixtureOn(t, o, &fakeCache{}) }

// newFixtureOn is a fixture on a given Redis stand-in.
func newFixtureOn(t testing.TB, o fixtureOpts, cache *fakeCache) *fixture {
	t.Helper()
	w := newWorld(1)
	f := &fixture{w: w, view: &fakeView{w: w, days: 35, recovered: o.recovered}, store: &fakeStore{w: w}, cache: cache}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Registerer: reg, Gatherer: reg}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := ChartsConfig{Store: f.store, Cache: f.cache, CacheTTL: o.ttl, Now: o.now, Lag: o.lag}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if !o.noView {
		cfg.View = f.view
	}
	if err := srv.MountCharts(cfg); err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

func (f *fixture) get(t testing.TB, path string) (int, string) {
	t.Helper()
	rec := f.do(path)
	return rec.Code, rec.Body.String()
}

// do serves one GET, for its headers too.
func (f *fixture) do(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}
