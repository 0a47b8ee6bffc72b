package flusher

import (
	"sort"

	"github.com/topk-charts/topk"
)

// The model's rollup rows (modelWorld.want), summed spelling by spelling
// without topk.Item.Merge, so the model checks the flusher's sums rather
// than repeating them.

// spellingSum is a rollup row as the model sums it: the artist, and each
// spelling's plays and earliest first listen; zero, the first row with
// plays 0 summed (the row when no row has plays).
type spellingSum struct {
	artist    string
	spellings map[string]topk.Spelling
	zero      *topk.EntityItem
}

// addSum adds row's spellings to part's sum of its item.
func addSum(sums map[string]map[itemKey]*spellingSum, part string, row topk.EntityItem) {
	if sums[part] == nil {
		sums[part] = map[itemKey]*spellingSum{}
	}
	ik := itemKey{row.Entity, row.Key}
	sum := sums[part][ik]
	if sum == nil {
		sum = &spellingSum{spellings: map[string]topk.Spelling{}}
		sums[part][ik] = sum
	}
	if row.Plays == 0 {
		if sum.zero == nil {
			sum.zero = &row
		}
		return
	}
	if sum.artist == "" {
		sum.artist = row.Artist
	}
	for _, s := range row.AllSpellings() {
		if acc, ok := sum.spellings[s.Name]; ok {
			s.Plays, s.First = s.Plays+acc.Plays, min(s.First, acc.First)
		}
		sum.spellings[s.Name] = s
	}
}

// row is the sum as the rollup row of ik: plays summed, name and First the
// majority spelling's, Spellings in name order when more than one.
func (sum *spellingSum) row(ik itemKey) topk.EntityItem {
	if len(sum.spellings) == 0 {
		z := sum.zero.Item
		return topk.EntityItem{Entity: ik.entity, Item: topk.Item{Key: ik.key, Name: z.Name, Artist: z.Artist, First: z.First}}
	}
	var sp []topk.Spelling
	var plays int64
	for _, s := range sum.spellings {
		sp = append(sp, s)
		plays += s.Plays
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].Name < sp[j].Name })
	m := topk.Majority(sp)
	if len(sp) == 1 {
		sp = nil
	}
	return topk.EntityItem{Entity: ik.entity, Item: topk.Item{Key: ik.key, Name: m.Name, Artist: sum.artist, Plays: plays, First: m.First, Spellings: sp}}
}
