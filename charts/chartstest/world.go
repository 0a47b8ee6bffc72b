package chartstest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/views"
)

// Now is the tests' clock: a Wednesday afternoon.
var Now = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC)

// World is test data: per user, per day, the day's items (as the
// aggregator would count them) and raw listens. The fake view and the
// fake store both read it; expected answers are computed from it
// independently of the service's merging (Expect).
type World struct {
	Days    map[string]map[time.Time]*views.Day
	Listens map[string]map[time.Time][]topk.Listen
}

// NewWorld makes the users of the tests from seed: alice (three years, a
// day in three with plays, denser lately), bob (only recent days), carol
// (only a year ago), tie (equal plays), and two users for the search
// (Émile Zola, émile-2).
func NewWorld(seed uint64) *World {
	w := &World{Days: map[string]map[time.Time]*views.Day{}, Listens: map[string]map[time.Time][]topk.Listen{}}
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	today := charts.Midnight(Now)
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
			w.Play(user, d.Add(time.Duration(i*97)*time.Second), artist, track, album)
		}
	}
	for d := today.AddDate(-3, 0, 0); !d.After(today); d = d.AddDate(0, 0, 1) {
		if r.IntN(3) == 0 || today.Sub(d) < 60*24*time.Hour {
			add("alice", d, 1+r.IntN(8))
		}
	}
	for i := range 10 {
		add("bob", today.AddDate(0, 0, -i), 3)
	}
	for i := range 20 {
		add("carol", today.AddDate(-1, 0, -i), 4)
	}
	for _, tr := range []string{"b", "a", "c"} {
		w.Play("tie", today, "X", tr, "")
		w.Play("tie", today.AddDate(0, -2, 0), "X", tr, "")
	}
	w.Play("tie", today, "Y", "a", "")
	w.Play("tie", today.AddDate(0, -2, 0), "Y", "a", "")
	w.Play("Émile Zola", today, "Z", "z", "")
	w.Play("émile-2", today.AddDate(0, -3, 0), "Z", "z", "")
	return w
}

// Play adds one listen.
func (w *World) Play(user string, at time.Time, artist, track, album string) {
	d := charts.Midnight(at)
	if w.Days[user] == nil {
		w.Days[user] = map[time.Time]*views.Day{}
		w.Listens[user] = map[time.Time][]topk.Listen{}
	}
	day := w.Days[user][d]
	if day == nil {
		day = &views.Day{Date: d}
		w.Days[user][d] = day
	}
	day.Plays++
	bump := func(items *[]topk.Item, key uint64, name, artist string) {
		one := topk.Item{Key: key, Name: name, Artist: artist, Plays: 1, First: at.Unix()}
		for i := range *items {
			if (*items)[i].Key == key {
				(*items)[i].Merge(&one)
				return
			}
		}
		*items = append(*items, one)
	}
	bump(&day.Tracks, listen.TrackKey(artist, track), track, artist)
	bump(&day.Artists, listen.ArtistKey(artist), artist, "")
	if album != "" {
		bump(&day.Albums, listen.AlbumKey(artist, album), album, artist)
	}
	id := listen.Listen{UserID: user, PlayedAt: at, ArtistName: artist, TrackName: track}.Identity()
	w.Listens[user][d] = append(w.Listens[user][d], topk.Listen{PlayedAt: at, Identity: id[:], Artist: artist, Track: track, Album: album})
}

// SortedDays are the user's days in [from, to], oldest first.
func (w *World) SortedDays(user string, from, to time.Time) []*views.Day {
	var out []*views.Day
	for d, day := range w.Days[user] {
		if !d.Before(from) && !d.After(to) {
			out = append(out, day)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}

// Expect is the chart computed directly from the days: plays summed over
// [from, to], each item named by its majority spelling over all the
// user's days and a track's or album's artist by its artist's
// (topk.Majority of the spellings summed per key), sorted by plays desc,
// name, artist, key.
func (w *World) Expect(user string, e topk.Entity, from, to time.Time) []topk.Item {
	acc := map[uint64]*topk.Item{}
	for _, d := range w.SortedDays(user, from, to) {
		for _, it := range d.Items(e) {
			x := acc[it.Key]
			if x == nil {
				x = &topk.Item{Key: it.Key, Artist: it.Artist}
				acc[it.Key] = x
			}
			x.Plays += it.Plays
		}
	}
	names, artists := w.allSpellings(user, e), w.allSpellings(user, topk.Artists)
	var out []topk.Item
	for _, x := range acc {
		x.Name = topk.Majority(names[x.Key]).Name
		if e != topk.Artists {
			x.Artist = topk.Majority(artists[listen.ArtistKey(x.Artist)]).Name
		}
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Plays != b.Plays {
			return a.Plays > b.Plays
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Artist != b.Artist {
			return a.Artist < b.Artist
		}
		return a.Key < b.Key
	})
	return out
}

// allSpellings is every spelling of each item of the user's days: plays
// summed and the earliest first listen by name, per key.
func (w *World) allSpellings(user string, e topk.Entity) map[uint64][]topk.Spelling {
	type nameKey struct {
		key  uint64
		name string
	}
	sums := map[nameKey]*topk.Spelling{}
	for _, d := range w.Days[user] {
		for _, it := range d.Items(e) {
			for _, sp := range it.AllSpellings() {
				s := sums[nameKey{it.Key, sp.Name}]
				if s == nil {
					s = &topk.Spelling{Name: sp.Name, First: sp.First}
					sums[nameKey{it.Key, sp.Name}] = s
				}
				s.Plays += sp.Plays
				s.First = min(s.First, sp.First)
			}
		}
	}
	out := map[uint64][]topk.Spelling{}
	for k, s := range sums {
		out[k.key] = append(out[k.key], *s)
	}
	return out
}

// Data is the world as the store's tables hold it: user_days, day items,
// the month and year rollups (summed with their spellings, topk.Item.Merge,
// as the flusher writes them), raw listens and known users.
func (w *World) Data() *Data {
	d := &Data{}
	type key struct {
		p topk.Period
		e topk.Entity
	}
	for user := range w.Days {
		d.Users = append(d.Users, user)
		sums := map[key]map[uint64]*topk.Item{}
		var order []key
		for _, day := range w.SortedDays(user, charts.Earliest, charts.Earliest.AddDate(100, 0, 0)) {
			d.Days = append(d.Days, Day{User: user, DayTotal: topk.DayTotal{Day: day.Date, Plays: day.Plays}})
			for _, l := range w.Listens[user][day.Date] {
				d.Listens = append(d.Listens, Listen{User: user, Listen: l})
			}
			for _, p := range []topk.Period{topk.DayPeriod(day.Date), topk.MonthPeriod(day.Date), topk.YearPeriod(day.Date)} {
				for _, e := range topk.Entities {
					k := key{p, e}
					for _, it := range day.Items(e) {
						if sums[k] == nil {
							sums[k] = map[uint64]*topk.Item{}
							order = append(order, k)
						}
						x := sums[k][it.Key]
						if x == nil {
							x = &topk.Item{}
							sums[k][it.Key] = x
						}
						x.Merge(&it)
					}
				}
			}
		}
		for _, k := range order {
			items := make([]topk.Item, 0, len(sums[k]))
			for _, x := range sums[k] {
				items = append(items, *x)
			}
			d.Items = append(d.Items, Items{User: user, Period: k.p, Entity: k.e, Items: items})
		}
	}
	sort.Strings(d.Users)
	return d
}

type seeded struct {
	w *World
	d *Data
}

var worlds sync.Map // seed → seeded

// Seeded is NewWorld(seed) and its Data, made once per seed and shared:
// callers must not change them (building the Data of the three years of
// alice is most of a fixture's cost).
func Seeded(seed uint64) (*World, *Data) {
	if s, ok := worlds.Load(seed); ok {
		return s.(seeded).w, s.(seeded).d
	}
	w := NewWorld(seed)
	s, _ := worlds.LoadOrStore(seed, seeded{w, w.Data()})
	return s.(seeded).w, s.(seeded).d
}
