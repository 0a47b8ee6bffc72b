package chartstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// ContractData is the data StoreSuite writes into a store: two users'
// days across a year's end, items of a day, a month and a year (one key
// above 2^63, an artist without artist, items spelled several ways with
// the first listen of each, a First before 1970 and one at 0), listens
// with equal played_at, every optional field set on one, and users for
// the search (case, accents, one folded id the prefix of another).
func ContractData() *Data {
	d := func(s string) time.Time { t, _ := time.Parse(topk.DayLayout, s); return t }
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	data := &Data{
		Days: []Day{
			{"ann", topk.DayTotal{Day: d("2025-12-30"), Plays: 3}},
			{"ann", topk.DayTotal{Day: d("2026-01-02"), Plays: 4}},
			{"ann", topk.DayTotal{Day: d("2026-01-05"), Plays: 1}},
			{"bob", topk.DayTotal{Day: d("2026-01-02"), Plays: 1}},
		},
		Items: []Items{
			{"ann", topk.DayPeriod(d("2026-01-02")), topk.Tracks, []topk.Item{
				spelled(1<<64-5, "Radiohead", topk.Spelling{Name: "NUDE", Plays: 1, First: sec(at, 9)},
					topk.Spelling{Name: "Nude", Plays: 2, First: sec(at, 30)}),
				{Key: 7, Name: "Reckoner", Artist: "Radiohead", Plays: 1, First: sec(at, 0)}}},
			{"ann", topk.DayPeriod(d("2026-01-02")), topk.Artists, []topk.Item{
				spelled(9, "", topk.Spelling{Name: "Radiohead", Plays: 2, First: sec(at, 0)},
					topk.Spelling{Name: "radiohead", Plays: 2, First: sec(at, 9)})}},
			{"ann", topk.MonthPeriod(d("2026-01-01")), topk.Tracks, []topk.Item{
				spelled(1<<64-5, "Radiohead", topk.Spelling{Name: "NUDE", Plays: 1, First: sec(at, 9)},
					topk.Spelling{Name: "Nude", Plays: 2, First: sec(at, 30)}),
				{Key: 7, Name: "Reckoner", Artist: "Radiohead", Plays: 2, First: sec(at, -86400)}}},
			{"ann", topk.YearPeriod(d("2025-01-01")), topk.Albums, []topk.Item{
				{Key: 8, Name: "In Rainbows", Artist: "Radiohead", Plays: 3, First: -5}}},
			{"bob", topk.DayPeriod(d("2026-01-02")), topk.Tracks, []topk.Item{
				{Key: 7, Name: "Reckoner", Artist: "RADIOHEAD", Plays: 1}}},
		},
		Users: []string{"ann", "Ann B", "annie", "bob", "ÄNN"},
	}
	for i, id := range []byte{3, 1, 2} { // three listens at the same second, one later
		data.Listens = append(data.Listens, Listen{"ann", topk.Listen{PlayedAt: at, Identity: []byte{id}, Artist: "Radiohead",
			Track: fmt.Sprint("T", id), DurationMS: 1000 * i}})
	}
	data.Listens = append(data.Listens,
		Listen{"ann", topk.Listen{PlayedAt: at.Add(time.Hour), Identity: []byte{9}, Artist: "Radiohead", Track: "Later", Album: "In Rainbows"}},
		Listen{"ann", topk.Listen{PlayedAt: at.AddDate(0, 0, 3), Identity: []byte{4, 2}, Artist: "Radiohead", Track: "Nude", Album: "In Rainbows",
			TrackID: "t1", ArtistID: "a1", AlbumID: "b1", DurationMS: 255_000, Source: "spotify"}},
		Listen{"bob", topk.Listen{PlayedAt: at.Add(time.Minute), Identity: []byte{1}, Artist: "Radiohead", Track: "Reckoner"}},
	)
	return data
}

// spelled is an item of key with several spellings (Name, Plays and First
// then the majority's and the sum, as topk.Item.SetSpellings makes them).
func spelled(key uint64, artist string, sp ...topk.Spelling) topk.Item {
	it := topk.Item{Key: key, Artist: artist}
	it.SetSpellings(sp)
	return it
}

// sec is Unix seconds of at plus s seconds.
func sec(at time.Time, s int64) int64 { return at.Unix() + s }

// StoreSuite is the contract every charts.Store keeps, run against each
// implementation: the in-memory Store and cassandra.Reader on the real
// tables. open returns a store holding exactly ContractData (the suite's
// users and nothing else under their names).
func StoreSuite(t *testing.T, open func(t *testing.T, d *Data) charts.Store) {
	data := ContractData()
	st := open(t, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := func(s string) time.Time { x, _ := time.Parse(topk.DayLayout, s); return x }

	t.Run("FirstDay", func(t *testing.T) {
		if f, ok, err := st.FirstDay(ctx, "ann"); err != nil || !ok || !f.Equal(d("2025-12-30")) || f.Location() != time.UTC {
			t.Errorf("ann: %v %v %v, want 2025-12-30 UTC", f, ok, err)
		}
		if _, ok, err := st.FirstDay(ctx, "nobody"); err != nil || ok {
			t.Errorf("nobody: ok %v err %v, want neither", ok, err)
		}
	})

	t.Run("UserDays", func(t *testing.T) {
		for _, c := range []struct{ user, from, to, want string }{
			{"ann", "2026-01-01", "2026-01-31", "[2026-01-02:4 2026-01-05:1]"},
			{"ann", "2025-12-30", "2026-01-02", "[2025-12-30:3 2026-01-02:4]"}, // both ends inclusive
			{"ann", "2025-12-31", "2026-01-01", "[]"},
			{"bob", "2002-01-01", "2030-01-01", "[2026-01-02:1]"},
			{"nobody", "2002-01-01", "2030-01-01", "[]"},
		} {
			days, err := st.UserDays(ctx, c.user, d(c.from), d(c.to))
			var got []string
			for _, x := range days {
				got = append(got, fmt.Sprintf("%s:%d", x.Day.UTC().Format(topk.DayLayout), x.Plays))
			}
			if err != nil || fmt.Sprint(strings.Join(got, " ")) != strings.Trim(c.want, "[]") {
				t.Errorf("%s %s…%s: %v %v, want %s oldest first", c.user, c.from, c.to, got, err, c.want)
			}
		}
	})

	t.Run("Items", func(t *testing.T) {
		for _, p := range data.Items {
			items, err := st.Items(ctx, p.Period, p.User, p.Entity)
			if err != nil || itemsString(items) != itemsString(p.Items) {
				t.Errorf("%s %s %s: %s %v, want %s", p.User, p.Period, p.Entity, itemsString(items), err, itemsString(p.Items))
			}
		}
		for _, c := range []struct {
			user string
			p    topk.Period
			e    topk.Entity
		}{
			{"ann", topk.DayPeriod(d("2026-01-03")), topk.Tracks},  // no such day
			{"ann", topk.YearPeriod(d("2025-01-01")), topk.Tracks}, // another entity of the partition
			{"ann", topk.MonthPeriod(d("2026-02-01")), topk.Tracks},
			{"nobody", topk.DayPeriod(d("2026-01-02")), topk.Tracks},
		} {
			if items, err := st.Items(ctx, c.p, c.user, c.e); err != nil || len(items) != 0 {
				t.Errorf("%s %s %s: %v %v, want none", c.user, c.p, c.e, items, err)
			}
		}
	})

	t.Run("Listens", func(t *testing.T) {
		byDay := map[string][]topk.Listen{}
		for _, l := range data.Listens {
			k := l.User + "|" + l.PlayedAt.Format(topk.DayLayout)
			byDay[k] = append(byDay[k], l.Listen)
		}
		for k, want := range byDay {
			user, ds, _ := strings.Cut(k, "|")
			SortListens(want)
			all, err := st.Listens(ctx, user, d(ds), nil, 100)
			if err != nil || listensString(all) != listensString(want) {
				t.Errorf("%s: %s %v,\nwant %s (newest first, then identity)", k, listensString(all), err, listensString(want))
			}
			for _, limit := range []int{1, 2} {
				var got []topk.Listen
				var after *topk.ListenPos
				for range 10 {
					page, err := st.Listens(ctx, user, d(ds), after, limit)
					if err != nil || len(page) > limit {
						t.Fatalf("%s limit %d: %d listens, %v", k, limit, len(page), err)
					}
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					last := page[len(page)-1]
					after = &topk.ListenPos{PlayedAt: last.PlayedAt, Identity: last.Identity}
				}
				if listensString(got) != listensString(want) {
					t.Errorf("%s by pages of %d: %s,\nwant %s", k, limit, listensString(got), listensString(want))
				}
			}
		}
		if ls, err := st.Listens(ctx, "ann", d("2026-01-03"), nil, 10); err != nil || len(ls) != 0 {
			t.Errorf("a day without listens: %v %v", ls, err)
		}
	})

	t.Run("SearchUsers", func(t *testing.T) {
		for _, c := range []struct {
			prefix string
			limit  int
		}{{"an", 10}, {"ANN", 10}, {"ANNI", 10}, {"ann ", 10}, {"ä", 10}, {"an", 1}, {"x", 10}, {"b", 10}} {
			got, err := st.SearchUsers(ctx, c.prefix, c.limit)
			want := searchUsers(data.Users, c.prefix, c.limit)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%q limit %d: %v %v, want %v", c.prefix, c.limit, got, err, want)
			}
		}
	})
}

func itemsString(items []topk.Item) string {
	s := slices.Clone(items)
	slices.SortFunc(s, func(a, b topk.Item) int { return topk.Compare(&a, &b) })
	return fmt.Sprintf("%+v", s)
}

func listensString(ls []topk.Listen) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "[%s %x %q %q %q %q %q %q %d %q] ", l.PlayedAt.UTC().Format(time.RFC3339Nano), l.Identity, l.Artist, l.Track,
			l.Album, l.TrackID, l.ArtistID, l.AlbumID, l.DurationMS, l.Source)
	}
	return b.String()
}
