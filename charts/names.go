package charts

import (
	"context"
	"errors"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/views"
)

// Display names. A chart shows each item under its majority spelling over
// all of the user's counted listens of it (topk.Spelling.Better: most
// plays, then the earliest first listen, then the smaller string), and a
// track's or album's artist under the artist item's: the same name in
// every row, range and page, whether the days came from the view or from
// Cassandra. Ranking uses them too (topk.Compare breaks equal plays by
// name), so a page's order does not depend on its range either.
//
// "All" is the split the range "all" reads: the Cassandra part, the days
// before the view's first (its tally is range=all's cache entry, one per
// entity), and every view day up to today. Only the items on the page,
// and those tied with its ends, are looked up: by key in the cached
// tally's index, and with one pass over the view days' items. When the
// Cassandra part cannot be read (down, busy), the answer keeps the
// range's own majority spellings and a metric counts it; its plays are
// right either way.

// allTime is the user's all-time spellings, for the names of one answer.
type allTime struct {
	s    *Service
	user string
	sp   *split
	// known is the range's own Cassandra part when it is range=all's (its
	// tally and partitions): nothing to read again.
	known        *tally
	knownPeriods []topk.Period
	knownOK      bool
}

// allTime prepares the names of an answer planned as sp.
func (s *Service) allTime(user string, sp *split) *allTime {
	return &allTime{s: s, user: user, sp: sp}
}

// reuse records the range's Cassandra part, periods and tally of entity
// e, as range=all's (a nil tally: the range had no Cassandra part).
func (a *allTime) reuse(t *tally, periods []topk.Period) {
	a.known, a.knownPeriods, a.knownOK = t, periods, true
}

// days are the view days range=all sums: the view's, up to today.
func (a *allTime) days() []views.Day {
	d := a.sp.recent
	for len(d) > 0 && d[len(d)-1].Date.After(a.sp.today) {
		d = d[:len(d)-1]
	}
	return d
}

// cassandra is the Cassandra part of the user's all-time items of each
// entity in es (nil tallies when it has no days): range=all's partitions,
// the days before the view's first up to today. A range=all answer
// (which waited for its own Cassandra part) reads them as it read its
// own; any other answer peeks them instead of waiting: a request served from the view must not wait on Cassandra for its
// names (bench-api's view-served p99 went from 9.7 ms to 203 ms when it
// did), so a part not cached yet is filled in the background and this
// answer keeps the range's names (errNamesPending).
func (a *allTime) cassandra(ctx context.Context, e topk.Entity, es ...topk.Entity) ([]*tally, error) {
	to := a.sp.today
	if !to.Before(a.sp.viewFrom) {
		to = a.sp.viewFrom.AddDate(0, 0, -1)
	}
	out := make([]*tally, 0, 1+len(es))
	pending := false
	for i, x := range append([]topk.Entity{e}, es...) {
		if a.knownOK { // a range=all answer: it waited for Cassandra anyway
			if i == 0 {
				out = append(out, a.known)
				continue
			}
			t, _, err := a.s.periodsTally(ctx, a.user, x, a.knownPeriods)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			continue
		}
		// Not a.s.userKey: the display spellings of the days before the view
		// are kept their NamesTTL through changes to older days (a change
		// of majority spelling there is rare, and a new key would answer
		// with the range's spellings until the fill ends).
		key := "alltime:" + string(x) + ":" + to.Format(time.DateOnly) + ":" + a.user
		t, ok := peek(ctx, a.s.cache, key, a.s.cfg.NamesTTL, tallyCodec, func(ctx context.Context) (*tally, error) {
			periods, _, err := a.s.canonicalPlan(ctx, a.user, Earliest, to)
			if err != nil {
				return nil, err
			}
			t, _, err := a.s.periodsTally(ctx, a.user, x, periods)
			return t, err
		})
		if !ok {
			pending = true // the other entities' fills start too
		}
		out = append(out, t)
	}
	if pending {
		return nil, errNamesPending
	}
	return out, nil
}

// errNamesPending: the all-time part of a chart's names is not cached
// yet (its fill runs in the background) or could not be read.
var errNamesPending = errors.New("all-time names not cached yet")

// name sets the Name of each of items (entity e) to its all-time majority
// spelling and, for tracks and albums, Artist to its artist's. ok false:
// the Cassandra part could not be read, items keep their names.
func (a *allTime) name(ctx context.Context, e topk.Entity, items []topk.Item) (ok bool) {
	if len(items) == 0 {
		return true
	}
	var extra []topk.Entity
	if e != topk.Artists {
		extra = append(extra, topk.Artists)
	}
	tallies, err := a.cassandra(ctx, e, extra...)
	if err != nil {
		return false
	}
	days := a.days()
	names := wanted(items, func(it *topk.Item) uint64 { return it.Key })
	sumSpellings(names, tallies[0], days, e)
	var artists map[uint64]*topk.Item
	if e != topk.Artists {
		artists = wanted(items, func(it *topk.Item) uint64 { return listen.ArtistKey(it.Artist) })
		sumSpellings(artists, tallies[1], days, topk.Artists)
	}
	for i := range items {
		it := &items[i]
		if x := names[it.Key]; x.Name != "" {
			it.Name = x.Name
		}
		if artists != nil {
			if x := artists[listen.ArtistKey(it.Artist)]; x.Name != "" {
				it.Artist = x.Name
			}
		}
	}
	return true
}

// wanted maps the key of each item (by key) to an empty sum.
func wanted(items []topk.Item, key func(*topk.Item) uint64) map[uint64]*topk.Item {
	m := make(map[uint64]*topk.Item, len(items))
	for i := range items {
		m[key(&items[i])] = &topk.Item{}
	}
	return m
}

// sumSpellings merges into each sum of sums the spellings of its key in
// t (may be nil) and in the days' items of entity e: one index lookup per
// key, one pass over the days.
func sumSpellings(sums map[uint64]*topk.Item, t *tally, days []views.Day, e topk.Entity) {
	if t != nil {
		for k, x := range sums {
			if j, ok := t.index[k]; ok {
				x.Merge(&t.items[j])
			}
		}
	}
	for d := range days {
		items := days[d].Items(e)
		for i := range items {
			if x, ok := sums[items[i].Key]; ok {
				x.Merge(&items[i])
			}
		}
	}
}
