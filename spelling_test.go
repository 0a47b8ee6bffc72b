package topk

import (
	"reflect"
	"testing"
)

func TestMajorityMostPlaysThenEarliest(t *testing.T) {
	for _, c := range []struct {
		sp   []Spelling
		want string
	}{
		{[]Spelling{{"Radiohead", 3, 50}, {"RADIOHEAD", 2, 10}}, "Radiohead"},
		{[]Spelling{{"Radiohead", 2, 50}, {"RADIOHEAD", 2, 10}}, "RADIOHEAD"}, // tie: the earliest
		{[]Spelling{{"b", 2, 10}, {"a", 2, 10}}, "a"},                         // same second: the smaller string
		{nil, ""},
	} {
		if got := Majority(c.sp).Name; got != c.want {
			t.Errorf("Majority(%v) = %q, want %q", c.sp, got, c.want)
		}
	}
}

// Merging items in any order and grouping gives the same item: the
// spellings summed by name, the earliest first listen of each, Name the
// majority.
func TestMergeIsOrderFree(t *testing.T) {
	parts := []Item{
		{Key: 1, Name: "RADIOHEAD", Plays: 2, First: 10},
		{Key: 1, Name: "Radiohead", Plays: 1, First: 30},
		{Key: 1, Name: "Radiohead", Plays: 4, First: 20, Spellings: []Spelling{{"Radiohead", 3, 20}, {"radiohead", 1, 5}}},
		{Key: 1, Name: "RADIOHEAD", Plays: 1, First: 40},
	}
	want := Item{Key: 1, Name: "Radiohead", Plays: 8, First: 20,
		Spellings: []Spelling{{"RADIOHEAD", 3, 10}, {"Radiohead", 4, 20}, {"radiohead", 1, 5}}}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		var it Item
		for _, i := range order {
			p := parts[i]
			it.Merge(&p)
		}
		if !reflect.DeepEqual(it, want) {
			t.Errorf("order %v: %+v, want %+v", order, it, want)
		}
	}
	// Merging must not write into the merged item's spellings.
	if parts[2].Spellings[0].Plays != 3 {
		t.Errorf("Merge changed its argument: %+v", parts[2])
	}
}

func TestMergeOneSpellingAllocatesNothing(t *testing.T) {
	a := Item{Key: 1, Name: "x", Plays: 1, First: 9}
	b := Item{Key: 1, Name: "x", Plays: 2, First: 3}
	if n := testing.AllocsPerRun(100, func() { a.Merge(&b) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
	if a.First != 3 || a.Spellings != nil {
		t.Errorf("%+v", a)
	}
}

func TestSetSpellingsSumsAndDropsASingleOne(t *testing.T) {
	var it Item
	it.SetSpellings([]Spelling{{"a", 1, 5}, {"a", 2, 3}})
	if !reflect.DeepEqual(it, Item{Name: "a", Plays: 3, First: 3}) {
		t.Errorf("%+v", it)
	}
	it.SetSpellings([]Spelling{{"a", 1, 5}, {"B", 1, 4}})
	if it.Name != "B" || it.Plays != 2 || len(it.Spellings) != 2 {
		t.Errorf("%+v", it)
	}
}
