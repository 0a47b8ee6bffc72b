package main

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// rawRow is one raw_listens row: what the raw writer writes for a listen.
type rawRow struct {
	day, at              time.Time
	id                   listen.Identity
	artist, track, album string
}

// rawGroup is the listens of one Cassandra partition (user, day).
type rawGroup struct {
	user string
	rows []rawRow
}

// row is one row of day_items, month_items or year_items: what the
// flusher writes (name, artist, plays, first and spellings of the item).
type row = topk.EntityItem

// period is a user-day, -month or -year with its rows and total (the sum of
// track plays, the flusher's USING TIMESTAMP).
type period struct {
	user  string
	day   time.Time // day_items, user_days
	part  int       // yyyymm or yyyy (month_items, year_items)
	total int64
	rows  []row
}

// digest is an order-independent fingerprint of a set of rows: their count
// and the sum of a 64-bit hash of each. Equal digests of what was generated
// and what Cassandra holds mean the same rows (up to a hash collision).
type digest struct {
	rows       int64
	sum        uint64
	partitions int64 // distinct partitions (user-days of day_items)
}

func (d *digest) add(h uint64) { d.rows++; d.sum += h }

func (d digest) String() string {
	return fmt.Sprintf("%d rows, %d partitions, digest %016x", d.rows, d.partitions, d.sum)
}

var seed = maphash.MakeSeed()

// hasher writes the fields of one row into a hash.
type hasher struct{ h maphash.Hash }

func newHasher() *hasher {
	h := &hasher{}
	h.h.SetSeed(seed)
	return h
}

func (h *hasher) reset() *hasher { h.h.Reset(); return h }
func (h *hasher) str(s string) *hasher {
	_, _ = h.h.WriteString(s)
	_ = h.h.WriteByte(0)
	return h
}
func (h *hasher) int(v int64) *hasher { return h.str(strconv.FormatInt(v, 10)) }
func (h *hasher) sum() uint64         { return h.h.Sum64() }

func (h *hasher) raw(user string, day, at time.Time, id []byte, artist, track, album string) uint64 {
	return h.reset().str(user).int(unixDay(day)).int(at.UnixMilli()).str(string(id)).str(artist).str(track).str(album).sum()
}

// item hashes a row as the item tables hold it: the key as a bigint, and
// the spellings column's bytes (spellings, one zero byte for Name alone).
func (h *hasher) item(user string, part int64, r *row, spellings []byte) uint64 {
	return h.reset().str(user).int(part).str(string(r.Entity)).int(int64(r.Key)).str(r.Name).str(r.Artist).
		int(r.Plays).int(r.First).str(string(spellings)).sum()
}

// itemOf hashes a generated row, its spellings column as the flusher's
// store writes it.
func (h *hasher) itemOf(user string, part int64, r *row) uint64 {
	return h.item(user, part, r, topk.AppendSpellings(nil, r.Spellings))
}

func (h *hasher) userDay(user string, day time.Time, plays int64) uint64 {
	return h.reset().str(user).int(unixDay(day)).int(plays).sum()
}

func unixDay(t time.Time) int64 { return t.Unix() / 86400 }

// dataset is the generated import and everything the bare writer and the
// check need of it, computed from the same listens that are produced.
type dataset struct {
	users, days, n int
	partitions     int // of user.listen.valid and the aggregator table

	listens  int   // valid listens = raw_listens rows
	counted  int64 // plays counted (at most the daily cap per user-day)
	userDays int

	// For the bare writer, by Kafka partition (Goka's hasher on user|day),
	// in the order produced.
	raw  [][]rawGroup // one group per user-day
	dayP [][]*period  // one per user-day
	// Rollups, one per (user, month) and (user, year).
	months, years []*period

	// What each table must hold.
	want struct{ raw, dayItems, userDays, months, years digest }
}

// generator makes the import user by user (the order a first crawl of
// many users delivers, each user's history oldest first): every user gets
// `days` distinct days of the last three years and n/users listens spread
// evenly over them, at distinct seconds, with Zipf-distributed artists and
// tracks (benchkit.Generator), some spelled differently (respell). Each
// listen is parsed as ingest parses it and added to the dataset as it is
// produced.
type generator struct {
	ds    *dataset
	r     *rand.Rand
	spell *rand.Rand // respell's own source: the days and seconds do not depend on it
	names *benchkit.Generator
	now   time.Time
	h     *hasher

	user  int
	queue [][]byte // JSON of the current user's listens, in order
	key   string
}

// span is how far back the listens go.
const span = 3 * 365

func newGenerator(users, days, n, partitions int) *generator {
	ds := &dataset{users: users, days: days, n: n, partitions: partitions,
		raw: make([][]rawGroup, partitions), dayP: make([][]*period, partitions)}
	return &generator{ds: ds, r: rand.New(rand.NewPCG(10, 6)), spell: rand.New(rand.NewPCG(3, 11)), names: benchkit.NewGenerator(10, users),
		now: time.Now().UTC(), h: newHasher()}
}

// next is benchkit's producer callback: the next listen's key and JSON.
func (g *generator) next() (string, []byte) {
	for len(g.queue) == 0 {
		g.fillUser()
	}
	v := g.queue[0]
	g.queue = g.queue[1:]
	return g.key, v
}

// fillUser generates the next user's listens and adds them to the dataset.
func (g *generator) fillUser() {
	ds := g.ds
	u := g.user
	g.user++
	listens := ds.n / ds.users
	if u < ds.n%ds.users {
		listens++
	}
	if listens == 0 {
		return
	}
	user := "user-" + strconv.Itoa(u)
	g.key = user
	ds.want.userDays.partitions++
	nd := min(ds.days, listens)
	offs := map[int]bool{}
	for len(offs) < nd {
		offs[1+g.r.IntN(span)] = true
	}
	var days []time.Time
	today := g.now.Truncate(24 * time.Hour)
	for off := range offs {
		days = append(days, today.AddDate(0, 0, -off))
	}
	slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
	var states []*period
	for j, day := range days {
		k := listens / nd
		if j < listens%nd {
			k++
		}
		secs := map[int]bool{}
		for len(secs) < k {
			secs[g.r.IntN(86400)] = true
		}
		sorted := make([]int, 0, k)
		for s := range secs {
			sorted = append(sorted, s)
		}
		slices.Sort(sorted)
		d := &aggregator.Day{}
		grp := rawGroup{user: user}
		ids := map[listen.Identity]bool{}
		for _, s := range sorted {
			b := g.respell(g.names.Listen(user, day.Add(time.Duration(s)*time.Second)))
			l, err := listen.Parse(b, g.now)
			if err != nil { // the generator makes valid listens only
				panic(fmt.Sprintf("generated an invalid listen %s: %v", b, err))
			}
			g.queue = append(g.queue, b)
			id := l.Identity()
			if !ids[id] {
				ids[id] = true
				grp.rows = append(grp.rows, rawRow{day: day, at: l.PlayedAt.UTC(), id: id,
					artist: l.ArtistName, track: l.TrackName, album: l.AlbumName})
				ds.want.raw.add(g.h.raw(user, day, l.PlayedAt, id[:], l.ArtistName, l.TrackName, l.AlbumName))
			}
			if int(d.Total) < aggregator.DefaultMaxPlaysPerDay {
				d.Add(aggregator.PlayOf(l))
			}
		}
		p := aggregator.KeyPartition(listen.DayKey(user, day), int32(ds.partitions))
		ds.listens += len(grp.rows)
		ds.want.raw.partitions++
		ds.raw[p] = append(ds.raw[p], grp)
		st := &period{user: user, day: day, total: int64(d.Total)}
		for _, e := range []topk.Entity{topk.Artists, topk.Albums, topk.Tracks} { // the flusher's write order
			items := d.Items(e)
			for i := range items {
				r := row{Entity: e, Item: items[i].Topk(day)}
				st.rows = append(st.rows, r)
				ds.want.dayItems.add(g.h.itemOf(user, unixDay(day), &r))
			}
		}
		ds.want.dayItems.partitions++
		ds.want.userDays.add(g.h.userDay(user, day, st.total))
		ds.counted += st.total
		ds.userDays++
		ds.dayP[p] = append(ds.dayP[p], st)
		states = append(states, st)
	}
	// Rollups: months from days, years from months, oldest first, summed
	// as the flusher sums them.
	months := g.rollups(states, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }, func(p *period) time.Time { return p.day })
	years := g.rollups(months, func(t time.Time) int { return t.Year() }, func(p *period) time.Time {
		return time.Date(p.part/100, time.Month(p.part%100), 1, 0, 0, 0, 0, time.UTC)
	})
	for _, m := range months {
		for i := range m.rows {
			ds.want.months.add(g.h.itemOf(user, int64(m.part), &m.rows[i]))
		}
		ds.want.months.partitions++
	}
	for _, y := range years {
		for i := range y.rows {
			ds.want.years.add(g.h.itemOf(user, int64(y.part), &y.rows[i]))
		}
		ds.want.years.partitions++
	}
	ds.months = append(ds.months, months...)
	ds.years = append(ds.years, years...)
}

// Alternative spellings respell gives: the same names in other case, so
// the same items (keys and listen identities are of the folded names).
var (
	artistAs = [2]string{`"artist_name":"Artist `, `"artist_name":"ARTIST `}
	trackAs  = [2]string{`"track_name":"Track `, `"track_name":"track `}
)

// respell spells a listen's artist in capitals one time in four and its
// track in lower case one time in eight, so that items have several
// spellings in the day rows and the rollups, and the check covers their
// sums and majorities.
func (g *generator) respell(b []byte) []byte {
	if g.spell.IntN(4) == 0 {
		b = bytes.Replace(b, []byte(artistAs[0]), []byte(artistAs[1]), 1)
	}
	if g.spell.IntN(8) == 0 {
		b = bytes.Replace(b, []byte(trackAs[0]), []byte(trackAs[1]), 1)
	}
	return b
}

// rollups sums periods (oldest first) into the periods partOf maps them
// to, as processors/flusher/rollup.go does: each item's rows merged with
// topk.Item.Merge in period order (plays and spellings add up; name and
// first are the majority spelling's; the artist is the first period's
// having one).
func (g *generator) rollups(in []*period, partOf func(time.Time) int, start func(*period) time.Time) []*period {
	var out []*period
	type key struct {
		e   topk.Entity
		key uint64
	}
	var idx map[key]int
	for _, p := range in {
		part := partOf(start(p))
		if len(out) == 0 || out[len(out)-1].part != part {
			out = append(out, &period{user: p.user, part: part})
			idx = map[key]int{}
		}
		o := out[len(out)-1]
		for j := range p.rows {
			r := &p.rows[j]
			k := key{r.Entity, r.Key}
			i, ok := idx[k]
			if !ok {
				i = len(o.rows)
				idx[k] = i
				o.rows = append(o.rows, row{Entity: r.Entity})
			}
			o.rows[i].Merge(&r.Item)
		}
	}
	for _, o := range out { // write order: artists, albums, tracks
		slices.SortStableFunc(o.rows, func(a, b row) int { return entityRank(a.Entity) - entityRank(b.Entity) })
		for _, r := range o.rows {
			if r.Entity == topk.Tracks {
				o.total += r.Plays
			}
		}
	}
	return out
}

func entityRank(e topk.Entity) int {
	switch e {
	case topk.Artists:
		return 0
	case topk.Albums:
		return 1
	}
	return 2
}
