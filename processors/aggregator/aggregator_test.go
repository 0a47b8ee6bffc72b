package aggregator

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

func start(t *testing.T, cfg Config) *tester.Tester {
	t.Helper()
	return startCounter(t, newCounter(cfg))
}

// startCounter runs c's graph in a Goka tester.
func startCounter(t *testing.T, c *counter) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	p, err := goka.NewProcessor(nil, c.graph(), goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess))
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

func lis(user string, at time.Time, artist, track, album string) listen.Listen {
	return listen.Listen{UserID: user, PlayedAt: at.UTC().Truncate(time.Second), ArtistName: artist, TrackName: track, AlbumName: album}
}

func consume(tt *tester.Tester, ns string, l listen.Listen) {
	b, err := listen.Codec{}.Encode(l)
	if err != nil {
		panic(err)
	}
	tt.Consume(string(listen.NewTopics(ns).Valid), l.Key(), b)
}

func day(tt *tester.Tester, ns, key string) *Day {
	d, _ := tt.TableValue(Table(ns), key).(*Day)
	return d
}

func plays(d *Day, e topk.Entity) map[string]uint32 {
	m := map[string]uint32{}
	if d != nil {
		for _, it := range d.Items(e) {
			m[it.Name] = it.Plays
		}
	}
	return m
}

func TestCountsAndDedup(t *testing.T) {
	tt := start(t, Config{})
	at := time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC)
	a := lis("alice", at, "Radiohead", "Reckoner", "In Rainbows")
	consume(tt, "", a)
	// The same listen again, in another spelling and sub-second: one identity.
	b := lis("alice", at.Add(300*time.Millisecond), "RADIOHEAD ", "reckoner", "In Rainbows")
	consume(tt, "", b)
	consume(tt, "", a)
	consume(tt, "", lis("alice", at.Add(time.Minute), "Radiohead", "Nude", "In Rainbows"))
	d := day(tt, "", a.Key())
	if d == nil || d.Total != 2 {
		t.Fatalf("state %+v, want 2 plays", d)
	}
	if got := plays(d, topk.Tracks); got["Reckoner"]+got["reckoner"] != 1 || got["Nude"] != 1 {
		t.Fatalf("tracks %v", got)
	}
	if got := plays(d, topk.Artists); len(got) != 1 {
		t.Fatalf("artists %v: one artist in two spellings must be one item", got)
	}
	if got := plays(d, topk.Albums); got["In Rainbows"] != 2 {
		t.Fatalf("albums %v", got)
	}
}

// Late data lands in its own day, however old, and a re-import counts once.
func TestLateDataAndReimport(t *testing.T) {
	tt := start(t, Config{})
	old := time.Now().UTC().AddDate(-3, 0, 0)
	l := lis("bob", old, "Björk", "Jóga", "Homogenic")
	for range 3 {
		consume(tt, "", l)
	}
	d := day(tt, "", l.Key())
	if d == nil || d.Total != 1 {
		t.Fatalf("old day %s: %+v, want 1 play", l.Key(), d)
	}
	if l.Key() != "bob|"+old.Format("2006-01-02") {
		t.Fatalf("key %s", l.Key())
	}
}

// A duplicate of a key whose local state this processor has not written
// since its assignment (the local store may be ahead of the changelog after
// a crash) rewrites the unchanged state to the changelog — once: later
// duplicates of that key write nothing, so re-importing a counted history
// costs no changelog bytes per listen.
func TestDuplicateRewritesChangelogOncePerKey(t *testing.T) {
	tt := start(t, Config{})
	changelog := tt.NewQueueTracker(string(Table("")))
	l := lis("carol", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "A", "B", "")
	// The local store holds the listen (written before a crash) while
	// this processor has not written the key.
	ahead := &Day{}
	ahead.Add(PlayOf(l))
	tt.SetTableValue(Table(""), l.Key(), ahead)
	changelog.Seek(changelog.Hwm())
	for range 5 {
		consume(tt, "", l)
	}
	_, v, ok := changelog.Next()
	if !ok {
		t.Fatal("a duplicate did not rewrite the state to the changelog")
	}
	if v.(*Day).Total != 1 {
		t.Fatalf("rewritten state has %d plays, want 1", v.(*Day).Total)
	}
	if _, _, ok := changelog.Next(); ok {
		t.Fatal("a second duplicate of the same key rewrote the state again")
	}
	// A key counted by this processor: one write for the listen, one
	// rewrite for its first duplicate, none after.
	m := lis("carol", time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC), "A", "B", "")
	for range 4 {
		consume(tt, "", m)
	}
	for i := range 2 {
		if _, _, ok := changelog.Next(); !ok {
			t.Fatalf("changelog write %d missing", i)
		}
	}
	if _, _, ok := changelog.Next(); ok {
		t.Fatal("more than one rewrite of a key in one assignment")
	}
	// A new assignment forgets what was written.
	c := newCounter(Config{})
	if !c.firstWrite("k") || c.firstWrite("k") {
		t.Fatal("firstWrite")
	}
	c.reset(nil)
	if !c.firstWrite("k") {
		t.Fatal("reset did not forget the written keys")
	}
}

// Spellings count toward the state limit: listens of one track in ever
// new spellings are dead-lettered (state_size) once the day's state
// would pass it, like long names; the counted ones keep their spellings.
func TestSpellingVariantsDeadLetter(t *testing.T) {
	tt := start(t, Config{MaxStateBytes: 4 << 10})
	dlq := tt.NewQueueTracker(string(listen.NewTopics("").DLQ))
	at := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 500)
	for i := range 10 {
		variant := long[:i] + "X" + long[i+1:]
		consume(tt, "", lis("grace", at.Add(time.Duration(i)*time.Minute), "A", variant, ""))
	}
	d := day(tt, "", "grace|2026-05-06")
	if d == nil {
		t.Fatal("no state")
	}
	tr := d.Items(topk.Tracks)
	if d.Total < 2 || d.Total >= 10 || len(tr) != 1 || len(tr[0].Spellings) != int(d.Total) {
		t.Fatalf("state %+v: want one track with one spelling per counted play, some refused", d)
	}
	n := 0
	for {
		h, _, _, ok := dlq.NextWithHeaders()
		if !ok {
			break
		}
		if r := string(h[processors.HeaderReason]); r != "state_size" {
			t.Fatalf("reason %q", r)
		}
		n++
	}
	if n != 10-int(d.Total) {
		t.Fatalf("%d dead letters for %d counted of 10", n, d.Total)
	}
}

// A listen that would grow its user-day past the state limit goes to the
// DLQ; the state stays as it was and other days still count.
func TestStateSizeDeadLetters(t *testing.T) {
	tt := start(t, Config{MaxStateBytes: 4 << 10})
	dlq := tt.NewQueueTracker(string(listen.NewTopics("").DLQ))
	at := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 500)
	for i := range 10 {
		n := strconv.Itoa(i)
		consume(tt, "", lis("frank", at.Add(time.Duration(i)*time.Minute), long+n, long+n, long+n))
	}
	d := day(tt, "", "frank|2026-05-06")
	if d == nil || d.Total == 0 || d.Total >= 10 || len(d.Encode()) > 4<<10 {
		t.Fatalf("state %+v: want some plays, under the limit", d)
	}
	n := 0
	for {
		h, _, _, ok := dlq.NextWithHeaders()
		if !ok {
			break
		}
		n++
		if r := string(h[processors.HeaderReason]); r != "state_size" {
			t.Fatalf("reason %q", r)
		}
	}
	if n != 10-int(d.Total) {
		t.Fatalf("%d dead letters for %d counted of 10", n, d.Total)
	}
	consume(tt, "", lis("frank", at.AddDate(0, 0, 1), "A", "B", ""))
	if d := day(tt, "", "frank|2026-05-07"); d == nil || d.Total != 1 {
		t.Fatalf("the next day was not counted: %+v", d)
	}
	// A small listen of the same day still fits, and counts on the state
	// as it was: none of the refused listens (the cached state the
	// refused listen changed was dropped).
	consume(tt, "", lis("frank", at.Add(time.Hour), "S", "s", ""))
	after := day(tt, "", "frank|2026-05-06")
	if after == nil || after.Total != d.Total+1 || after.Seen() != int(after.Total) {
		t.Fatalf("state after a small listen %+v, want %d plays", after, d.Total+1)
	}
	for _, it := range after.Items(topk.Tracks) {
		if it.Plays != 1 {
			t.Fatalf("track %q has %d plays", it.Name[:min(len(it.Name), 8)], it.Plays)
		}
	}
	if got, want := len(after.Items(topk.Tracks)), int(after.Total); got != want {
		t.Fatalf("%d tracks for %d plays: a refused listen was counted", got, want)
	}
}

// A record on another partition than the one Goka's hasher gives its key
// goes to the DLQ (the tester reads everything from partition 0).
func TestWrongPartitionDeadLetters(t *testing.T) {
	tt := start(t, Config{Partitions: 16})
	dlq := tt.NewQueueTracker(string(listen.NewTopics("").DLQ))
	var wrong, right listen.Listen
	for i := 0; wrong.UserID == "" || right.UserID == ""; i++ {
		l := lis("u"+strconv.Itoa(i), time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC), "A", "B", "")
		if KeyPartition(l.Key(), 16) == 0 {
			right = l
		} else {
			wrong = l
		}
	}
	consume(tt, "", wrong)
	consume(tt, "", right)
	h, _, _, ok := dlq.NextWithHeaders()
	if !ok || string(h[processors.HeaderReason]) != "wrong_partition" {
		t.Fatalf("dead letter %v %q", ok, h[processors.HeaderReason])
	}
	if d := day(tt, "", wrong.Key()); d != nil {
		t.Fatalf("a listen on the wrong partition was counted: %+v", d)
	}
	if d := day(tt, "", right.Key()); d == nil || d.Total != 1 {
		t.Fatalf("a listen on its partition was not counted: %+v", d)
	}
}

// KeyPartition is where Goka's emitter (sarama's hash partitioner with
// Goka's hasher) puts a key.
func TestKeyPartitionIsGokasPartitioner(t *testing.T) {
	p := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("t")
	for i := range 20000 {
		key := "user-" + strconv.Itoa(i*7919) + "|2026-01-01"
		for _, n := range []int32{1, 3, 16, 64} {
			want, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := KeyPartition(key, n); got != want {
				t.Fatalf("%q of %d: %d, sarama %d", key, n, got, want)
			}
		}
	}
}

func TestCapDeadLetters(t *testing.T) {
	tt := start(t, Config{MaxPlaysPerDay: 3})
	dlq := tt.NewQueueTracker(string(listen.NewTopics("").DLQ))
	at := time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		consume(tt, "", lis("dave", at.Add(time.Duration(i)*time.Minute), "A", "T", ""))
	}
	if d := day(tt, "", "dave|2026-05-05"); d == nil || d.Total != 3 {
		t.Fatalf("state %+v, want the cap of 3", d)
	}
	n := 0
	for {
		h, _, v, ok := dlq.NextWithHeaders()
		if !ok {
			break
		}
		n++
		if string(h[processors.HeaderReason]) != "daily_cap" || len(v.([]byte)) == 0 {
			t.Fatalf("dead letter %q reason %q", v, h[processors.HeaderReason])
		}
	}
	if n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
}

func TestBadRecordsOnValidAreDeadLettered(t *testing.T) {
	tt := start(t, Config{})
	dlq := tt.NewQueueTracker(string(listen.NewTopics("").DLQ))
	valid := string(listen.NewTopics("").Valid)
	tt.Consume(valid, "x|2026-01-01", []byte("not json"))
	tt.Consume(valid, "x|2026-01-01", nil)
	l := lis("erin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "A", "B", "")
	b, _ := listen.Codec{}.Encode(l)
	tt.Consume(valid, "someone-else|2026-01-01", b)
	want := []string{"undecodable", "undecodable", "wrong_key"}
	for i, w := range want {
		h, _, _, ok := dlq.NextWithHeaders()
		if !ok {
			t.Fatalf("dead letter %d missing", i)
		}
		if got := string(h[processors.HeaderReason]); got != w {
			t.Errorf("dead letter %d: reason %q, want %q", i, got, w)
		}
	}
	if d := day(tt, "", "someone-else|2026-01-01"); d != nil {
		t.Fatalf("a listen under a wrong key was counted: %+v", d)
	}
}

// A user-day inside the recent window is written to the recent topic with
// the table's bytes, every time its state changes (and for the once-per-key
// rewrite of a duplicate); an older day is not.
func TestRecentTopic(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tt := start(t, Config{RecentDays: 35, Now: func() time.Time { return now }})
	recent := tt.NewQueueTracker(string(listen.NewTopics("").Recent))
	fresh := lis("alice", now.Add(-time.Hour), "A", "T1", "X")
	edge := lis("alice", now.AddDate(0, 0, -35), "A", "T1", "X")
	old := lis("alice", now.AddDate(0, 0, -36), "A", "T1", "X")
	for _, l := range []listen.Listen{fresh, edge, old} {
		consume(tt, "", l)
	}
	consume(tt, "", lis("alice", now.Add(-30*time.Minute), "A", "T2", "X"))
	consume(tt, "", fresh) // a duplicate: rewritten once, recent again
	var keys []string
	for {
		k, v, ok := recent.Next()
		if !ok {
			break
		}
		keys = append(keys, k)
		d, err := DecodeDay(v.([]byte))
		if err != nil {
			t.Fatalf("recent value of %s: %v", k, err)
		}
		if want := day(tt, "", k); k == fresh.Key() && len(keys) == 3 && d.Total != want.Total {
			t.Fatalf("recent %s has %d plays, table %d", k, d.Total, want.Total)
		}
	}
	want := []string{fresh.Key(), edge.Key(), fresh.Key(), fresh.Key()}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("recent keys %v, want %v (the day 36 days back is not recent)", keys, want)
	}
}

// TestChangedInChangelog: a counted listen's state names its track,
// artist and album in Changed, a deletion's the items it took a play
// from, and the rewrite of an unchanged state for a duplicate has Changed
// empty (the fan-out sends all of it), at the same Version.
func TestChangedInChangelog(t *testing.T) {
	tt := start(t, Config{})
	changelog := tt.NewQueueTracker(string(Table("")))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := lis("dora", at, "Radiohead", "Nude", "In Rainbows")
	b := lis("dora", at.Add(time.Minute), "Björk", "Jóga", "")
	next := func() *Day {
		t.Helper()
		_, v, ok := changelog.Next()
		if !ok {
			t.Fatal("no changelog write")
		}
		return v.(*Day)
	}
	consume(tt, "", a)
	if d := next(); d.Version != 1 || d.Changed != (Touched{1, 1, 1}) {
		t.Fatalf("first listen: version %d, Changed %+v", d.Version, d.Changed)
	}
	consume(tt, "", b)
	if d := next(); d.Version != 2 || d.Changed != (Touched{2, 2, 0}) {
		t.Fatalf("second listen: version %d, Changed %+v", d.Version, d.Changed)
	}
	consume(tt, "", a)
	if d := next(); d.Version != 2 || !d.Changed.Empty() {
		t.Fatalf("rewrite for a duplicate: version %d, Changed %+v", d.Version, d.Changed)
	}
	consumeDelete(tt, "", a)
	if d := next(); d.Version != 3 || d.Changed != (Touched{1, 1, 1}) || d.Tracks[0].Plays != 0 {
		t.Fatalf("deletion: version %d, Changed %+v, tracks %+v", d.Version, d.Changed, d.Tracks)
	}
	if _, _, ok := changelog.Next(); ok {
		t.Fatal("an extra changelog write")
	}
}
