package main

import (
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

// row is one row of day_items, month_items or year_items.
type row struct {
	entity topk.Entity
	item   int64
	name   string
	artist string
	plays  int64
}

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

func (h *hasher) item(user string, part int64, r row) uint64 {
	return h.reset().str(user).int(part).str(string(r.entity)).int(r.item).str(r.name).str(r.artist).int(r.plays).sum()
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
// tracks (benchkit.Generator). Each listen is parsed as ingest parses it
// and added to the dataset as it is produced.
type generator struct {
	ds    *dataset
	r     *rand.Rand
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
	return &generator{ds: ds, r: rand.New(rand.NewPCG(10, 6)), names: benchkit.NewGenerator(10, users),
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
			b := g.names.Listen(user, day.Add(time.Duration(s)*time.Second))
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
			for _, it := range d.Items(e) {
				r := row{entity: e, item: int64(it.Key), name: it.Name, artist: it.Artist, plays: int64(it.Plays)}
				st.rows = append(st.rows, r)
				ds.want.dayItems.add(g.h.item(user, unixDay(day), r))
			}
		}
		ds.want.dayItems.partitions++
		ds.want.userDays.add(g.h.userDay(user, day, st.total))
		ds.counted += st.total
		ds.userDays++
		ds.dayP[p] = append(ds.dayP[p], st)
		states = append(states, st)
	}
	// Rollups: months from days, years from months, oldest first (the
	// latest spelling wins, as in the flusher).
	months := g.rollups(states, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }, func(p *period) time.Time { return p.day })
	years := g.rollups(months, func(t time.Time) int { return t.Year() }, func(p *period) time.Time {
		return time.Date(p.part/100, time.Month(p.part%100), 1, 0, 0, 0, 0, time.UTC)
	})
	for _, m := range months {
		for _, r := range m.rows {
			ds.want.months.add(g.h.item(user, int64(m.part), r))
		}
		ds.want.months.partitions++
	}
	for _, y := range years {
		for _, r := range y.rows {
			ds.want.years.add(g.h.item(user, int64(y.part), r))
		}
		ds.want.years.partitions++
	}
	ds.months = append(ds.months, months...)
	ds.years = append(ds.years, years...)
}

// rollups sums periods (oldest first) into the periods partOf maps them to.
func (g *generator) rollups(in []*period, partOf func(time.Time) int, start func(*period) time.Time) []*period {
	var out []*period
	type key struct {
		e    topk.Entity
		item int64
	}
	var idx map[key]int
	for _, p := range in {
		part := partOf(start(p))
		if len(out) == 0 || out[len(out)-1].part != part {
			out = append(out, &period{user: p.user, part: part})
			idx = map[key]int{}
		}
		o := out[len(out)-1]
		for _, r := range p.rows {
			k := key{r.entity, r.item}
			i, ok := idx[k]
			if !ok {
				i = len(o.rows)
				idx[k] = i
				o.rows = append(o.rows, row{entity: r.entity, item: r.item})
			}
			o.rows[i].plays += r.plays
			o.rows[i].name, o.rows[i].artist = r.name, r.artist
		}
	}
	for _, o := range out { // write order: artists, albums, tracks
		slices.SortStableFunc(o.rows, func(a, b row) int { return entityRank(a.entity) - entityRank(b.entity) })
		for _, r := range o.rows {
			if r.entity == topk.Tracks {
				o.total += r.plays
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
