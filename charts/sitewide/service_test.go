package sitewide

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listen"
	swview "github.com/topk-charts/topk/views/sitewide"
)

// row is one user's plays of an item on a day, spelled name by artist.
type row struct {
	user         string
	e            topk.Entity
	item         uint64
	day          time.Time
	plays        int64
	name, artist string
}

// world is every play, for the fakes and the independent count.
type world struct{ rows []row }

// agg is an item summed over some days.
type agg struct {
	plays     int64
	users     map[string]bool
	dayUsers  int64 // Σ over days of each day's distinct users
	spellings map[[2]string]int64
}

func (w *world) sum(e topk.Entity, from, to time.Time) map[uint64]*agg {
	out := map[uint64]*agg{}
	perDay := map[string]bool{}
	for _, r := range w.rows {
		if r.e != e || r.day.Before(from) || r.day.After(to) || r.plays == 0 {
			continue
		}
		a := out[r.item]
		if a == nil {
			a = &agg{users: map[string]bool{}, spellings: map[[2]string]int64{}}
			out[r.item] = a
		}
		a.plays += r.plays
		a.users[r.user] = true
		a.spellings[[2]string{r.name, r.artist}] += r.plays
		k := fmt.Sprint(r.item, r.day, r.user)
		if !perDay[k] {
			perDay[k] = true
			a.dayUsers++
		}
	}
	return out
}

// display is the most played spelling, ties the smaller name then artist.
func (a *agg) display() swview.Spelling {
	var best swview.Spelling
	first := true
	for k, p := range a.spellings {
		s := swview.Spelling{Name: k[0], Artist: k[1], Plays: p}
		if first || s.Plays > best.Plays || s.Plays == best.Plays && (s.Name < best.Name || s.Name == best.Name && s.Artist < best.Artist) {
			best, first = s, false
		}
	}
	return best
}

// fakeView is the sitewide view over the world's days from first on.
type fakeView struct {
	w         *world
	first     time.Time
	recovered atomic.Bool
	ranges    atomic.Int64
	listeners atomic.Int64
}

func (v *fakeView) Recovered() bool              { return v.recovered.Load() }
func (v *fakeView) FirstDay(time.Time) time.Time { return v.first }

func (v *fakeView) Range(e topk.Entity, from, to time.Time) []swview.Tally {
	v.ranges.Add(1)
	var out []swview.Tally
	for item, a := range v.w.sum(e, maxTime(from, v.first), to) {
		d := a.display()
		t := swview.Tally{Item: item, Name: d.Name, Artist: d.Artist, Plays: a.plays, DayListeners: a.dayUsers}
		if len(a.spellings) > 1 {
			for k, p := range a.spellings {
				t.Spellings = append(t.Spellings, swview.Spelling{Name: k[0], Artist: k[1], Plays: p})
			}
		}
		out = append(out, t)
	}
	return out
}

func (v *fakeView) Listeners(e topk.Entity, items []uint64, from, to time.Time) []int64 {
	v.listeners.Add(int64(len(items)))
	s := v.w.sum(e, maxTime(from, v.first), to)
	out := make([]int64, len(items))
	for i, item := range items {
		if a := s[item]; a != nil {
			out[i] = int64(len(a.users))
		}
	}
	return out
}

// fakeStore is Cassandra: every day of the world, per item summed, with
// the sum of each day's listeners; it fails while err is set and waits
// for gate when set.
type fakeStore struct {
	w     *world
	mu    sync.Mutex
	calls [][2]string
	err   error
	gate  chan struct{}
}

func (s *fakeStore) SitewideRange(ctx context.Context, e topk.Entity, from, to time.Time, read func(context.Context) func()) ([]StoreItem, error) {
	if read != nil { // one read, as a Cassandra partition
		defer read(ctx)()
	}
	s.mu.Lock()
	s.calls = append(s.calls, [2]string{day(from), day(to)})
	err, gate := s.err, s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	var out []StoreItem
	for item, a := range s.w.sum(e, from, to) {
		d := a.display()
		it := StoreItem{Item: topk.Item{Key: item, Name: d.Name, Artist: d.Artist, Plays: a.plays}, Listeners: a.dayUsers}
		if len(a.spellings) > 1 {
			for k, p := range a.spellings { // the world keeps one artist spelling per item
				it.Spellings = append(it.Spellings, topk.Spelling{Name: k[0], Plays: p})
			}
			slices.SortFunc(it.Spellings, func(a, b topk.Spelling) int { return cmp.Compare(a.Name, b.Name) })
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *fakeStore) reads() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func date(s string) time.Time {
	t, ok := charts.ParseDay(s)
	if !ok {
		panic(s)
	}
	return t
}

// seeded is a world of 60 users' plays of 40 tracks and 12 artists over
// 2025-10-01 … 2026-03-11, Zipf-ish; each track has two spellings of its
// name (users choose by parity) and one of its artist.
func seeded() *world {
	rng := rand.New(rand.NewPCG(7, 9))
	w := &world{}
	start := date("2025-10-01")
	for range 6000 {
		u := rng.IntN(60)
		d := start.AddDate(0, 0, rng.IntN(162))
		track := uint64(1 + min(rng.IntN(40), rng.IntN(40)))
		name := fmt.Sprintf("Song %02d", track)
		if u%2 == 1 && track%3 == 0 {
			name = fmt.Sprintf("SONG %02d", track)
		}
		artist := fmt.Sprintf("Band %d", track%5)
		user := fmt.Sprintf("user%02d", u)
		w.rows = append(w.rows, row{user, topk.Tracks, track, d, 1, name, artist})
		w.rows = append(w.rows, row{user, topk.Artists, track % 12, d, 1, fmt.Sprintf("Artist %d", track%12), ""})
	}
	return w
}

type fixture struct {
	w     *world
	view  *fakeView
	store *fakeStore
	svc   *Service
	clock atomic.Pointer[time.Time]
}

func newFixture(t *testing.T, w *world, cfg Config) *fixture {
	t.Helper()
	f := &fixture{w: w, view: &fakeView{w: w, first: date("2026-02-04")}, store: &fakeStore{w: w}}
	f.view.recovered.Store(true)
	f.clock.Store(&now)
	cfg.View, cfg.Store = f.view, f.store
	cfg.Now = func() time.Time { return *f.clock.Load() }
	cfg.Registerer = prometheus.NewRegistry()
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func (f *fixture) top(t *testing.T, e topk.Entity, r charts.Range, k, offset int) *Answer {
	t.Helper()
	a, err := f.svc.Top(context.Background(), Query{Entity: e, Range: r, K: k, Offset: offset})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// want is the independent answer: every item of [from, to] in chart
// order with its plays, display spelling and listeners (exact over the
// view's days from viewFirst, per-day sums before).
func (f *fixture) want(e topk.Entity, from, to, viewFirst time.Time) []Item {
	all := f.w.sum(e, from, to)
	recent := f.w.sum(e, maxTime(from, viewFirst), to)
	oldTo := minTime(to, viewFirst.AddDate(0, 0, -1))
	old := map[uint64]*agg{}
	if !oldTo.Before(from) {
		old = f.w.sum(e, from, oldTo)
	}
	var out []Item
	keys := map[string]uint64{}
	for item, a := range all {
		d := a.display()
		var l int64
		if r := recent[item]; r != nil {
			l += int64(len(r.users))
		}
		if o := old[item]; o != nil {
			l += o.dayUsers
		}
		it := Item{Name: d.Name, Plays: a.plays, Listeners: l, IDs: map[string]string{string(e): charts.HexKey(item)}}
		if e != topk.Artists {
			it.Artist = d.Artist
			it.IDs["artist"] = charts.HexKey(listen.ArtistKey(d.Artist))
		}
		keys[it.IDs[string(e)]] = item
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b Item) int {
		x := topk.Item{Key: keys[a.IDs[string(e)]], Name: a.Name, Artist: a.Artist, Plays: a.Plays}
		y := topk.Item{Key: keys[b.IDs[string(e)]], Name: b.Name, Artist: b.Artist, Plays: b.Plays}
		return topk.Compare(&x, &y)
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

func sameItems(t *testing.T, what string, got, want []Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d", what, len(got), len(want))
	}
	for i := range got {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("%s: item %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// A range inside the view's window comes from the view only: exact
// listeners (the union over days), chart order, ranks, IDs; Cassandra
// is not read.
func TestViewOnly(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
		a := f.top(t, e, charts.Named("30d"), 100, 0)
		if a.Source != charts.SourceView || !a.ListenersExact || !a.AsOf.Equal(now) || a.Range.From != "2026-02-09" || a.Range.To != "2026-03-10" {
			t.Fatalf("%s: source %s, exact %v, as_of %v, range %+v", e, a.Source, a.ListenersExact, a.AsOf, a.Range)
		}
		want := f.want(e, date("2026-02-09"), date("2026-03-10"), f.view.first)
		if a.Total != len(want) {
			t.Fatalf("%s: total %d, want %d", e, a.Total, len(want))
		}
		sameItems(t, string(e), a.Items, want)
	}
	if r := f.store.reads(); len(r) != 0 {
		t.Fatalf("Cassandra read for a view range: %v", r)
	}
	// The exact union is below the per-day sum for someone: the test
	// tells them apart.
	a := f.top(t, topk.Tracks, charts.Named("30d"), 1, 0)
	s := f.w.sum(topk.Tracks, date("2026-02-09"), date("2026-03-10"))
	for _, x := range s {
		if int64(len(x.users)) < x.dayUsers {
			return
		}
	}
	t.Fatalf("no item with a listener on two days: %+v", a)
}

// The view not recovered (or absent): Cassandra answers the whole range,
// listeners are per-day sums, not exact; the part is cached per range.
func TestCassandraOnly(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	f.view.recovered.Store(false)
	a := f.top(t, topk.Tracks, charts.Named("7d"), 10, 0)
	if a.Source != charts.SourceCassandra || a.ListenersExact {
		t.Fatalf("source %s, exact %v", a.Source, a.ListenersExact)
	}
	// Cassandra holds every day: per-day sums throughout (the view's first
	// day is after the range).
	want := f.want(topk.Tracks, date("2026-03-04"), date("2026-03-10"), date("2026-03-12"))
	sameItems(t, "7d", a.Items, want[:10])
	if r := f.store.reads(); len(r) != 1 || r[0] != [2]string{"2026-03-04", "2026-03-10"} {
		t.Fatalf("reads %v", r)
	}
	// Again, and another page: from the cache.
	f.top(t, topk.Tracks, charts.Named("7d"), 5, 5)
	if r := f.store.reads(); len(r) != 1 {
		t.Fatalf("reads %v: the range's part was not cached", r)
	}
	// Past the TTL: read again; as_of says when.
	later := now.Add(31 * time.Second)
	f.clock.Store(&later)
	a = f.top(t, topk.Tracks, charts.Named("7d"), 5, 5)
	if r := f.store.reads(); len(r) != 2 || !a.AsOf.Equal(later) {
		t.Fatalf("reads %v, as_of %v", r, a.AsOf)
	}
	// No view at all: the same.
	f2 := newFixture(t, f.w, Config{})
	f2.svc.cfg.View = nil
	if a := f2.top(t, topk.Tracks, charts.Named("7d"), 10, 0); a.Source != charts.SourceCassandra {
		t.Fatalf("without a view: %s", a.Source)
	}
}

// A range reaching before the view's window: its older days from
// Cassandra (one read, up to the day before the view's first), the rest
// from the view, merged by item; listeners exact over the view's days
// plus per-day sums before; not exact.
func TestMixed(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	a := f.top(t, topk.Tracks, charts.Named("90d"), 1000, 0)
	if a.Source != charts.SourceMixed || a.ListenersExact {
		t.Fatalf("source %s, exact %v", a.Source, a.ListenersExact)
	}
	if r := f.store.reads(); len(r) != 1 || r[0] != [2]string{"2025-12-11", "2026-02-03"} {
		t.Fatalf("reads %v", r)
	}
	want := f.want(topk.Tracks, date("2025-12-11"), date("2026-03-10"), f.view.first)
	if a.Total != len(want) || !a.AsOf.Equal(now) {
		t.Fatalf("total %d, want %d; as_of %v", a.Total, len(want), a.AsOf)
	}
	sameItems(t, "90d", a.Items, want)
	// "all" starts at Earliest: Cassandra from 2002-01-01.
	a = f.top(t, topk.Artists, charts.Named("all"), 3, 0)
	if r := f.store.reads(); r[len(r)-1] != [2]string{"2002-01-01", "2026-02-03"} || a.Range.From != "2002-01-01" || a.Range.To != "2026-03-10" {
		t.Fatalf("all: reads %v, range %+v", r, a.Range)
	}
	sameItems(t, "all", a.Items, f.want(topk.Artists, charts.Earliest, date("2026-03-10"), f.view.first)[:3])
}

// Pages put together are the whole ranking, in every split; an offset
// past the end is an empty page.
func TestPaging(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	for _, c := range []struct {
		r         charts.Range
		recovered bool
	}{{charts.Named("90d"), true}, {charts.Named("30d"), true}, {charts.Named("90d"), false}} {
		f.view.recovered.Store(c.recovered)
		full := f.top(t, topk.Tracks, c.r, 1000, 0)
		var pages []Item
		for off := 0; off < full.Total; off += 7 {
			a := f.top(t, topk.Tracks, c.r, 7, off)
			if a.Total != full.Total {
				t.Fatalf("%s: total %d on page %d, %d on the first", c.r.Name, a.Total, off, full.Total)
			}
			pages = append(pages, a.Items...)
		}
		sameItems(t, c.r.Name+" paged", pages, full.Items)
		if a := f.top(t, topk.Tracks, c.r, 10, full.Total); len(a.Items) != 0 {
			t.Fatalf("%s: page past the end %+v", c.r.Name, a.Items)
		}
	}
}

// Equal plays rank by name, then artist, then key; across the view and
// Cassandra parts too.
func TestTies(t *testing.T) {
	d := func(s string) time.Time { return date(s) }
	w := &world{rows: []row{
		// 4 plays each: b (view), a (Cassandra), c by X (view), c by W (split).
		{"u1", topk.Tracks, 1, d("2026-03-09"), 4, "b", "Z"},
		{"u1", topk.Tracks, 2, d("2026-01-09"), 4, "a", "Z"},
		{"u2", topk.Tracks, 3, d("2026-03-01"), 4, "c", "X"},
		{"u2", topk.Tracks, 4, d("2026-01-01"), 2, "c", "W"},
		{"u3", topk.Tracks, 4, d("2026-03-10"), 2, "c", "W"},
		// Two items spelled alike, 4 plays: the smaller key first.
		{"u3", topk.Tracks, 9, d("2026-03-10"), 4, "d", "Z"},
		{"u3", topk.Tracks, 8, d("2026-01-10"), 4, "d", "Z"},
		{"u4", topk.Tracks, 5, d("2026-03-10"), 9, "top", "Z"},
	}}
	f := newFixture(t, w, Config{})
	a := f.top(t, topk.Tracks, charts.Named("90d"), 10, 0)
	var got []string
	for _, it := range a.Items {
		got = append(got, it.Name+"/"+it.Artist+"/"+it.IDs["track"][14:])
	}
	want := []string{"top/Z/05", "a/Z/02", "b/Z/01", "c/W/04", "c/X/03", "d/Z/08", "d/Z/09"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	// Rank is 1-based from the offset.
	if a := f.top(t, topk.Tracks, charts.Named("90d"), 2, 3); a.Items[0].Rank != 4 || a.Items[1].Rank != 5 || a.Items[0].Name != "c" {
		t.Fatalf("page at 3: %+v", a.Items)
	}
}

// The display spelling over a mixed range sums the view's and
// Cassandra's spellings.
func TestMixedNames(t *testing.T) {
	d := func(s string) time.Time { return date(s) }
	w := &world{rows: []row{
		{"u1", topk.Tracks, 1, d("2026-01-05"), 5, "SONG", "Band"},
		{"u2", topk.Tracks, 1, d("2026-03-05"), 3, "Song", "Band"},
		{"u3", topk.Tracks, 1, d("2026-03-06"), 2, "SONG", "Band"},
		{"u4", topk.Tracks, 1, d("2026-03-06"), 4, "song", "Band"},
	}}
	f := newFixture(t, w, Config{})
	// View: song 4, Song 3, SONG 2 → song; with Cassandra's SONG 5: SONG 7.
	if a := f.top(t, topk.Tracks, charts.Named("30d"), 1, 0); a.Items[0].Name != "song" {
		t.Fatalf("30d: %+v", a.Items[0])
	}
	if a := f.top(t, topk.Tracks, charts.Named("90d"), 1, 0); a.Items[0].Name != "SONG" || a.Items[0].Plays != 14 || a.Items[0].Listeners != 4 {
		t.Fatalf("90d: %+v", a.Items[0])
	}
}

// Cassandra down: a range that needs it is unavailable; one the view
// holds is answered.
func TestStoreDown(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	f.store.err = errors.New("gocql: no hosts available in the pool")
	for _, r := range []string{"90d", "all"} {
		_, err := f.svc.Top(context.Background(), Query{Entity: topk.Tracks, Range: charts.Named(r), K: 10})
		if !errors.Is(err, topk.ErrUnavailable) {
			t.Fatalf("%s with Cassandra down: %v, want unavailable", r, err)
		}
	}
	f.view.recovered.Store(false)
	if _, err := f.svc.Top(context.Background(), Query{Entity: topk.Tracks, Range: charts.Named("today"), K: 10}); !errors.Is(err, topk.ErrUnavailable) {
		t.Fatalf("today, view not recovered, Cassandra down: %v", err)
	}
	f.view.recovered.Store(true)
	if a := f.top(t, topk.Tracks, charts.Named("7d"), 10, 0); a.Source != charts.SourceView || len(a.Items) == 0 {
		t.Fatalf("7d from the view: %+v", a)
	}
	// Failures are not cached: Cassandra back, answered.
	f.store.mu.Lock()
	f.store.err = nil
	f.store.mu.Unlock()
	if a := f.top(t, topk.Tracks, charts.Named("90d"), 10, 0); a.Source != charts.SourceMixed {
		t.Fatalf("90d once Cassandra is back: %+v", a)
	}
}

// The Cassandra reads count against the per-user charts' bounds (one
// api process's TOPK_API_CASSANDRA_CONCURRENCY fills and
// TOPK_API_CASSANDRA_READS reads): with the only fill slot taken a range
// that needs Cassandra is refused busy (503) without reading; with the
// only read taken it waits for it.
func TestSharedBounds(t *testing.T) {
	cs, err := charts.New(charts.Config{Store: struct{ charts.Store }{}, MaxCassandra: 1, MaxReads: 1, BusyWait: 20 * time.Millisecond,
		Registerer: prometheus.NewRegistry()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, seeded(), Config{Bounds: cs})
	q := Query{Entity: topk.Tracks, Range: charts.Named("90d"), K: 10}
	release, err := cs.Fill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Top(context.Background(), q)
	if !errors.Is(err, charts.ErrBusy) || !errors.Is(err, topk.ErrUnavailable) {
		t.Fatalf("90d with every fill slot taken: %v, want busy (unavailable)", err)
	}
	if r := f.store.reads(); len(r) != 0 {
		t.Fatalf("read Cassandra without a slot: %v", r)
	}
	release()

	done := cs.Read(context.Background())
	answered := make(chan error, 1)
	go func() {
		_, err := f.svc.Top(context.Background(), q)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("answered (%v) while the only read was taken", err)
	case <-time.After(100 * time.Millisecond):
	}
	done()
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if a := f.top(t, topk.Tracks, charts.Named("90d"), 10, 0); a.Source != charts.SourceMixed || len(a.Items) != 10 {
		t.Fatalf("90d: %+v", a)
	}
}

// Many requests of one range at once share one Cassandra read and one
// ranking.
func TestSharedFill(t *testing.T) {
	f := newFixture(t, seeded(), Config{ViewTTL: time.Minute})
	gate := make(chan struct{})
	f.store.gate = gate
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := f.svc.Top(context.Background(), Query{Entity: topk.Tracks, Range: charts.Named("90d"), K: 10, Offset: i % 20})
			if err == nil && a.Total == 0 {
				err = errors.New("empty answer")
			}
			errs <- err
		}()
	}
	for f.svc.older.len() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := f.store.reads(); len(r) != 1 {
		t.Fatalf("%d Cassandra reads for 200 requests of one range", len(r))
	}
	if n := f.view.ranges.Load(); n != 1 {
		t.Fatalf("%d view ranges for 200 requests of one range", n)
	}
}

// A request that gives up does not fail the read others wait for.
func TestCancelledRequest(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	gate := make(chan struct{})
	f.store.gate = gate
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := f.svc.Top(ctx, Query{Entity: topk.Tracks, Range: charts.Named("90d"), K: 10})
		first <- err
	}()
	for f.svc.older.len() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; err == nil {
		t.Fatal("a cancelled request answered")
	}
	second := make(chan error, 1)
	go func() {
		_, err := f.svc.Top(context.Background(), Query{Entity: topk.Tracks, Range: charts.Named("90d"), K: 10})
		second <- err
	}()
	close(gate)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if r := f.store.reads(); len(r) != 1 {
		t.Fatalf("reads %v", r)
	}
}

// The view's ranking is reused for ViewTTL, then made again (new
// listens show); its exact listeners are asked once per item.
func TestViewTTL(t *testing.T) {
	f := newFixture(t, seeded(), Config{ViewTTL: time.Second})
	f.top(t, topk.Tracks, charts.Named("7d"), 10, 0)
	soon := now.Add(500 * time.Millisecond)
	f.clock.Store(&soon)
	if a := f.top(t, topk.Tracks, charts.Named("7d"), 10, 0); !a.AsOf.Equal(now) {
		t.Fatalf("as_of of a reused ranking %v, want when it was made (%v)", a.AsOf, now)
	}
	if n, l := f.view.ranges.Load(), f.view.listeners.Load(); n != 1 || l != 10 {
		t.Fatalf("view asked %d ranges and %d items' listeners, want 1 and 10", n, l)
	}
	f.w.rows = append(f.w.rows, row{"new", topk.Tracks, 99, date("2026-03-10"), 1000, "Hit", "New"})
	later := now.Add(2 * time.Second)
	f.clock.Store(&later)
	if a := f.top(t, topk.Tracks, charts.Named("7d"), 1, 0); a.Items[0].Name != "Hit" || f.view.ranges.Load() != 2 {
		t.Fatalf("after ViewTTL: %+v", a.Items[0])
	}
}

// The cache keeps within its bound: the oldest parts go.
func TestCacheBound(t *testing.T) {
	f := newFixture(t, seeded(), Config{CacheBytes: 20000})
	f.view.recovered.Store(false)
	for i := range 10 {
		to := now.AddDate(0, 0, -i)
		f.top(t, topk.Tracks, charts.Custom(to.AddDate(0, 0, -30), to), 5, 0)
	}
	c := f.svc.older
	c.mu.Lock()
	n, bytes := len(c.m), c.bytes
	c.mu.Unlock()
	if n == 0 || n >= 10 || bytes > 20000 {
		t.Fatalf("cache holds %d parts in %d bytes (bound 20000)", n, bytes)
	}
}

// Bad queries fail before anything is read; an empty range is an empty
// answer.
func TestQueries(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	for _, c := range []struct {
		q    Query
		kind error
	}{
		{Query{Entity: "song", Range: charts.Named("7d"), K: 10}, topk.ErrNotFound},
		{Query{Entity: topk.Tracks, Range: charts.Named("8d"), K: 10}, topk.ErrInvalid},
		{Query{Entity: topk.Tracks, Range: charts.Named("7d"), K: 0}, topk.ErrInvalid},
		{Query{Entity: topk.Tracks, Range: charts.Named("7d"), K: 10, Offset: -1}, topk.ErrInvalid},
	} {
		if _, err := f.svc.Top(context.Background(), c.q); !errors.Is(err, c.kind) {
			t.Errorf("%+v: %v, want %v", c.q, err, c.kind)
		}
	}
	a := f.top(t, topk.Albums, charts.Custom(date("2030-01-01"), date("2030-01-31")), 10, 0)
	if a.Total != 0 || len(a.Items) != 0 || a.Range.From != "2030-01-01" || a.Entity != "albums" {
		t.Fatalf("future range: %+v", a)
	}
	if r := f.store.reads(); len(r) != 0 {
		t.Fatalf("reads %v", r)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Store")
	}
}

// CacheTTL 0: every request that needs Cassandra reads it, and still
// answers right.
func TestNoCache(t *testing.T) {
	f := newFixture(t, seeded(), Config{})
	svc, err := New(Config{View: f.view, Store: f.store, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	want := f.want(topk.Tracks, date("2025-12-11"), date("2026-03-10"), f.view.first)
	for range 2 {
		a, err := svc.Top(context.Background(), Query{Entity: topk.Tracks, Range: charts.Named("90d"), K: 1000})
		if err != nil {
			t.Fatal(err)
		}
		sameItems(t, "90d uncached", a.Items, want)
	}
	if r := f.store.reads(); len(r) != 2 || svc.older.len() != 0 || svc.rankings.len() != 0 {
		t.Fatalf("reads %v, cached %d parts and %d rankings", r, svc.older.len(), svc.rankings.len())
	}
}
