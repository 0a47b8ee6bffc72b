package topk

import (
	"cmp"
	"slices"
)

// Display names. Listens of one item (one key: the folded name, see
// listen.Normalize) may spell it differently: "Radiohead", "RADIOHEAD".
// An item keeps every spelling with the plays that used it and when the
// first of them was played, in the aggregator's day state, in day_items
// and in the rollups; sums of items sum their spellings. The name an item
// shows is its majority spelling over all of a user's counted listens of
// it (the charts take it from the user's all-time tally, so it is the same
// in every row, range and page): the spelling with the most plays, ties
// the earliest first listen, then the smaller string.

// Spelling is one way an item's listens spelled its name: the plays that
// used it and the first of them (Unix seconds).
type Spelling struct {
	Name  string
	Plays int64
	First int64
}

// Better reports whether a wins over b as the display spelling: more
// plays, then the earlier first listen, then the smaller string (a total
// order: every merge of the same spellings picks the same one).
func (a Spelling) Better(b Spelling) bool {
	if a.Plays != b.Plays {
		return a.Plays > b.Plays
	}
	if a.First != b.First {
		return a.First < b.First
	}
	return a.Name < b.Name
}

// Majority is the display spelling of sp (the zero Spelling when sp is
// empty).
func Majority(sp []Spelling) Spelling {
	var best Spelling
	for i, s := range sp {
		if i == 0 || s.Better(best) {
			best = s
		}
	}
	return best
}

// AllSpellings returns the item's spellings: Spellings, or Name as the
// only one. The result may alias it.Spellings.
func (it *Item) AllSpellings() []Spelling {
	if len(it.Spellings) > 0 {
		return it.Spellings
	}
	return []Spelling{{Name: it.Name, Plays: it.Plays, First: it.First}}
}

// AddSpelling adds plays of the spelling name first played at first.
func (it *Item) AddSpelling(name string, plays, first int64) {
	it.Merge(&Item{Key: it.Key, Name: name, Plays: plays, First: first})
}

// Merge adds o's plays and spellings to it (same key); Name and First
// become the majority spelling's. Artist is kept, or taken from o when
// empty. An item with one spelling allocates nothing when o has the same
// one.
func (it *Item) Merge(o *Item) {
	if it.Plays == 0 && len(it.Spellings) == 0 && it.Name == "" {
		artist := it.Artist
		*it = *o
		it.Spellings = slices.Clone(o.Spellings)
		if artist != "" {
			it.Artist = artist
		}
		return
	}
	if it.Artist == "" {
		it.Artist = o.Artist
	}
	if len(it.Spellings) == 0 && len(o.Spellings) == 0 && it.Name == o.Name {
		it.Plays += o.Plays
		it.First = min(it.First, o.First)
		return
	}
	if len(it.Spellings) == 0 {
		it.Spellings = []Spelling{{Name: it.Name, Plays: it.Plays, First: it.First}}
	}
	for _, s := range o.AllSpellings() {
		it.Spellings = addSpelling(it.Spellings, s)
	}
	it.Plays += o.Plays
	it.setMajority()
}

// SetSpellings replaces the item's spellings with sp (copied; equal names
// summed): Plays becomes their sum, Name and First the majority's.
func (it *Item) SetSpellings(sp []Spelling) {
	it.Spellings, it.Plays = nil, 0
	for _, s := range sp {
		it.Spellings = addSpelling(it.Spellings, s)
		it.Plays += s.Plays
	}
	it.setMajority()
}

// setMajority sets Name and First from Spellings, and drops Spellings
// when only one is left; spellings are kept in name order, so equal items
// encode the same.
func (it *Item) setMajority() {
	m := Majority(it.Spellings)
	it.Name, it.First = m.Name, m.First
	if len(it.Spellings) == 1 {
		it.Spellings = nil
	}
}

// addSpelling adds s to sp, kept sorted by name, and returns it.
func addSpelling(sp []Spelling, s Spelling) []Spelling {
	i, found := slices.BinarySearchFunc(sp, s.Name, func(x Spelling, name string) int { return cmp.Compare(x.Name, name) })
	if found {
		sp[i].Plays += s.Plays
		sp[i].First = min(sp[i].First, s.First)
		return sp
	}
	return slices.Insert(sp, i, s)
}
