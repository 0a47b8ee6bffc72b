// The reads: Range (an entity's items over a range, summed), Listeners
// (the exact distinct listeners of a few items over a range) and Prune.

package sitewide

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/topk-charts/topk"
)

// Tally is one item of an entity over a range of the view's days.
type Tally struct {
	Item uint64
	// Name and Artist are the display spelling over the range: the most
	// plays, ties the smaller name, then the smaller artist. Artist is
	// empty for artists.
	Name, Artist string
	// Plays is the item's plays over the range (every key, every day).
	Plays int64
	// DayListeners is the sum over the range's days of each day's
	// distinct listeners: the exact distinct listeners of a one-day
	// range, an upper bound otherwise (Listeners counts them exactly).
	DayListeners int64
	// Spellings is every spelling with its plays, by name and artist,
	// when there is more than one; nil when Name and Artist are the only
	// one. Shared: do not modify.
	Spellings []Spelling
}

// span is the days of [from, to] the view holds, from no earlier than
// FirstDay, as day numbers; ok false when none.
func (v *View) span(from, to time.Time) (lo, hi int32, ok bool) {
	if first := v.FirstDay(v.cfg.Now()); from.Before(first) {
		from = first
	}
	lo, hi = dayNumber(midnight(from)), dayNumber(midnight(to))
	return lo, hi, lo <= hi
}

// Range returns every item of entity e with plays in the view's days of
// [from, to] (days before FirstDay are not asked for: the view does not
// have them), in no particular order: plays and spellings summed over
// the item's keys and days. It never decodes and looks nothing up per
// item-day: each item-day's sums are kept as records arrive, and each
// item's days are a short sorted list, walked from the newest. The
// caller checks Recovered.
func (v *View) Range(e topk.Entity, from, to time.Time) []Tally {
	lo, hi, ok := v.span(from, to)
	if !ok {
		return nil
	}
	v.imu.RLock()
	defer v.imu.RUnlock()
	ei := v.ix.ents[e]
	if ei == nil {
		return nil
	}
	out := make([]Tally, 0, len(ei.list))
	for _, r := range ei.list {
		var t Tally
		owned := false // t.Spellings is t's own (merged here), not an item-day's
		for _, c := range r.inRange(lo, hi) {
			d := c.d
			if d.plays <= 0 {
				continue
			}
			if t.Plays == 0 {
				t = Tally{Item: r.item, Name: d.shown.Name, Artist: d.shown.Artist, Plays: d.plays, DayListeners: d.listeners}
				if len(d.spellings) > 1 {
					t.Spellings = d.spellings
				}
				continue
			}
			if t.Spellings == nil && len(d.spellings) == 1 && d.shown.Name == t.Name && d.shown.Artist == t.Artist {
				t.Plays += d.plays
				t.DayListeners += d.listeners
				continue
			}
			if !owned {
				sp := t.Spellings
				if sp == nil {
					sp = []Spelling{{Name: t.Name, Artist: t.Artist, Plays: t.Plays}}
				}
				t.Spellings, owned = slices.Clone(sp), true
			}
			t.Spellings = addSpellings(t.Spellings, d.spellings)
			t.Plays += d.plays
			t.DayListeners += d.listeners
		}
		if t.Plays == 0 {
			continue
		}
		if owned {
			s := display(t.Spellings)
			t.Name, t.Artist = s.Name, s.Artist
		}
		out = append(out, t)
	}
	return out
}

// Listeners returns, for each item of entity e, its distinct listeners
// over the view's days of [from, to] (from no earlier than FirstDay),
// exactly: the union of its keys' listener sets over the days (a user
// is in one key of an item-day, but may listen on several days). It
// costs the item's listener entries over the range, so ask it for a page
// of items, not a whole chart. The caller checks Recovered.
func (v *View) Listeners(e topk.Entity, items []uint64, from, to time.Time) []int64 {
	out := make([]int64, len(items))
	lo, hi, ok := v.span(from, to)
	if !ok {
		return out
	}
	v.imu.RLock()
	defer v.imu.RUnlock()
	ei := v.ix.ents[e]
	if ei == nil {
		return out
	}
	var set *bitset
	defer func() {
		if set != nil {
			bitsets.Put(set)
		}
	}()
	for i, item := range items {
		r := ei.rows[item]
		if r == nil {
			continue
		}
		cells := r.inRange(lo, hi)
		if len(cells) == 1 { // one day: its keys hold disjoint users
			out[i] = cells[0].d.listeners
			continue
		}
		if len(cells) == 0 {
			continue
		}
		if set == nil {
			set = bitsets.Get().(*bitset)
			set.size(len(v.ix.users.names))
		}
		var n int64
		for _, c := range cells {
			for _, h := range c.d.keys {
				for _, u := range h.ids {
					if set.add(u) {
						n++
					}
				}
			}
		}
		out[i] = n
		for _, c := range cells {
			for _, h := range c.d.keys {
				for _, u := range h.ids {
					set.remove(u)
				}
			}
		}
	}
	return out
}

// bitset is a set of user ids; it is empty between uses.
type bitset struct{ w []uint64 }

var bitsets = sync.Pool{New: func() any { return new(bitset) }}

// size makes room for ids below n.
func (b *bitset) size(n int) {
	if words := (n + 63) / 64; len(b.w) < words {
		b.w = append(b.w, make([]uint64, words-len(b.w))...)
	}
}

// add sets id and reports whether it was not set.
func (b *bitset) add(id uint32) bool {
	w, m := id/64, uint64(1)<<(id%64)
	if b.w[w]&m != 0 {
		return false
	}
	b.w[w] |= m
	return true
}

func (b *bitset) remove(id uint32) { b.w[id/64] &^= uint64(1) << (id % 64) }

// count is the number of ids set (tests).
func (b *bitset) count() int {
	n := 0
	for _, w := range b.w {
		n += bits.OnesCount64(w)
	}
	return n
}

// Prune drops the keys of the days before FirstDay(now), from the index
// and the stores, and returns how many the index held.
func (v *View) Prune(now time.Time) int {
	first := v.FirstDay(now)
	v.imu.Lock()
	n := v.ix.pruneBefore(dayNumber(first))
	v.imu.Unlock()
	cutoff := first.Format(topk.DayLayout)
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.stores {
		st.Prune(cutoff, keyDate)
	}
	return n
}

// keyDate is the date of a sitewide key (entity|16 hex|YYYY-MM-DD|bucket)
// without parsing it whole.
func keyDate(k string) (string, bool) {
	i := strings.IndexByte(k, '|')
	if i < 0 || len(k) < i+1+17+len(topk.DayLayout) {
		return "", false
	}
	return k[i+18 : i+18+len(topk.DayLayout)], true
}
