package aggregator

import (
	"context"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

func start(t *testing.T, cfg Config) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	p, err := goka.NewProcessor(nil, Graph(cfg), goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess))
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

func plays(d *Day, e Entity) map[string]uint32 {
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
	if got := plays(d, Tracks); got["Reckoner"]+got["reckoner"] != 1 || got["Nude"] != 1 {
		t.Fatalf("tracks %v", got)
	}
	if got := plays(d, Artists); len(got) != 1 {
		t.Fatalf("artists %v: one artist in two spellings must be one item", got)
	}
	if got := plays(d, Albums); got["In Rainbows"] != 2 {
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

// A duplicate rewrites the unchanged state to the changelog: the crash
// window where the local store is ahead of the changelog closes.
func TestDuplicateRewritesChangelog(t *testing.T) {
	tt := start(t, Config{})
	changelog := tt.NewQueueTracker(string(Table("")))
	l := lis("carol", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "A", "B", "")
	consume(tt, "", l)
	if _, _, ok := changelog.Next(); !ok {
		t.Fatal("no changelog write for a new listen")
	}
	consume(tt, "", l)
	_, v, ok := changelog.Next()
	if !ok {
		t.Fatal("a duplicate did not rewrite the state to the changelog")
	}
	if v.(*Day).Total != 1 {
		t.Fatalf("rewritten state has %d plays, want 1", v.(*Day).Total)
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
