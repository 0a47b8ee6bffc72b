package aggregator

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sitewide"
)

// countRig is an aggregator in a Goka tester with a tracker on the
// sitewide counts topic.
type countRig struct {
	t      *testing.T
	ns     string
	c      *counter
	tt     *tester.Tester
	counts *tester.QueueTracker
}

func newCountRig(t *testing.T, ns string) *countRig {
	r := &countRig{t: t, ns: ns, c: newCounter(Config{Namespace: ns})}
	r.tt = startCounter(t, r.c)
	r.counts = r.tt.NewQueueTracker(string(listen.NewTopics(ns).Counts))
	return r
}

func (r *countRig) listen(l listen.Listen)  { consume(r.tt, r.ns, l) }
func (r *countRig) delete(l listen.Listen)  { consumeDelete(r.tt, r.ns, l) }
func (r *countRig) rebalance()              { r.c.reset(nil) }
func (r *countRig) stateOf(key string) *Day { return day(r.tt, r.ns, key) }

// emitted is one Count on the counts topic under its key.
type emitted struct {
	key string
	sitewide.Count
}

// next returns the Counts emitted since the last call.
func (r *countRig) next() []emitted {
	r.t.Helper()
	var out []emitted
	for {
		k, v, ok := r.counts.NextRaw()
		if !ok {
			return out
		}
		c, err := sitewide.DecodeCount(v)
		if err != nil {
			r.t.Fatalf("count under %s: %v", k, err)
		}
		out = append(out, emitted{k, c})
	}
}

// countKeyOf is the key of the Count of l's item of entity e.
func countKeyOf(l listen.Listen, e topk.Entity) string {
	artist, track, album := l.ItemKeys()
	item := map[topk.Entity]uint64{topk.Tracks: track, topk.Artists: artist, topk.Albums: album}[e]
	d, _ := time.Parse(listen.DayLayout, l.Day())
	return sitewide.Key{Entity: e, Item: item, Day: d, Bucket: sitewide.BucketOf(l.UserID)}.String()
}

// want is an expected Count under its key.
func want(l listen.Listen, e topk.Entity, version, plays uint32) emitted {
	c := sitewide.Count{User: l.UserID, Version: version, Plays: plays}
	switch e {
	case topk.Tracks:
		c.Name, c.Artist = l.TrackName, l.ArtistName
	case topk.Artists:
		c.Name = l.ArtistName
	case topk.Albums:
		c.Name, c.Artist = l.AlbumName, l.ArtistName
	}
	return emitted{countKeyOf(l, e), c}
}

func sortedCounts(es []emitted) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s %+v", e.key, e.Count)
	}
	sort.Strings(out)
	return out
}

func same(t *testing.T, what string, got, want []emitted) {
	t.Helper()
	g, w := sortedCounts(got), sortedCounts(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("%s:\ngot  %q\nwant %q", what, g, w)
	}
}

// TestNewListenEmitsItsItems: the first listen of a user-day emits its
// track, artist and album with plays 1; the next one emits only what it
// touched, with absolute plays and the state's version.
func TestNewListenEmitsItsItems(t *testing.T) {
	r := newCountRig(t, "cnt1")
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a := lis("alice", at, "Radiohead", "Nude", "In Rainbows")
	r.listen(a)
	same(t, "first listen", r.next(), []emitted{
		want(a, topk.Tracks, 1, 1), want(a, topk.Artists, 1, 1), want(a, topk.Albums, 1, 1)})
	b := lis("alice", at.Add(time.Minute), "Radiohead", "Reckoner", "In Rainbows")
	r.listen(b)
	same(t, "second listen", r.next(), []emitted{
		want(b, topk.Tracks, 2, 1), want(b, topk.Artists, 2, 2), want(b, topk.Albums, 2, 2)})
	c := lis("alice", at.Add(2*time.Minute), "Björk", "Jóga", "")
	r.listen(c)
	same(t, "a listen without album", r.next(), []emitted{
		want(c, topk.Tracks, 3, 1), want(c, topk.Artists, 3, 1)})
}

// TestDuplicateRepeatsAllOnce: a duplicate makes the aggregator rewrite
// its unchanged state once per key and assignment (Changed empty, same
// version), sending every item of the day again, each Count with the
// plays, name and artist sent before and the state's version (an item
// unchanged since an older version carries the newer one: the sitewide
// group keeps the same plays); a second duplicate sends nothing; after a
// rebalance the next duplicate sends every item again (a crash may have
// lost the Counts of a write whose state survived).
func TestDuplicateRepeatsAllOnce(t *testing.T) {
	r := newCountRig(t, "cnt2")
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a := lis("bob", at, "Radiohead", "Nude", "In Rainbows")
	b := lis("bob", at.Add(time.Minute), "Radiohead", "Reckoner", "")
	r.listen(a)
	r.listen(b)
	held := latest(r.next())
	check := func(what string) {
		t.Helper()
		again := r.next()
		if len(again) != 4 { // two tracks, one artist, one album
			t.Fatalf("%s: %d Counts, want the day's 4 items", what, len(again))
		}
		for _, e := range again {
			h := held[e.key][e.User]
			h.Version = 2 // the rewritten state's: its items unchanged since version 1 carry 2
			if h != e.Count {
				t.Errorf("%s: repeat under %s: %+v, sent before %+v", what, e.key, e.Count, held[e.key][e.User])
			}
		}
	}
	r.listen(a)
	check("a duplicate")
	r.listen(a)
	if n := len(r.next()); n != 0 {
		t.Fatalf("a second duplicate emitted %d Counts", n)
	}
	r.rebalance()
	r.listen(b)
	check("a duplicate after a rebalance")
}

// latest is what the sitewide group keeps of es: per key and user, the
// Count of the highest version.
func latest(es []emitted) map[string]map[string]sitewide.Count {
	m := map[string]map[string]sitewide.Count{}
	for _, e := range es {
		if m[e.key] == nil {
			m[e.key] = map[string]sitewide.Count{}
		}
		if h, ok := m[e.key][e.User]; !ok || e.Version > h.Version {
			m[e.key][e.User] = e.Count
		}
	}
	return m
}

// TestDeletionEmitsLowerPlays: a deletion emits the touched items' new
// plays, 0 when none are left; a deletion that finds nothing rewrites
// once (every item again) and then sends nothing.
func TestDeletionEmitsLowerPlays(t *testing.T) {
	r := newCountRig(t, "cnt3")
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a := lis("carol", at, "Radiohead", "Nude", "In Rainbows")
	b := lis("carol", at.Add(time.Minute), "Radiohead", "Nude", "In Rainbows")
	c := lis("carol", at.Add(2*time.Minute), "Radiohead", "Reckoner", "")
	for _, l := range []listen.Listen{a, b, c} {
		r.listen(l)
	}
	r.next()
	r.delete(a)
	same(t, "first deletion", r.next(), []emitted{
		want(a, topk.Tracks, 4, 1), want(a, topk.Artists, 4, 2), want(a, topk.Albums, 4, 1)})
	r.delete(b)
	same(t, "last listen of the track", r.next(), []emitted{
		want(b, topk.Tracks, 5, 0), want(b, topk.Artists, 5, 1), want(b, topk.Albums, 5, 0)})
	r.delete(b)
	if n := len(r.next()); n != 4 {
		t.Fatalf("a deletion finding nothing rewrote %d Counts, want the day's 4 items", n)
	}
	r.delete(b)
	if n := len(r.next()); n != 0 {
		t.Fatalf("a second such deletion emitted %d Counts", n)
	}
}

// TestNoCountsForRejected: listens that go to the DLQ (the daily cap, a
// state over its size) send no Count.
func TestNoCountsForRejected(t *testing.T) {
	r := &countRig{t: t, ns: "cnt4", c: newCounter(Config{Namespace: "cnt4", MaxPlaysPerDay: 2})}
	r.tt = startCounter(t, r.c)
	r.counts = r.tt.NewQueueTracker(string(listen.NewTopics("cnt4").Counts))
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	r.listen(lis("dan", at, "A", "One", ""))
	r.listen(lis("dan", at.Add(time.Second), "A", "Two", ""))
	if n := len(r.next()); n != 4 {
		t.Fatalf("two listens sent %d Counts, want 4", n)
	}
	r.listen(lis("dan", at.Add(2*time.Second), "A", "Three", ""))
	if n := len(r.next()); n != 0 {
		t.Fatalf("a listen over the cap sent %d Counts", n)
	}
}

// partition is the partition of key among n under sitewide.Hasher, as
// sarama's hash partitioner (Goka's producer) computes it.
func partition(key string, n int32) int32 {
	h := sitewide.Hasher()
	h.Write([]byte(key))
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

// TestCountKeysLandWhereHasherSays: every emitted key is a sitewide.Key
// of the user's bucket; under sitewide.Hasher (the aggregator's) the
// Counts of one item's bucket land in one partition whatever the day,
// and the aggregator's own keys (user|day) land where Goka's default
// hasher puts them (KeyPartition).
func TestCountKeysLandWhereHasherSays(t *testing.T) {
	r := newCountRig(t, "cnt5")
	const n = 16
	parts := map[string]map[int32]bool{} // entity|item|bucket → partitions
	for i := range 40 {
		user := fmt.Sprintf("user-%d", i)
		for d := range 3 {
			at := time.Date(2026, 11, 1+d, 10, i, 0, 0, time.UTC)
			l := lis(user, at, "Radiohead", "Nude", "In Rainbows")
			r.listen(l)
			if got, want := partition(l.Key(), n), KeyPartition(l.Key(), n); got != want {
				t.Errorf("table key %s: partition %d under Hasher, %d in the aggregator", l.Key(), got, want)
			}
		}
	}
	buckets := map[uint32]bool{}
	for _, e := range r.next() {
		k, err := sitewide.ParseKey(e.key)
		if err != nil {
			t.Fatal(err)
		}
		if k.Bucket != sitewide.BucketOf(e.User) || k.String() != e.key {
			t.Errorf("key %s of %s: bucket %d, want %d", e.key, e.User, k.Bucket, sitewide.BucketOf(e.User))
		}
		buckets[k.Bucket] = true
		id := fmt.Sprintf("%s|%x|%d", k.Entity, k.Item, k.Bucket)
		if parts[id] == nil {
			parts[id] = map[int32]bool{}
		}
		parts[id][partition(e.key, n)] = true
	}
	if len(buckets) != sitewide.Buckets {
		t.Errorf("40 users used %d buckets of %d", len(buckets), sitewide.Buckets)
	}
	spread := map[int32]bool{}
	for id, ps := range parts {
		if len(ps) != 1 {
			t.Errorf("%s: its days land in partitions %v", id, ps)
		}
		for p := range ps {
			spread[p] = true
		}
	}
	if len(spread) < 8 {
		t.Errorf("3 items × 8 buckets use %d of %d partitions", len(spread), n)
	}
}

// TestCountsMatchIndependentCount: random listens, duplicates, deletions
// and rebalances of 12 users over three days; what the sitewide group
// keeps (each user's latest Count per key) sums, per item and day, to the
// plays and listeners of an independent count of the listens, and the
// latest Count of each user and item is the aggregator's state.
func TestCountsMatchIndependentCount(t *testing.T) {
	r := newCountRig(t, "cnt6")
	rnd := rand.New(rand.NewPCG(15, 7))
	type id struct {
		user string
		sec  int64
		msid string
	}
	alive := map[id]listen.Listen{}
	var sent []listen.Listen
	artists := []string{"Radiohead", "Björk", "Portishead", "Massive Attack"}
	albums := []string{"", "First", "Second"}
	var all []emitted
	for range 700 {
		switch x := rnd.IntN(100); {
		case x < 60 || len(sent) == 0:
			a := artists[rnd.IntN(len(artists))]
			l := lis(fmt.Sprintf("u%d", rnd.IntN(12)),
				time.Date(2026, 11, 28+rnd.IntN(3), 0, 0, 0, 0, time.UTC).Add(time.Duration(rnd.IntN(86400))*time.Second),
				a, fmt.Sprintf("Track %d", rnd.IntN(6)), albums[rnd.IntN(len(albums))])
			if a == "Björk" {
				l.AlbumName = "" // an artist without albums
			}
			sent = append(sent, l)
			alive[id{l.UserID, l.PlayedAt.Unix(), listen.MSID(l.ArtistName, l.TrackName)}] = l
			r.listen(l)
		case x < 75: // a duplicate, or a deleted listen sent again: counts again
			l := sent[rnd.IntN(len(sent))]
			alive[id{l.UserID, l.PlayedAt.Unix(), listen.MSID(l.ArtistName, l.TrackName)}] = l
			r.listen(l)
		case x < 90:
			l := sent[rnd.IntN(len(sent))]
			delete(alive, id{l.UserID, l.PlayedAt.Unix(), listen.MSID(l.ArtistName, l.TrackName)})
			r.delete(l)
		default:
			r.rebalance()
		}
		all = append(all, r.next()...)
	}
	type item struct {
		entity topk.Entity
		key    uint64
		day    string
	}
	type figures struct{ plays, listeners int }
	expect := map[item]figures{}
	users := map[item]map[string]bool{}
	for _, l := range alive {
		artist, track, album := l.ItemKeys()
		for e, k := range map[topk.Entity]uint64{topk.Tracks: track, topk.Artists: artist, topk.Albums: album} {
			if k == 0 {
				continue
			}
			it := item{e, k, l.Day()}
			f := expect[it]
			f.plays++
			if users[it] == nil {
				users[it] = map[string]bool{}
			}
			if !users[it][l.UserID] {
				users[it][l.UserID] = true
				f.listeners++
			}
			expect[it] = f
		}
	}
	got := map[item]figures{}
	for key, byUser := range latest(all) {
		k, err := sitewide.ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		it := item{k.Entity, k.Item, k.Day.Format(listen.DayLayout)}
		for user, c := range byUser {
			if d := r.stateOf(user + "|" + it.day); d == nil {
				t.Errorf("a Count of %s on %s without a state", user, it.day)
			} else {
				var plays uint32
				for _, x := range d.Items(k.Entity) {
					if x.Key == k.Item {
						plays = x.Plays
					}
				}
				if plays != c.Plays || c.Version > d.Version {
					t.Errorf("%s %x of %s on %s: Count plays %d version %d, state plays %d version %d", k.Entity, k.Item, user, it.day, c.Plays, c.Version, plays, d.Version)
				}
			}
			if c.Plays == 0 {
				continue
			}
			f := got[it]
			f.plays += int(c.Plays)
			f.listeners++
			got[it] = f
		}
	}
	if len(expect) < 50 {
		t.Fatalf("only %d items: the test counts too little", len(expect))
	}
	if len(got) != len(expect) {
		t.Errorf("%d items with plays, want %d", len(got), len(expect))
	}
	for it, w := range expect {
		if g := got[it]; g != w {
			t.Errorf("%s %x on %s: %+v, want %+v", it.entity, it.key, it.day, g, w)
		}
	}
}
