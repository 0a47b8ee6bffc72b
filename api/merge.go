package api

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
)

// item is one track, artist or album of a range with its plays.
type item struct {
	key          uint64
	name, artist string
	plays        int64
}

// before is the charts' order: plays descending, then name, then artist,
// then key (so equal names of different items still have one order).
func before(a, b *item) bool { return compareP(a, b) < 0 }

func compare(a, b item) int { return compareP(&a, &b) }

func compareP(a, b *item) int {
	if a.plays != b.plays {
		return cmp.Compare(b.plays, a.plays)
	}
	if c := cmp.Compare(a.name, b.name); c != 0 {
		return c
	}
	if c := cmp.Compare(a.artist, b.artist); c != 0 {
		return c
	}
	return cmp.Compare(a.key, b.key)
}

// accumulator sums items of periods given oldest first: plays add up and
// the display spelling is the one of the latest period having the item
// (the flusher's rollups follow the same rule).
type accumulator struct {
	index map[uint64]int
	items []item
}

func newAccumulator(hint int) *accumulator {
	return &accumulator{index: make(map[uint64]int, hint), items: make([]item, 0, hint)}
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

func (a *accumulator) add(key uint64, name, artist string, plays int64) {
	if i, ok := a.index[key]; ok {
		it := &a.items[i]
		it.plays += plays
		it.name, it.artist = name, artist
		return
	}
	a.index[key] = len(a.items)
	a.items = append(a.items, item{key: key, name: name, artist: artist, plays: plays})
}

// tally is the items of a range, sorted in chart order, with an index by
// key: the Cassandra part of an answer, as cached.
type tally struct {
	items []item
	index map[uint64]int32
}

// tally sorts the accumulated items into a tally.
func (a *accumulator) tally() *tally {
	items := a.items
	slices.SortFunc(items, compare)
	t := &tally{items: items, index: make(map[uint64]int32, len(items))}
	for i := range items {
		t.index[items[i].key] = int32(i)
	}
	return t
}

// size approximates a tally's memory, for the local cache's budget.
func (t *tally) size() int64 {
	n := int64(64 + 56*len(t.items))
	for i := range t.items {
		n += int64(len(t.items[i].name) + len(t.items[i].artist))
	}
	return n
}

// page is one page of a ranking.
type page struct {
	items []item
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
				if j, ok := older.index[recent.items[i].key]; ok {
					recent.items[i].plays += older.items[j].plays
					continue
				}
			}
			total++
		}
		fresh = best(recent.items, need)
	}
	out := make([]item, 0, min(need, total))
	i := 0 // next of older.items
	j := 0 // next of fresh
	for len(out) < need {
		var o *item
		if older != nil {
			for i < len(older.items) {
				if recent != nil {
					if _, dup := recent.index[older.items[i].key]; dup {
						i++
						continue
					}
				}
				o = &older.items[i]
				break
			}
		}
		var f *item
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
func best(items []item, n int) []int32 {
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
	slices.SortFunc(h, func(a, b int32) int { return compareP(&items[a], &items[b]) })
	return h
}

func window(items []item, offset int) []item {
	if offset >= len(items) {
		return nil
	}
	return items[offset:]
}

// Encoding of a tally for Redis (version 1): uvarint version, uvarint
// count, then per item key (8 bytes LE), uvarint plays, uvarint len +
// name, uvarint len + artist. Items are in chart order.
const tallyVersion = 1

func (t *tally) encode() []byte {
	n := 16
	for i := range t.items {
		n += 20 + len(t.items[i].name) + len(t.items[i].artist)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, tallyVersion)
	b = binary.AppendUvarint(b, uint64(len(t.items)))
	for i := range t.items {
		it := &t.items[i]
		b = binary.LittleEndian.AppendUint64(b, it.key)
		b = binary.AppendUvarint(b, uint64(it.plays))
		b = binary.AppendUvarint(b, uint64(len(it.name)))
		b = append(b, it.name...)
		b = binary.AppendUvarint(b, uint64(len(it.artist)))
		b = append(b, it.artist...)
	}
	return b
}

var errBadTally = errors.New("api: corrupt cached tally")

func decodeTally(b []byte) (*tally, error) {
	s := string(b) // one allocation; names are substrings
	i := 0
	uv := func() uint64 {
		if i < 0 {
			return 0
		}
		v, n := binary.Uvarint(b[i:])
		if n <= 0 {
			i = -1
			return 0
		}
		i += n
		return v
	}
	if uv() != tallyVersion || i < 0 {
		return nil, errBadTally
	}
	count := uv()
	if i < 0 || count > uint64(len(b)/10) {
		return nil, errBadTally
	}
	t := &tally{items: make([]item, count), index: make(map[uint64]int32, count)}
	str := func() string {
		l := uv()
		if i < 0 || l > uint64(len(b)-i) {
			i = -1
			return ""
		}
		v := s[i : i+int(l)]
		i += int(l)
		return v
	}
	for k := range t.items {
		if i < 0 || len(b)-i < 8 {
			return nil, errBadTally
		}
		it := &t.items[k]
		it.key = binary.LittleEndian.Uint64(b[i:])
		i += 8
		it.plays = int64(uv())
		it.name = str()
		it.artist = str()
		if i < 0 {
			return nil, errBadTally
		}
		t.index[it.key] = int32(k)
	}
	if i != len(b) {
		return nil, errBadTally
	}
	return t, nil
}
