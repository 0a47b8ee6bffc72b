// Rankings: the Cassandra part of a range (older), the view part merged
// with it (ranking), paging and listeners.

package sitewide

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/topk-charts/topk"
	swview "github.com/topk-charts/topk/views/sitewide"
)

// older is the Cassandra part of a range: its items in chart order, with
// an index by key. Shared by the requests of its cache entry: read only.
type older struct {
	items []StoreItem
	index map[uint64]int32
}

func compareStore(a, b StoreItem) int { return topk.Compare(&a.Item, &b.Item) }

// newOlder sorts items (its own) into an older part.
func newOlder(items []StoreItem) *older {
	// A store may return an item more than once (its rows are per day
	// and bucket): sum those first.
	at := make(map[uint64]int, len(items))
	out := items[:0]
	for _, it := range items {
		if it.Plays <= 0 {
			continue
		}
		if i, ok := at[it.Key]; ok {
			o := &out[i]
			o.Item.Merge(&it.Item)
			o.Listeners += it.Listeners
			continue
		}
		at[it.Key] = len(out)
		out = append(out, it)
	}
	slices.SortFunc(out, compareStore)
	o := &older{items: out, index: make(map[uint64]int32, len(out))}
	for i := range out {
		o.index[out[i].Key] = int32(i)
	}
	return o
}

// size estimates an older part's memory, for the cache's bound.
func (o *older) size() int64 {
	n := int64(64 + 120*len(o.items))
	for i := range o.items {
		it := &o.items[i]
		n += int64(len(it.Name) + len(it.Artist) + 48*len(it.Spellings))
	}
	return n
}

// ranked is one item of a ranking.
type ranked struct {
	topk.Item
	// older is the item's listeners in the Cassandra part (a sum over
	// days); inView whether the view part has it.
	older  int64
	inView bool
}

// ranking is a range's items in chart order: the view part's items
// (merged with the older part's plays and spellings) sorted, and the
// older part's other items read in its own order, skipping those; the
// two are merged while paging. asOf is when the older part was read.
type ranking struct {
	older  *older // nil: no Cassandra part
	recent []ranked
	inView map[uint64]int32
	total  int
	// asOf is when the older part was read; made when the view part was
	// summed.
	asOf, made time.Time

	// The view's exact listeners of the items paged so far, over the
	// range's view days.
	mu       sync.Mutex
	listened map[uint64]int64
}

// ranking is the range's ranking: the older part through its cache, the
// view part (when the plan has one) ranked through the rankings cache.
func (s *Service) ranking(ctx context.Context, e topk.Entity, p *plan) (*ranking, error) {
	var o *older
	var asOf time.Time
	if p.cass {
		var err error
		key := fmt.Sprintf("%s|%s|%s", e, day(p.cassFrom), day(p.cassTo))
		o, asOf, err = s.older.get(ctx, key, func(ctx context.Context) (*older, int64, error) {
			var read func(context.Context) func()
			if b := s.cfg.Bounds; b != nil {
				release, err := b.Fill(ctx)
				if err != nil {
					return nil, 0, err
				}
				defer release()
				read = b.Read
			}
			items, err := s.cfg.Store.SitewideRange(ctx, e, p.cassFrom, p.cassTo, read)
			if err != nil {
				return nil, 0, err
			}
			o := newOlder(items)
			return o, o.size(), nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !p.view {
		return &ranking{older: o, total: len(o.items), asOf: asOf}, nil
	}
	// The ranking's key holds the older part's read time: a new read
	// makes a new ranking.
	key := fmt.Sprintf("%s|%s|%s|%d", e, day(p.viewFrom), day(p.viewTo), asOf.UnixNano())
	if p.cass {
		key += "|" + day(p.cassFrom)
	}
	fill := func(context.Context) (*ranking, int64, error) {
		made := s.cfg.Now().UTC()
		r := rank(s.cfg.View.Range(e, p.viewFrom, p.viewTo), o)
		r.asOf, r.made = asOf, made
		return r, int64(64 + 120*len(r.recent)), nil
	}
	if p.cass && s.cfg.CacheTTL == 0 {
		// Every request reads Cassandra anew: its ranking is its own.
		r, _, err := fill(ctx)
		return r, err
	}
	r, _, err := s.rankings.get(ctx, key, fill)
	return r, err
}

// rank merges the view part's tallies with the older part (nil: none)
// and sorts them.
func rank(tallies []swview.Tally, o *older) *ranking {
	r := &ranking{older: o, recent: make([]ranked, 0, len(tallies)), inView: make(map[uint64]int32, len(tallies))}
	if o != nil {
		r.total = len(o.items)
	}
	for i := range tallies {
		t := &tallies[i]
		if t.Plays <= 0 {
			continue
		}
		r.total++
		it := ranked{Item: topk.Item{Key: t.Item, Name: t.Name, Artist: t.Artist, Plays: t.Plays}, inView: true}
		if o != nil {
			if j, ok := o.index[t.Item]; ok {
				ot := &o.items[j]
				it.Plays += ot.Plays
				it.older = ot.Listeners
				s := majority(t, &ot.Item)
				it.Name, it.Artist = s.Name, s.Artist
				r.total--
			}
		}
		r.recent = append(r.recent, it)
	}
	slices.SortFunc(r.recent, func(a, b ranked) int { return topk.Compare(&a.Item, &b.Item) })
	for i := range r.recent {
		r.inView[r.recent[i].Key] = int32(i)
	}
	r.listened = map[uint64]int64{}
	return r
}

// majority is the display spelling of an item over the whole range: its
// view spellings and its Cassandra spellings (names with the item's
// artist) summed, the most plays winning, ties the smaller name then
// artist.
func majority(t *swview.Tally, o *topk.Item) swview.Spelling {
	sp := slices.Clone(t.Spellings)
	if sp == nil {
		sp = []swview.Spelling{{Name: t.Name, Artist: t.Artist, Plays: t.Plays}}
	}
	for _, s := range o.AllSpellings() {
		add := swview.Spelling{Name: s.Name, Artist: o.Artist, Plays: s.Plays}
		if i := slices.IndexFunc(sp, func(x swview.Spelling) bool { return x.Name == add.Name && x.Artist == add.Artist }); i >= 0 {
			sp[i].Plays += add.Plays
		} else {
			sp = append(sp, add)
		}
	}
	best := sp[0]
	for _, s := range sp[1:] {
		if s.Plays > best.Plays || s.Plays == best.Plays && (s.Name < best.Name || s.Name == best.Name && strings.Compare(s.Artist, best.Artist) < 0) {
			best = s
		}
	}
	return best
}

// page returns the items at [offset, offset+k) in chart order. It walks
// the older part's items the view part does not hold and the view part's
// items together, so it costs offset+k steps, never a sort.
func (r *ranking) page(offset, k int) []ranked {
	if r.older == nil || len(r.recent) == 0 {
		var out []ranked
		if r.older == nil {
			out = window(r.recent, offset, k)
		} else {
			for _, it := range window(r.older.items, offset, k) {
				out = append(out, ranked{Item: it.Item, older: it.Listeners})
			}
		}
		return out
	}
	var out []ranked
	items := r.older.items
	i, j := 0, 0
	for len(out) < k {
		for i < len(items) {
			if _, ok := r.inView[items[i].Key]; !ok {
				break
			}
			i++
		}
		var next ranked
		switch {
		case i < len(items) && (j >= len(r.recent) || topk.Compare(&items[i].Item, &r.recent[j].Item) < 0):
			next = ranked{Item: items[i].Item, older: items[i].Listeners}
			i++
		case j < len(r.recent):
			next = r.recent[j]
			j++
		default:
			return out
		}
		if offset > 0 {
			offset--
			continue
		}
		out = append(out, next)
	}
	return out
}

func window[T any](s []T, offset, k int) []T {
	if offset >= len(s) {
		return nil
	}
	return s[offset:min(offset+k, len(s))]
}

// listeners is each page item's listeners: the view's exact distinct
// listeners over the range's view days (asked of the view once per item
// and ranking) plus the older part's sum.
func (r *ranking) listeners(v View, e topk.Entity, p *plan, page []ranked) []int64 {
	out := make([]int64, len(page))
	var missing []uint64
	r.mu.Lock()
	for i := range page {
		out[i] = page[i].older
		if page[i].inView {
			if _, ok := r.listened[page[i].Key]; !ok {
				missing = append(missing, page[i].Key)
			}
		}
	}
	r.mu.Unlock()
	if len(missing) > 0 && v != nil {
		got := v.Listeners(e, missing, p.viewFrom, p.viewTo)
		r.mu.Lock()
		for i, item := range missing {
			r.listened[item] = got[i]
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range page {
		if page[i].inView {
			out[i] += r.listened[page[i].Key]
		}
	}
	return out
}
