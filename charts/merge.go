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

// accumulator sums items of periods given oldest first: plays add up and
// the display spelling is the one of the latest period having the item
// (the flusher's rollups follow the same rule).
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

func (a *accumulator) add(it *topk.Item) {
	if i, ok := a.index[it.Key]; ok {
		x := &a.items[i]
		x.Plays += it.Plays
		x.Name, x.Artist = it.Name, it.Artist
		return
	}
	a.index[it.Key] = len(a.items)
	a.items = append(a.items, *it)
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
func (t *tally) size() int64 {
	n := int64(64 + 56*len(t.items))
	for i := range t.items {
		n += int64(len(t.items[i].Name) + len(t.items[i].Artist))
	}
	return n
}

// page is one page of a ranking.
type page struct {
	items []topk.Item
	total int // distinct items of the range
}

// rank merges the older part (a tally from Cassandra, or nil) with the
// recent part (an accumulator over view days, or nil; its spellings are
// newer) and returns the items at [offset, offset+k) in chart order. It
// adds the older plays into recent's items (recent is spent).
//
// It never sorts either part whole: items of the recent part take their
// older plays from the tally's index, and only the best offset+k of them
// are selected (a bounded heap) and sorted; the tally is already sorted,
// so the items it alone holds are read in order, skipping those the
// recent part holds; the two ordered streams are merged until offset+k.
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
					recent.items[i].Plays += older.items[j].Plays
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
		switch {
		case o == nil && f == nil:
			return page{items: window(out, offset), total: total}
		case f == nil || (o != nil && before(o, f)):
			out = append(out, *o)
			i++
		default:
			out = append(out, *f)
			j++
		}
	}
	return page{items: window(out, offset), total: total}
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

// Encoding of a tally for Redis (version 1): uvarint version, uvarint
// count, then the items in the item codec (topk.AppendItem: key 8 bytes
// LE, uvarint plays, uvarint length + name, uvarint length + artist), in
// chart order.
const tallyVersion = 1

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

// minItemBytes is the smallest encoded item: key, plays, two lengths.
const minItemBytes = 8 + 1 + 1 + 1

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
