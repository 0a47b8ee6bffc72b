package charts

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/topk-charts/topk"
)

func compare(a, b topk.Item) int { return topk.Compare(&a, &b) }

func before(a, b *topk.Item) bool { return topk.Compare(a, b) < 0 }

// accumulator sums items of periods, in any order: plays and spellings
// add up (topk.Item.Merge), so Name is the majority spelling of the sum.
type accumulator struct {
	index map[uint64]int
	items []topk.Item
}

func newAccumulator(hint int) *accumulator {
	return &accumulator{index: make(map[uint64]int, hint), items: make([]topk.Item, 0, hint)}
}

// Accumulators of requests are reused: a heavy user's month of view days
// has thousands of items, and allocating their map per request made the
// garbage collector the api's largest cost.
var accumulators = sync.Pool{New: func() any { return newAccumulator(256) }}

func getAccumulator() *accumulator { return accumulators.Get().(*accumulator) }

// release returns a to the pool; a must not be used afterwards.
func (a *accumulator) release() {
	if len(a.items) > 1<<16 {
		return // let an outsized one go
	}
	clear(a.index)
	clear(a.items) // drop the names
	a.items = a.items[:0]
	accumulators.Put(a)
}

// add adds it to the sum; an item with no plays (its listens all deleted:
// the stores and views leave such items out, this is a second guard) is
// not added, so it never shows in a chart.
func (a *accumulator) add(it *topk.Item) {
	if it.Plays <= 0 {
		return
	}
	if i, ok := a.index[it.Key]; ok {
		a.items[i].Merge(it)
		return
	}
	a.index[it.Key] = len(a.items)
	a.items = append(a.items, *it)
	// The sum owns its spellings: Merge changes them in place, and it's
	// may be a view day's or a cached tally's.
	a.items[len(a.items)-1].Spellings = slices.Clone(it.Spellings)
}

// tally is the items of a range, sorted in chart order, with an index by
// key: the Cassandra part of an answer, as cached.
type tally struct {
	items []topk.Item
	index map[uint64]int32
}

// tally sorts the accumulated items into a tally.
func (a *accumulator) tally() *tally {
	items := a.items
	slices.SortFunc(items, compare)
	t := &tally{items: items, index: make(map[uint64]int32, len(items))}
	for i := range items {
		t.index[items[i].Key] = int32(i)
	}
	return t
}

// size approximates a tally's memory, for the local cache's budget.
func (t *tally) size() int64 { return itemsSize(t.items) }

// itemsSize approximates the memory of items and their names.
func itemsSize(items []topk.Item) int64 {
	n := int64(64 + 96*len(items))
	for i := range items {
		it := &items[i]
		n += int64(len(it.Name) + len(it.Artist) + 48*len(it.Spellings))
		for _, sp := range it.Spellings {
			n += int64(len(sp.Name))
		}
	}
	return n
}

// page is one page of a ranking, with the items tied with its ends: the
// order of equal plays goes by name (topk.Compare), and the names shown
// are set after ranking (the user's all-time majority spellings, names.go),
// so which of the tied items fall on the page is decided only then
// (ordered).
type page struct {
	// items run from the first item with the plays of the page's first
	// through the last with the plays of its last, in plays order.
	items []topk.Item
	skip  int // items before the page's first, of items
	k     int
	total int // distinct items of the range
}

// ordered sorts the page's items in chart order by the names they hold
// now and returns the page.
func (p *page) ordered() []topk.Item {
	slices.SortFunc(p.items, compare)
	w := window(p.items, p.skip)
	return w[:min(p.k, len(w))]
}

// rank merges the older part (a tally from Cassandra, or nil) with the
// recent part (an accumulator over view days, or nil) and returns the
// page at [offset, offset+k) in plays order, with its tied items. It
// merges the older plays and spellings into recent's items (recent is
// spent).
//
// It never sorts either part whole: items of the recent part take their
// older plays from the tally's index, and only the best offset+k of them
// are selected (a bounded heap) and sorted; the tally is already sorted,
// so the items it alone holds are read in order, skipping those the
// recent part holds; the two ordered streams are merged until offset+k,
// then every item tied with the last is added (withTies).
func rank(older *tally, recent *accumulator, offset, k int) page {
	need := offset + k
	total := 0
	if older != nil {
		total = len(older.items)
	}
	var fresh []int32 // indices of recent.items, best first
	if recent != nil {
		for i := range recent.items {
			if older != nil {
				if j, ok := older.index[recent.items[i].Key]; ok {
					recent.items[i].Merge(&older.items[j])
					continue
				}
			}
			total++
		}
		fresh = best(recent.items, need)
	}
	out := make([]topk.Item, 0, min(need, total))
	i := 0 // next of older.items
	j := 0 // next of fresh
	for len(out) < need {
		var o *topk.Item
		if older != nil {
			for i < len(older.items) {
				if recent != nil {
					if _, dup := recent.index[older.items[i].Key]; dup {
						i++
						continue
					}
				}
				o = &older.items[i]
				break
			}
		}
		var f *topk.Item
		if j < len(fresh) {
			f = &recent.items[fresh[j]]
		}
		if o == nil && f == nil {
			break
		}
		if f == nil || (o != nil && before(o, f)) {
			out = append(out, *o)
			i++
		} else {
			out = append(out, *f)
			j++
		}
	}
	if len(out) == need {
		out = withTies(out, older, i, recent, fresh[:j])
	}
	return newPage(out, offset, k, total)
}

// withTies appends to out, the best items of the ranking, every other
// item with the plays of out's last: from older's items at i on (those
// before were taken or are recent's) and from recent's not taken.
func withTies(out []topk.Item, older *tally, i int, recent *accumulator, taken []int32) []topk.Item {
	p := out[len(out)-1].Plays
	if older != nil {
		for ; i < len(older.items) && older.items[i].Plays >= p; i++ {
			if recent != nil {
				if _, dup := recent.index[older.items[i].Key]; dup {
					continue
				}
			}
			if older.items[i].Plays == p {
				out = append(out, older.items[i])
			}
		}
	}
	if recent != nil {
		in := map[int32]bool{}
		for _, x := range taken {
			if recent.items[x].Plays == p {
				in[x] = true
			}
		}
		for x := range recent.items {
			if recent.items[x].Plays == p && !in[int32(x)] {
				out = append(out, recent.items[x])
			}
		}
	}
	return out
}

// newPage is the page at offset of out (the ranking's best, with the
// items tied with its last), starting at the first item tied with the
// page's first.
func newPage(out []topk.Item, offset, k, total int) page {
	if offset >= len(out) {
		return page{k: k, total: total}
	}
	start := offset
	for start > 0 && out[start-1].Plays == out[offset].Plays {
		start--
	}
	return page{items: out[start:], skip: offset - start, k: k, total: total}
}

// best returns the indices of the n best items in chart order. Beyond n
// it keeps a heap of the n best seen so far, worst on top: most items lose
// to the top on plays alone, an integer comparison.
func best(items []topk.Item, n int) []int32 {
	if n > len(items) {
		n = len(items)
	}
	h := make([]int32, 0, n)
	worse := func(a, b int32) bool { return before(&items[b], &items[a]) } // a ranks after b
	down := func(i int) {
		for {
			l, w := 2*i+1, i
			if l < len(h) && worse(h[l], h[w]) {
				w = l
			}
			if r := l + 1; r < len(h) && worse(h[r], h[w]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := range items {
		idx := int32(i)
		if len(h) < n {
			h = append(h, idx)
			for c := len(h) - 1; c > 0; { // up
				p := (c - 1) / 2
				if !worse(h[c], h[p]) {
					break
				}
				h[c], h[p] = h[p], h[c]
				c = p
			}
			continue
		}
		if n > 0 && before(&items[i], &items[h[0]]) {
			h[0] = idx
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int32) int { return topk.Compare(&items[a], &items[b]) })
	return h
}

func window(items []topk.Item, offset int) []topk.Item {
	if offset >= len(items) {
		return nil
	}
	return items[offset:]
}

// Encoding of a tally for Redis (version 2): uvarint version, uvarint
// count, then the items in the item codec (topk.AppendItem: key 8 bytes
// LE, uvarint plays, uvarint length + name, uvarint length + artist,
// varint first, the other spellings), in chart order. Version 1 had no
// first and spellings; its entries live under the older key prefix
// (service.go), never read.
const tallyVersion = 2

var tallyCodec = codec[*tally]{
	encode: (*tally).encode,
	decode: decodeTally,
	size:   (*tally).size,
}

func (t *tally) encode() []byte {
	n := 2 * binary.MaxVarintLen64
	for i := range t.items {
		n += topk.ItemSize(&t.items[i])
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, tallyVersion)
	b = binary.AppendUvarint(b, uint64(len(t.items)))
	for i := range t.items {
		b = topk.AppendItem(b, &t.items[i])
	}
	return b
}

// minItemBytes is the smallest encoded item: key, plays, two lengths,
// first, the spellings' count.
const minItemBytes = 8 + 1 + 1 + 1 + 1 + 1

func decodeTally(b []byte) (*tally, error) {
	d := topk.NewDecoder(b)
	if d.Uvarint() != tallyVersion {
		d.Fail()
	}
	count := d.Count(minItemBytes)
	if d.Err() != nil {
		return nil, errBadTally
	}
	t := &tally{items: make([]topk.Item, count), index: make(map[uint64]int32, count)}
	for k := range t.items {
		t.items[k] = d.Item()
		t.index[t.items[k].Key] = int32(k)
	}
	if !d.Done() {
		return nil, errBadTally
	}
	return t, nil
}

var errBadTally = fmt.Errorf("charts: corrupt cached tally: %w", topk.ErrCorrupt)
