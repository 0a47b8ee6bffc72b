// The index of the records the view holds: decoded once, as they arrive,
// into per (entity, day) → item sums and per key listener ids, with the
// memory they take (account, cut).

package sitewide

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/sitewide"
)

// Spelling is one (name, artist) spelling of an item with the plays that
// used it.
type Spelling struct {
	Name, Artist string
	Plays        int64
}

// cmpSpelling orders spellings by name, then artist.
func cmpSpelling(a, b Spelling) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Artist, b.Artist)
}

// better reports whether a wins over b as the display spelling: more
// plays, then the smaller name, then the smaller artist (the group's
// Value.Display rule).
func better(a, b Spelling) bool {
	if a.Plays != b.Plays {
		return a.Plays > b.Plays
	}
	return cmpSpelling(a, b) < 0
}

// display is the best of sp (the zero Spelling when sp is empty).
func display(sp []Spelling) Spelling {
	var best Spelling
	for i, s := range sp {
		if i == 0 || better(s, best) {
			best = s
		}
	}
	return best
}

// held is one key of the view, as the index keeps it.
type held struct {
	key    string
	entity topk.Entity
	day    int32 // days since 1970-01-01
	item   uint64
	bucket uint32
	// ids are the key's listeners with plays, as user table ids.
	ids   []uint32
	plays int64
	// spellings are the key's spellings with plays, by name and artist.
	spellings []Spelling
	size      int64
}

// itemDay is an item's day: its keys (buckets and their children) and
// their sums. A user is in one key of an item-day, so listeners (the sum
// of the keys' ids) is the item-day's distinct listeners. Every field is
// replaced, never changed in place, so readers may keep the slices.
type itemDay struct {
	keys      []*held
	plays     int64
	listeners int64
	// spellings are the keys' spellings summed, by name and artist;
	// shown is the display one of them.
	spellings []Spelling
	shown     Spelling
}

// itemDayBytes estimates an itemDay and its map entry.
const itemDayBytes = 160

// recompute sums the keys.
func (d *itemDay) recompute() {
	d.plays, d.listeners = 0, 0
	var sp []Spelling
	for _, h := range d.keys {
		d.plays += h.plays
		d.listeners += int64(len(h.ids))
		sp = addSpellings(sp, h.spellings)
	}
	d.spellings, d.shown = sp, display(sp)
}

// addSpellings adds the plays of add's spellings to sp (by name and
// artist, kept in that order) and returns it; sp is changed in place,
// add never.
func addSpellings(sp, add []Spelling) []Spelling {
	for _, s := range add {
		i, ok := slices.BinarySearchFunc(sp, s, cmpSpelling)
		if ok {
			sp[i].Plays += s.Plays
		} else {
			sp = slices.Insert(sp, i, s)
		}
	}
	return sp
}

// index is what the view holds, decoded. The view's imu guards it.
type index struct {
	keys  map[string]*held
	ents  map[topk.Entity]*entityIndex
	users userTable
	// bytes is the estimated memory of the keys and item-days, byDay its
	// sums per day; the item rows' is rowBytes, the user table's
	// users.bytes (total sums them).
	bytes    int64
	byDay    map[int32]int64
	rowBytes int64
}

// total is the estimated memory of the index.
func (ix *index) total() int64 { return ix.bytes + ix.rowBytes + ix.users.bytes }

// entityIndex is an entity's items, each with its days: a range is a
// walk over a dense list, with no map lookup per item-day.
type entityIndex struct {
	rows map[uint64]*itemRow
	list []*itemRow
}

// itemRow is one item's days, oldest first.
type itemRow struct {
	item  uint64
	at    int // in entityIndex.list
	cells []cell
}

type cell struct {
	day int32
	d   *itemDay
}

// rowSize estimates an itemRow with its map entry and list slot.
const rowSize = 128

// find is the cell of day, or where it would go.
func (r *itemRow) find(day int32) (int, bool) {
	return slices.BinarySearchFunc(r.cells, day, func(c cell, d int32) int { return cmp.Compare(c.day, d) })
}

// inRange returns the cells of [lo, hi].
func (r *itemRow) inRange(lo, hi int32) []cell {
	cs := r.cells
	j := len(cs)
	for j > 0 && cs[j-1].day > hi { // ranges mostly end at the newest day
		j--
	}
	i := j
	for i > 0 && cs[i-1].day >= lo {
		i--
	}
	return cs[i:j]
}

func newIndex() index {
	return index{keys: map[string]*held{}, ents: map[topk.Entity]*entityIndex{},
		byDay: map[int32]int64{}, users: userTable{ids: map[string]uint32{}}}
}

// dayNumber is a midnight's days since 1970-01-01.
func dayNumber(t time.Time) int32 { return int32(t.Unix() / 86400) }

// dayTime is a day number's midnight UTC.
func dayTime(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// decoded is a record as the index keeps it, before it takes its users'
// ids (which needs the index's lock).
type decoded struct {
	h     *held
	users []string
}

// decode turns a key and its value into what the index keeps: the
// listeners with plays, the spellings' plays (names copied, so nothing
// keeps the record's bytes alive), the size.
func decode(key string, k sitewide.Key, val *sitewide.Value, encodedLen int) decoded {
	h := &held{key: key, entity: k.Entity, day: dayNumber(k.Day), item: k.Item, bucket: k.Bucket}
	plays := make([]int64, len(val.Spellings))
	users := make([]string, 0, len(val.Listeners))
	for i := range val.Listeners {
		l := &val.Listeners[i]
		if l.Plays == 0 {
			continue
		}
		users = append(users, l.User)
		h.plays += int64(l.Plays)
		if int(l.Spelling) < len(plays) {
			plays[l.Spelling] += int64(l.Plays)
		}
	}
	for i, p := range plays {
		if p > 0 {
			s := val.Spellings[i]
			h.spellings = addSpellings(h.spellings, []Spelling{{Name: strings.Clone(s.Name), Artist: strings.Clone(s.Artist), Plays: p}})
		}
	}
	// The stored record, the key (in the store, the index and the item-
	// day), the held, its ids and spellings.
	const entries, heldBytes, spellingBytes = 2 * 96, 160, 48
	h.size = int64(encodedLen) + int64(entries+3*len(key)+heldBytes) + 4*int64(len(users))
	for _, s := range h.spellings {
		h.size += spellingBytes + int64(len(s.Name)+len(s.Artist))
	}
	return decoded{h: h, users: users}
}

// put holds d (replacing the key's previous value), with imu held.
func (ix *index) put(d decoded) {
	h := d.h
	h.ids = make([]uint32, len(d.users))
	for i, u := range d.users {
		h.ids[i] = ix.users.acquire(u)
	}
	old := ix.keys[h.key]
	ix.keys[h.key] = h
	if old != nil {
		ix.release(old)
	}
	ei := ix.ents[h.entity]
	if ei == nil {
		ei = &entityIndex{rows: map[uint64]*itemRow{}}
		ix.ents[h.entity] = ei
	}
	r := ei.rows[h.item]
	if r == nil {
		r = &itemRow{item: h.item, at: len(ei.list)}
		ei.rows[h.item] = r
		ei.list = append(ei.list, r)
		ix.rowBytes += rowSize
	}
	i, ok := r.find(h.day)
	next := &itemDay{}
	if !ok {
		next.keys = []*held{h}
		r.cells = slices.Insert(r.cells, i, cell{day: h.day, d: next})
		ix.account(h.day, itemDayBytes)
	} else {
		prev := r.cells[i].d
		next.keys = make([]*held, 0, len(prev.keys)+1)
		for _, o := range prev.keys {
			if o != old {
				next.keys = append(next.keys, o)
			}
		}
		next.keys = append(next.keys, h)
		r.cells[i].d = next
	}
	next.recompute()
	ix.account(h.day, h.size)
}

// remove drops a key, with imu held.
func (ix *index) remove(key string) {
	h := ix.keys[key]
	if h == nil {
		return
	}
	delete(ix.keys, key)
	ix.release(h)
	ei := ix.ents[h.entity]
	if ei == nil || ei.rows[h.item] == nil {
		return
	}
	r := ei.rows[h.item]
	i, ok := r.find(h.day)
	if !ok {
		return
	}
	prev := r.cells[i].d
	next := &itemDay{keys: make([]*held, 0, len(prev.keys))}
	for _, o := range prev.keys {
		if o != h {
			next.keys = append(next.keys, o)
		}
	}
	if len(next.keys) > 0 {
		next.recompute()
		r.cells[i].d = next
		return
	}
	r.cells = slices.Delete(r.cells, i, i+1)
	ix.account(h.day, -itemDayBytes)
	if len(r.cells) == 0 {
		ix.rowBytes -= rowSize
		ei.drop(r)
	}
}

// drop takes an empty row out of the entity's list.
func (ei *entityIndex) drop(r *itemRow) {
	last := ei.list[len(ei.list)-1]
	ei.list[r.at], last.at = last, r.at
	ei.list[len(ei.list)-1] = nil
	ei.list = ei.list[:len(ei.list)-1]
	delete(ei.rows, r.item)
}

// release gives a replaced or removed key's users and bytes back.
func (ix *index) release(h *held) {
	for _, id := range h.ids {
		ix.users.release(id)
	}
	ix.account(h.day, -h.size)
}

// pruneBefore drops every key of the days before first and returns how
// many, with imu held.
func (ix *index) pruneBefore(first int32) int {
	n := 0
	for _, ei := range ix.ents {
		for i := 0; i < len(ei.list); {
			r := ei.list[i]
			j := 0
			for j < len(r.cells) && r.cells[j].day < first {
				c := r.cells[j]
				for _, h := range c.d.keys {
					delete(ix.keys, h.key)
					ix.release(h)
					n++
				}
				ix.account(c.day, -itemDayBytes)
				j++
			}
			if j == 0 {
				i++
				continue
			}
			if j < len(r.cells) {
				r.cells = slices.Delete(r.cells, 0, j)
				i++
				continue
			}
			ix.rowBytes -= rowSize
			ei.drop(r) // the last row moves to i
		}
	}
	return n
}

func (ix *index) account(day int32, delta int64) {
	ix.bytes += delta
	if ix.byDay[day] += delta; ix.byDay[day] <= 0 {
		delete(ix.byDay, day)
	}
}

// userTable interns the listeners' user ids as small integers, counted by
// the keys that hold them: a user of many keys is one string, and the
// union of listener sets is a bitmap over ids.
type userTable struct {
	ids   map[string]uint32
	names []string
	refs  []int32
	free  []uint32
	bytes int64
}

// userBytes estimates a user's memory in the table: the map entry, the
// name's header and its reference count.
const userBytes = 64 + 16 + 4

func (u *userTable) acquire(name string) uint32 {
	if id, ok := u.ids[name]; ok {
		u.refs[id]++
		return id
	}
	name = strings.Clone(name)
	var id uint32
	if n := len(u.free); n > 0 {
		id, u.free = u.free[n-1], u.free[:n-1]
		u.names[id], u.refs[id] = name, 1
	} else {
		id = uint32(len(u.names))
		u.names, u.refs = append(u.names, name), append(u.refs, 1)
	}
	u.ids[name] = id
	u.bytes += userBytes + int64(len(name))
	return id
}

func (u *userTable) release(id uint32) {
	if u.refs[id]--; u.refs[id] > 0 {
		return
	}
	name := u.names[id]
	delete(u.ids, name)
	u.names[id] = ""
	u.free = append(u.free, id)
	u.bytes -= userBytes + int64(len(name))
}

// live is the number of users held.
func (u *userTable) live() int { return len(u.ids) }

// update is the view's callback: it keeps the keys of the window, decoded
// into the index, and skips or drops the others.
func (v *View) update(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	k, err := sitewide.ParseKey(key)
	if err != nil {
		v.skipped.WithLabelValues("bad_key").Inc()
		return nil
	}
	if first := v.FirstDay(v.cfg.Now()); k.Day.Before(first) {
		reason := "old"
		if m := v.memFirst.Load(); m != 0 && dayNumber(first) == m {
			reason = "memory"
		}
		v.skipped.WithLabelValues(reason).Inc()
		v.drop(key) // it may have been kept while it was recent
		return s.Delete(key)
	}
	if value == nil {
		v.drop(key)
		return s.Delete(key)
	}
	val, err := sitewide.DecodeValue(value)
	if err != nil {
		// The group wrote it, so this is a bug or a foreign record: count
		// it and go on rather than stop the view.
		v.skipped.WithLabelValues("undecodable").Inc()
		v.log.Warn("undecodable sitewide record", "key", key, "err", err)
		return nil
	}
	v.updates.Inc()
	v.put(decode(key, k, val, len(value)))
	return s.Set(key, value)
}

// put holds a decoded key and cuts the oldest days when over MaxBytes.
func (v *View) put(d decoded) {
	v.imu.Lock()
	v.ix.put(d)
	over := v.ix.total() > v.cfg.MaxBytes
	v.imu.Unlock()
	if over {
		v.cut()
	}
}

// drop forgets a key.
func (v *View) drop(key string) {
	v.imu.Lock()
	v.ix.remove(key)
	v.imu.Unlock()
}

// cut moves memFirst up to the oldest day from which the newest days fit
// in 90% of MaxBytes (less the user table and the item rows; today and
// later always stay),
// and asks the maintenance loop to prune. The update callback skips the
// days before it meanwhile.
func (v *View) cut() {
	today := dayNumber(midnight(v.cfg.Now()))
	v.imu.RLock()
	days := make([]int32, 0, len(v.ix.byDay))
	for d := range v.ix.byDay {
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b int32) int { return cmp.Compare(b, a) })
	budget, sum, first := v.cfg.MaxBytes*9/10-v.ix.users.bytes-v.ix.rowBytes, int64(0), today
	for _, d := range days {
		sum += v.ix.byDay[d]
		if d < today && sum > budget {
			break
		}
		first = min(first, d)
	}
	v.imu.RUnlock()
	if cur := v.memFirst.Load(); cur != 0 && cur >= first {
		return
	}
	v.memFirst.Store(first)
	v.log.Warn("sitewide view over its memory bound: older days of the window now come from Cassandra",
		"max_bytes", v.cfg.MaxBytes, "first_day", dayTime(first).Format(topk.DayLayout))
	select {
	case v.shrink <- struct{}{}:
	default:
	}
}

func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// stats is what the gauges show.
type stats struct {
	keys, users int
	bytes       int64
}

func (v *View) stats() stats {
	v.imu.RLock()
	defer v.imu.RUnlock()
	return stats{keys: len(v.ix.keys), users: v.ix.users.live(), bytes: v.ix.total()}
}
