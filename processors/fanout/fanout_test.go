package fanout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sitewide"
)

// run runs a graph in a Goka tester of its own (the aggregator's table
// topic is its table there and the fan-out's input here, with other
// codecs: one tester cannot hold both).
func run(t *testing.T, g *goka.GroupGraph, opts ...goka.ProcessorOption) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	p, err := goka.NewProcessor(nil, g, append([]goka.ProcessorOption{goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	return tt
}

// rig is an aggregator and a fan-out, each in its tester: the
// aggregator's changelog records are fed to the fan-out as they are.
type rig struct {
	t         *testing.T
	ns        string
	agg, fan  *tester.Tester
	changelog *tester.QueueTracker
	counts    *tester.QueueTracker
	dlq       *tester.QueueTracker
	// log is every changelog record fed so far.
	log []record
}

type record struct {
	key   string
	value []byte
}

func newRig(t *testing.T, ns string) *rig {
	r := &rig{t: t, ns: ns}
	r.agg = run(t, aggregator.Graph(aggregator.Config{Namespace: ns}))
	r.changelog = r.agg.NewQueueTracker(string(aggregator.Table(ns)))
	r.fan = run(t, Graph(Config{Namespace: ns}), goka.WithHasher(sitewide.Hasher))
	r.counts = r.fan.NewQueueTracker(string(listen.NewTopics(ns).Counts))
	r.dlq = r.fan.NewQueueTracker(string(listen.NewTopics(ns).DLQ))
	return r
}

// listen counts l in the aggregator and feeds what it wrote to the
// fan-out.
func (r *rig) listen(l listen.Listen) {
	b, err := listen.Codec{}.Encode(l)
	if err != nil {
		r.t.Fatal(err)
	}
	r.agg.Consume(string(listen.NewTopics(r.ns).Valid), l.Key(), b)
	r.pipe()
}

// delete sends the deletion of l.
func (r *rig) delete(l listen.Listen) {
	d := listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}
	r.agg.Consume(string(listen.NewTopics(r.ns).Valid), d.Key(), d.Encode())
	r.pipe()
}

func (r *rig) pipe() {
	for {
		k, v, ok := r.changelog.NextRaw()
		if !ok {
			return
		}
		r.log = append(r.log, record{k, v})
		r.feed(k, v)
	}
}

// feed gives the fan-out one record of the aggregator's table topic.
func (r *rig) feed(key string, value []byte) {
	r.fan.Consume(string(Input(r.ns)), key, value)
}

// emitted is one Count on the counts topic under its key.
type emitted struct {
	key string
	sitewide.Count
}

// next returns the Counts emitted since the last call.
func (r *rig) next() []emitted {
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

func lis(user string, at time.Time, artist, track, album string) listen.Listen {
	return listen.Listen{UserID: user, PlayedAt: at.UTC().Truncate(time.Second), ArtistName: artist, TrackName: track, AlbumName: album}
}

// keyOf is the key of the Count of l's item of entity e.
func keyOf(l listen.Listen, e topk.Entity) string {
	artist, track, album := l.ItemKeys()
	item := map[topk.Entity]uint64{topk.Tracks: track, topk.Artists: artist, topk.Albums: album}[e]
	day, _ := time.Parse(listen.DayLayout, l.Day())
	return sitewide.Key{Entity: e, Item: item, Day: day, Bucket: sitewide.BucketOf(l.UserID)}.String()
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
	return emitted{keyOf(l, e), c}
}

func sorted(es []emitted) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s %+v", e.key, e.Count)
	}
	sort.Strings(out)
	return out
}

func same(t *testing.T, what string, got, want []emitted) {
	t.Helper()
	g, w := sorted(got), sorted(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("%s:\ngot  %q\nwant %q", what, g, w)
	}
}

// TestNewListenEmitsItsItems: the first listen of a user-day emits its
// track, artist and album with plays 1; the next one emits only what it
// touched, with absolute plays and the state's version.
func TestNewListenEmitsItsItems(t *testing.T) {
	r := newRig(t, "fan1")
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
	if v := r.fan.TableValue(Table("fan1"), a.Key()); v != uint32(3) {
		t.Fatalf("last version sent %v, want 3", v)
	}
}

// TestDuplicateRepeatsOnly: a duplicate makes the aggregator rewrite its
// unchanged state once (Changed empty, same version): the fan-out sends
// every item of the day again, each Count with the plays, name and
// artist it sent before and the state's version (an item unchanged since
// an older version carries the newer one: the sitewide group keeps the
// same plays); a second duplicate makes no rewrite and no Count.
func TestDuplicateRepeatsOnly(t *testing.T) {
	r := newRig(t, "fan2")
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a := lis("bob", at, "Radiohead", "Nude", "In Rainbows")
	b := lis("bob", at.Add(time.Minute), "Radiohead", "Reckoner", "")
	r.listen(a)
	r.listen(b)
	held := latest(append(r.next(), emitted{}))
	r.listen(a)
	again := r.next()
	if len(again) != 4 { // two tracks, one artist, one album
		t.Fatalf("a rewrite emitted %d Counts, want the day's 4 items", len(again))
	}
	for _, e := range again {
		h := held[e.key][e.User]
		h.Version = 2 // the rewritten state's: its items unchanged since version 1 carry 2
		if h != e.Count {
			t.Errorf("repeat under %s: %+v, sent before %+v", e.key, e.Count, held[e.key][e.User])
		}
	}
	r.listen(a)
	if n := len(r.next()); n != 0 {
		t.Fatalf("a second duplicate emitted %d Counts", n)
	}
}

// latest is what the sitewide group keeps of es: per key and user, the
// Count of the highest version.
func latest(es []emitted) map[string]map[string]sitewide.Count {
	m := map[string]map[string]sitewide.Count{}
	for _, e := range es {
		if e.key == "" {
			continue
		}
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
// plays, 0 when none are left.
func TestDeletionEmitsLowerPlays(t *testing.T) {
	r := newRig(t, "fan3")
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
}

// day builds a user-day state of plays.
func state(ls ...listen.Listen) *aggregator.Day {
	d := &aggregator.Day{}
	for _, l := range ls {
		d.Add(aggregator.PlayOf(l))
	}
	return d
}

// all is the Counts of every item of d, a state of user at version v.
func all(t *testing.T, d *aggregator.Day, user string, day time.Time) []emitted {
	t.Helper()
	var out []emitted
	for _, e := range topk.Entities {
		for _, it := range d.Items(e) {
			k := sitewide.Key{Entity: e, Item: it.Key, Day: day, Bucket: sitewide.BucketOf(user)}
			out = append(out, emitted{k.String(), sitewide.Count{User: user, Version: d.Version, Plays: it.Plays, Name: it.Name, Artist: it.Artist}})
		}
	}
	return out
}

// TestReplayAndGapEmitAll: a state not newer than the last sent (a
// replay) and a state past the next version (a gap: compaction, a
// crash) send every item of the day; the last version only grows.
func TestReplayAndGapEmitAll(t *testing.T) {
	r := newRig(t, "fan4")
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	ls := []listen.Listen{
		lis("dan", at, "Radiohead", "Nude", "In Rainbows"),
		lis("dan", at.Add(time.Minute), "Radiohead", "Reckoner", "In Rainbows"),
		lis("dan", at.Add(2*time.Minute), "Björk", "Jóga", "Homogenic"),
		lis("dan", at.Add(3*time.Minute), "Björk", "Hunter", "Homogenic"),
	}
	key := ls[0].Key()
	s1, s2, s4 := state(ls[0]), state(ls[:2]...), state(ls...)
	r.feed(key, s1.Encode())
	same(t, "first state", r.next(), all(t, s1, "dan", day))
	r.feed(key, s2.Encode())
	if got := r.next(); len(got) != 3 {
		t.Fatalf("next version: %d Counts, want its 3 changed items", len(got))
	}
	// A replay of version 1, then of version 2: not newer, all items.
	r.feed(key, s1.Encode())
	same(t, "replayed version 1", r.next(), all(t, s1, "dan", day))
	r.feed(key, s2.Encode())
	same(t, "replayed version 2", r.next(), all(t, s2, "dan", day))
	if v := r.fan.TableValue(Table("fan4"), key); v != uint32(2) {
		t.Fatalf("after replays the last version is %v, want 2", v)
	}
	// Version 4 after 2: a gap, all items (version 3's changes too).
	r.feed(key, s4.Encode())
	same(t, "gap", r.next(), all(t, s4, "dan", day))
	if v := r.fan.TableValue(Table("fan4"), key); v != uint32(4) {
		t.Fatalf("last version %v, want 4", v)
	}
	// The next version without Changed (an old encoding): all items.
	s5 := state(append(ls, lis("dan", at.Add(4*time.Minute), "Björk", "Bachelorette", ""))...)
	s5.Changed = aggregator.Touched{}
	r.feed(key, s5.Encode())
	same(t, "unknown change", r.next(), all(t, s5, "dan", day))
}

// TestBadRecordsAreDeadLettered: a record that is not a day state, a
// tombstone, and a key that is not user|day go to the DLQ with a reason;
// the group goes on.
func TestBadRecordsAreDeadLettered(t *testing.T) {
	r := newRig(t, "fan5")
	good := state(lis("erin", time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), "A", "B", ""))
	r.feed("erin|2026-11-30", []byte("not a state"))
	r.feed("erin|2026-11-30", nil)
	r.feed("no-day", good.Encode())
	r.feed("erin|2026-11-31", good.Encode())
	for i, w := range []string{"undecodable", "undecodable", "bad_key", "bad_key"} {
		h, _, v, ok := r.dlq.NextWithHeaders()
		if !ok {
			t.Fatalf("dead letter %d missing", i)
		}
		if got := string(h[processors.HeaderReason]); got != w || string(h[processors.HeaderStage]) != Stage {
			t.Errorf("dead letter %d: reason %q stage %q, want %q", i, got, h[processors.HeaderStage], w)
		}
		if i == 0 && string(v.([]byte)) != "not a state" {
			t.Errorf("dead letter 0 carries %q", v)
		}
	}
	if n := len(r.next()); n != 0 {
		t.Fatalf("bad records emitted %d Counts", n)
	}
	r.feed("erin|2026-11-30", good.Encode())
	if n := len(r.next()); n != 2 {
		t.Fatalf("after the bad records a state emitted %d Counts, want 2", n)
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

// TestKeysLandWhereHasherSays: every emitted key is a sitewide.Key of
// the user's bucket; under sitewide.Hasher the Counts of one item's
// bucket land in one partition whatever the day, and the fan-out's own
// table keys (user|day) land where the aggregator's do
// (aggregator.KeyPartition).
func TestKeysLandWhereHasherSays(t *testing.T) {
	r := newRig(t, "fan6")
	const n = 16
	parts := map[string]map[int32]bool{} // entity|item|bucket → partitions
	for i := range 40 {
		user := fmt.Sprintf("user-%d", i)
		for d := range 3 {
			at := time.Date(2026, 11, 1+d, 10, i, 0, 0, time.UTC)
			l := lis(user, at, "Radiohead", "Nude", "In Rainbows")
			r.listen(l)
			if got, want := partition(l.Key(), n), aggregator.KeyPartition(l.Key(), n); got != want {
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

// TestMatchesIndependentCount: random listens, duplicates and deletions
// of 12 users over three days go through the aggregator and the fan-out,
// with random redeliveries of earlier table records; what the sitewide
// group keeps (each user's latest Count per key) sums, per item and day,
// to the plays and listeners of an independent count of the listens.
// Then a fresh fan-out reads the table topic compacted (random records
// gone, the last of each key kept): the same sums.
func TestMatchesIndependentCount(t *testing.T) {
	r := newRig(t, "fan7")
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
		default: // a redelivery of an earlier table record
			rec := r.log[rnd.IntN(len(r.log))]
			r.feed(rec.key, rec.value)
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
	check := func(what string, es []emitted) {
		t.Helper()
		got := map[item]figures{}
		for key, byUser := range latest(es) {
			k, err := sitewide.ParseKey(key)
			if err != nil {
				t.Fatal(err)
			}
			it := item{k.Entity, k.Item, k.Day.Format(listen.DayLayout)}
			for _, c := range byUser {
				if c.Plays == 0 {
					continue
				}
				f := got[it]
				f.plays += int(c.Plays)
				f.listeners++
				got[it] = f
			}
		}
		if len(got) != len(expect) {
			t.Errorf("%s: %d items with plays, want %d", what, len(got), len(expect))
		}
		for it, w := range expect {
			if g := got[it]; g != w {
				t.Errorf("%s: %s %x on %s: %+v, want %+v", what, it.entity, it.key, it.day, g, w)
			}
		}
	}
	if len(expect) < 50 {
		t.Fatalf("only %d items: the test counts too little", len(expect))
	}
	check("live", all)

	// The table topic compacted: a random half of each key's records
	// gone, never its last.
	lastOf := map[string]int{}
	for i, rec := range r.log {
		lastOf[rec.key] = i
	}
	c := newRig(t, "fan7c")
	for i, rec := range r.log {
		if lastOf[rec.key] == i || rnd.IntN(2) == 0 {
			c.feed(rec.key, rec.value)
		}
	}
	check("compacted", c.next())
}

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		last    uint32
		seen    bool
		v       uint32
		changed bool
		want    outcome
	}{
		{0, false, 1, true, outcomeFirst},
		{0, false, 9, true, outcomeFirst},
		{4, true, 5, true, outcomeNext},
		{4, true, 5, false, outcomeUnknownChange},
		{4, true, 4, true, outcomeNotNewer},
		{4, true, 2, true, outcomeNotNewer},
		{4, true, 6, true, outcomeGap},
		{0, true, 1, true, outcomeNext},
	} {
		if got := decide(c.last, c.seen, c.v, c.changed); got != c.want {
			t.Errorf("decide(%d, %v, %d, %v) = %d, want %d", c.last, c.seen, c.v, c.changed, got, c.want)
		}
	}
}

func TestLastCodec(t *testing.T) {
	for _, v := range []uint32{0, 1, 300, 1<<32 - 1} {
		b, err := LastCodec{}.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := LastCodec{}.Decode(b)
		if err != nil || got != v {
			t.Fatalf("round trip of %d: %v, %v", v, got, err)
		}
		for i := range len(b) {
			if _, err := (LastCodec{}).Decode(b[:i]); err == nil {
				t.Errorf("%d of %d bytes decoded", i, len(b))
			}
		}
	}
	for _, bad := range [][]byte{{2, 1}, {1, 0x80, 0x80, 0x80, 0x80, 0x10}, {1, 1, 0}} {
		if _, err := (LastCodec{}).Decode(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
	if _, err := (LastCodec{}).Encode("x"); err == nil {
		t.Error("a string encoded")
	}
}
