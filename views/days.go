// The days the view holds: Day, the update callback that decodes them
// into the index, the memory bound (account, cut), and the reads (Get,
// Range, Lag) and Prune.

package views

import (
	"context"
	"sort"
	"time"
	"unsafe"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// Day is one user-day of the view.
type Day struct {
	Date  time.Time // midnight UTC
	Plays int64
	// Tracks, Artists, Albums are in no particular order.
	Tracks, Artists, Albums []topk.Item
}

// Items returns the items of an entity.
func (d *Day) Items(e topk.Entity) []topk.Item {
	switch e {
	case topk.Tracks:
		return d.Tracks
	case topk.Artists:
		return d.Artists
	case topk.Albums:
		return d.Albums
	}
	return nil
}

// update is the view's callback: it keeps the user-days of the window,
// without their seen sets (the view needs counts and names, not the
// dedup state), and skips or drops the others.
func (v *View) update(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	_, day, ok := listen.SplitKey(key)
	if !ok {
		v.skipped.WithLabelValues("bad_key").Inc()
		return nil
	}
	if first := v.FirstDay(v.cfg.Now()); day.Before(first) {
		reason := "old"
		if m := v.memFirst.Load(); m != nil && first.Format(listen.DayLayout) == *m {
			reason = "memory"
		}
		v.skipped.WithLabelValues(reason).Inc()
		return s.Delete(key) // it may have been kept while it was recent
	}
	if value == nil {
		return s.Delete(key)
	}
	d, err := aggregator.DecodeDay(value)
	if err != nil {
		// The aggregator wrote it, so this is a bug or a foreign record:
		// count it and go on rather than stop the view.
		v.skipped.WithLabelValues("undecodable").Inc()
		v.log.Warn("undecodable table record", "key", key, "err", err)
		return nil
	}
	v.updates.Inc()
	// Decoded once, into the index; the store keeps only the key (its
	// Get encodes the day again, for Goka's monitor and tests).
	v.put(key, toDay(day, d), int64(len(value)))
	return s.Set(key, nil)
}

// toDay keeps what the view serves of an aggregator day: counts and
// names, not the seen set.
func toDay(date time.Time, d *aggregator.Day) *Day {
	out := &Day{Date: date, Plays: int64(d.Total)}
	conv := func(items []aggregator.Item) []topk.Item {
		if len(items) == 0 {
			return nil
		}
		r := make([]topk.Item, 0, len(items))
		for i := range items {
			if items[i].Plays > 0 { // a deleted listen's item may have none left
				r = append(r, items[i].Topk(date))
			}
		}
		return r
	}
	out.Tracks = conv(d.Items(topk.Tracks))
	out.Artists = conv(d.Artists)
	out.Albums = conv(d.Albums)
	return out
}

// encoded renders a held day as the store's value: the aggregator's
// encoding without the seen set (nil when the day is not held).
func (v *View) encoded(key string) []byte {
	v.dmu.RLock()
	d := v.days[key]
	v.dmu.RUnlock()
	if d == nil {
		return nil
	}
	back := func(items []topk.Item) []aggregator.Item {
		r := make([]aggregator.Item, len(items))
		for i := range items {
			r[i] = aggregator.ItemOf(&items[i], d.Date)
		}
		return r
	}
	lean := &aggregator.Day{Total: uint32(d.Plays), Version: uint32(d.Plays), Artists: back(d.Artists), Tracks: back(d.Tracks), Albums: back(d.Albums)}
	return lean.Encode()
}

// set decodes a value written to a store by other code than the update
// callback (tests) into the index.
func (v *View) set(key string, value []byte) {
	_, date, ok := listen.SplitKey(key)
	d, err := aggregator.DecodeDay(value)
	if !ok || err != nil {
		v.delete(key)
		return
	}
	v.put(key, toDay(date, d), int64(len(value)))
}

// put holds a decoded day; encodedLen is the size of the record it came
// from (its names are substrings of it).
func (v *View) put(key string, d *Day, encodedLen int64) {
	size := dayBytes(key, d) + encodedLen
	v.dmu.Lock()
	v.days[key] = d
	v.account(key, size)
	over := v.bytes > v.cfg.MaxBytes
	v.dmu.Unlock()
	if over {
		v.cut()
	}
}

func (v *View) delete(key string) {
	v.dmu.Lock()
	delete(v.days, key)
	v.account(key, 0)
	v.dmu.Unlock()
}

// account sets key's estimated size (0: gone); v.dmu is held.
func (v *View) account(key string, size int64) {
	old := v.sizes[key]
	if size == old {
		return
	}
	date := key[len(key)-len(listen.DayLayout):] // held keys passed listen.SplitKey
	if size == 0 {
		delete(v.sizes, key)
	} else {
		v.sizes[key] = size
	}
	v.bytes += size - old
	if v.byDate[date] += size - old; v.byDate[date] <= 0 {
		delete(v.byDate, date)
	}
}

// dayBytes estimates the memory of a held user-day: the map entries, the
// Day, its item slices, their spellings and their strings.
func dayBytes(key string, d *Day) int64 {
	const entry, day = 96, 112
	const item, spelling = int64(unsafe.Sizeof(topk.Item{})), int64(unsafe.Sizeof(topk.Spelling{}))
	n := int64(entry + 2*len(key) + day)
	for _, items := range [][]topk.Item{d.Tracks, d.Artists, d.Albums} {
		for _, it := range items {
			n += item + int64(len(it.Name)+len(it.Artist))
			for _, s := range it.Spellings {
				n += spelling + int64(len(s.Name))
			}
		}
	}
	return n
}

// cut moves memFirst up to the oldest date from which the newest dates fit
// in 90% of MaxBytes (today and later always stay), and asks the
// maintenance loop to prune. The update callback skips the days before it
// meanwhile.
func (v *View) cut() {
	today := v.cfg.Now().UTC().Format(listen.DayLayout)
	v.dmu.RLock()
	dates := make([]string, 0, len(v.byDate))
	for d := range v.byDate {
		dates = append(dates, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dates)))
	budget, sum, first := v.cfg.MaxBytes*9/10, int64(0), today
	for _, d := range dates {
		sum += v.byDate[d]
		if d < today && sum > budget {
			break
		}
		if d < first {
			first = d
		}
	}
	v.dmu.RUnlock()
	if cur := v.memFirst.Load(); cur != nil && *cur >= first {
		return
	}
	v.memFirst.Store(&first)
	v.log.Warn("view over its memory bound: older days of the window now come from Cassandra",
		"max_bytes", v.cfg.MaxBytes, "first_day", first)
	select {
	case v.shrink <- struct{}{}:
	default:
	}
}

// Get returns the user's day (nil when the view holds none). The day is
// shared: do not modify it. The caller checks Recovered.
func (v *View) Get(user string, day time.Time) *Day {
	key := listen.DayKey(user, day)
	v.dmu.RLock()
	d := v.days[key]
	v.dmu.RUnlock()
	return d
}

// Range returns the user's days in [from, to] that the view holds with
// plays (a day whose listens were all deleted has none), oldest first; days before FirstDay are not asked for (the view does not have
// them). The days' items are shared: do not modify them. The caller checks
// Recovered.
func (v *View) Range(user string, from, to time.Time) ([]Day, error) {
	if first := v.FirstDay(v.cfg.Now()); from.Before(first) {
		from = first
	}
	var out []Day
	key := make([]byte, 0, len(user)+1+len(listen.DayLayout))
	key = append(append(key, user...), '|')
	n := len(key)
	v.dmu.RLock()
	defer v.dmu.RUnlock()
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		key = d.AppendFormat(key[:n], listen.DayLayout)
		if day := v.days[string(key)]; day != nil && day.Plays > 0 {
			out = append(out, *day)
		}
	}
	return out, nil
}

// Lag is the number of table records the view has not applied, summed
// over partitions, from Goka's partition stats. Goka reads the partitions'
// high-water marks once a minute, so records that arrive and wait show up
// to a minute late.
func (v *View) Lag(ctx context.Context) int64 {
	gv := v.Goka()
	if gv == nil {
		return 0
	}
	return recordsBehind(gv.Stats(ctx))
}

// recordsBehind sums the partitions' lags. Goka's OffsetLag is the
// high-water mark (the next offset to be written) minus the offset of the
// last record applied, so a partition that is caught up reads 1, not 0;
// one whose high-water mark is older than its last record reads less.
func recordsBehind(st *goka.ViewStats) int64 {
	var lag int64
	for _, p := range st.Partitions {
		if p != nil && p.Input != nil && p.Input.OffsetLag > 1 {
			lag += p.Input.OffsetLag - 1
		}
	}
	return lag
}

// Prune drops the days before FirstDay(now) and returns how many.
func (v *View) Prune(now time.Time) int {
	cutoff := v.FirstDay(now).Format(listen.DayLayout)
	n := 0
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.stores {
		n += st.Prune(cutoff, userDay)
	}
	return n
}

// size is the number of user-days held.
func (v *View) size() int {
	v.dmu.RLock()
	defer v.dmu.RUnlock()
	return len(v.days)
}
