package cassandra

import (
	"math/rand/v2"
	"testing"
)

// A sitewide sum is the same whatever the order of the rows, and whether
// partitions' partial sums are merged or every row is added to one sum:
// plays and listeners add up, the spelling is the row's with the most
// plays (ties: the smaller name, then artist), rows with plays 0 add
// nothing.
func TestSitewideSumIsOrderFree(t *testing.T) {
	type row struct {
		plays, listeners int64
		name, artist     string
	}
	rows := []row{{3, 2, "Song", "Band"}, {5, 1, "SONG", "BAND"}, {5, 4, "Song", "Band"}, {0, 0, "", ""}, {5, 1, "SONG", "Band"}, {1, 1, "song", "band"}}
	want := sitewideSum{plays: 19, listeners: 9, best: 5, name: "SONG", artist: "BAND"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		var one sitewideSum
		for _, r := range rows {
			one.add(r.plays, r.listeners, r.plays, r.name, r.artist)
		}
		if one != want {
			t.Fatalf("rows %v: %+v, want %+v", rows, one, want)
		}
		// split in two partitions, merged as SitewideRange merges them
		cut := rng.IntN(len(rows) + 1)
		var a, b sitewideSum
		for i, r := range rows {
			p := &a
			if i >= cut {
				p = &b
			}
			p.add(r.plays, r.listeners, r.plays, r.name, r.artist)
		}
		a.add(b.plays, b.listeners, b.best, b.name, b.artist)
		if a != want {
			t.Fatalf("rows %v cut at %d: merged %+v, want %+v", rows, cut, a, want)
		}
	}
	if SitewideShard(1<<63|17) != 1 || SitewideShard(32) != 0 {
		t.Error("SitewideShard is not item mod 16")
	}
}
