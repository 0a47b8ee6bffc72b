package aggregator

import (
	"cmp"
	"slices"
	"time"

	"github.com/topk-charts/topk"
)

// Spellings of a user-day. Listens of one item (one key) may spell it
// differently; the day keeps every spelling with its plays and its first
// listen, so the flusher's rollups and the views can sum them over any
// period and show the majority spelling (topk.Spelling.Better).

// Spelling is one way the day's listens spelled an item: the plays that
// used it and the second of the UTC day of the first of them. It is
// topk.Spelling made compact for the day state.
type Spelling struct {
	Name  string
	Plays uint32
	First uint32
}

// topk is the spelling with First made absolute: base is the day's
// midnight (Unix seconds).
func (s Spelling) topk(base int64) topk.Spelling {
	return topk.Spelling{Name: s.Name, Plays: int64(s.Plays), First: base + int64(s.First)}
}

// better is topk.Spelling.Better on seconds of the same day (the one rule
// of the display spelling everywhere).
func (s Spelling) better(o Spelling) bool { return s.topk(0).Better(o.topk(0)) }

// majority is the display spelling of sp (not empty).
func majority(sp []Spelling) Spelling {
	best := sp[0]
	for _, s := range sp[1:] {
		if s.better(best) {
			best = s
		}
	}
	return best
}

// add counts one play spelled name at second sec of the day. An item
// with one spelling allocates nothing while its listens keep spelling it
// the same way.
func (it *Item) add(name string, sec uint32) {
	if it.Plays == 0 {
		// Every listen of the item was deleted: it starts again as new.
		it.Name, it.First, it.Spellings = name, sec, nil
	}
	it.Plays++
	if it.Spellings == nil && name == it.Name {
		it.First = min(it.First, sec)
		return
	}
	if it.Spellings == nil {
		it.Spellings = []Spelling{{Name: it.Name, Plays: it.Plays - 1, First: it.First}}
	}
	it.Spellings = addSpelling(it.Spellings, Spelling{Name: name, Plays: 1, First: sec})
	m := majority(it.Spellings)
	it.Name, it.First = m.Name, m.First
}

// remove takes one play out of the item, from its majority spelling
// (Day.Delete). An item with no plays stays, with Plays 0.
func (it *Item) remove() {
	if it.Plays == 0 {
		return
	}
	it.Plays--
	if it.Spellings == nil {
		return
	}
	i := slices.IndexFunc(it.Spellings, func(s Spelling) bool { return s.Name == it.Name })
	if i < 0 {
		i = 0
	}
	if it.Spellings[i].Plays--; it.Spellings[i].Plays == 0 {
		it.Spellings = slices.Delete(it.Spellings, i, i+1)
	}
	m := majority(it.Spellings)
	it.Name, it.First = m.Name, m.First
	if len(it.Spellings) == 1 {
		it.Spellings = nil
	}
}

// addSpelling adds s to sp, kept sorted by name (so equal days encode
// the same and Topk needs no sort), and returns it.
func addSpelling(sp []Spelling, s Spelling) []Spelling {
	i, found := slices.BinarySearchFunc(sp, s.Name, func(x Spelling, name string) int { return cmp.Compare(x.Name, name) })
	if found {
		sp[i].Plays += s.Plays
		sp[i].First = min(sp[i].First, s.First)
		return sp
	}
	return slices.Insert(sp, i, s)
}

// Topk is the item as the rest of topk sees it, on the UTC day it
// belongs to (First is absolute there: the day's midnight plus the
// second). Views and the flusher convert through it.
func (it *Item) Topk(day time.Time) topk.Item {
	base := day.Unix()
	out := topk.Item{Key: it.Key, Name: it.Name, Artist: it.Artist, Plays: int64(it.Plays), First: base + int64(it.First)}
	if len(it.Spellings) > 0 {
		out.Spellings = make([]topk.Spelling, len(it.Spellings))
		for i, s := range it.Spellings {
			out.Spellings[i] = s.topk(base)
		}
	}
	return out
}

// ItemOf is Topk's inverse for an item of day (the views re-encode the
// days they hold); the artist index is left 0.
func ItemOf(it *topk.Item, day time.Time) Item {
	base := day.Unix()
	out := Item{Key: it.Key, Name: it.Name, Artist: it.Artist, Plays: uint32(it.Plays), First: uint32(it.First - base)}
	if len(it.Spellings) > 0 {
		out.Spellings = make([]Spelling, len(it.Spellings))
		for i, s := range it.Spellings {
			out.Spellings[i] = Spelling{Name: s.Name, Plays: uint32(s.Plays), First: uint32(s.First - base)}
		}
	}
	return out
}
