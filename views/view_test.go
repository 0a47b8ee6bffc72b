package views

import (
	"context"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

func day(t *testing.T, plays ...[3]string) *aggregator.Day {
	t.Helper()
	d := &aggregator.Day{}
	for i, p := range plays {
		l := listen.Listen{UserID: "u", PlayedAt: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), ArtistName: p[0], TrackName: p[1], AlbumName: p[2]}
		d.Add(aggregator.PlayOf(l))
	}
	return d
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func startView(t *testing.T, now *clock, days int) (*View, *tester.Tester) {
	t.Helper()
	tt := tester.New(t)
	v, err := New(processors.Settings{}, Config{Days: days, Now: now.now, Registerer: prometheus.NewRegistry(), Maintain: time.Hour},
		goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !v.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("view did not recover")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v, tt
}

// The view keeps the window [today−R+1, …), skips older days as they
// arrive, drops days that leave the window at the next prune, and keeps
// counts and names without the seen set.
func TestViewKeepsRecentDays(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v, tt := startView(t, now, 3)
	table := string(aggregator.Table(""))
	if got := v.FirstDay(now.t); got.Format(listen.DayLayout) != "2026-03-08" {
		t.Fatalf("first day %v, want 2026-03-08", got)
	}
	d := day(t, [3]string{"Radiohead", "Reckoner", "In Rainbows"}, [3]string{"Radiohead", "Nude", "In Rainbows"},
		[3]string{"radiohead", "RECKONER", ""})
	for _, k := range []string{"alice|2026-03-07", "alice|2026-03-08", "alice|2026-03-10", "alice|2026-03-11", "bob|2026-03-09"} {
		tt.Consume(table, k, d)
	}
	tt.Consume(table, "not a key", d)
	if n := v.size(); n != 4 {
		t.Fatalf("view holds %d user-days, want 4 (2026-03-07 is before the window)", n)
	}
	days, err := v.Range("alice", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 3 || days[0].Date.Day() != 8 || days[1].Date.Day() != 10 || days[2].Date.Day() != 11 {
		t.Fatalf("alice's days %+v, want 8, 10, 11 March", days)
	}
	got := days[0]
	if got.Plays != 3 || len(got.Tracks) != 2 || len(got.Artists) != 1 || len(got.Albums) != 1 {
		t.Fatalf("day %+v", got)
	}
	for _, it := range got.Tracks {
		if it.Key == listen.TrackKey("Radiohead", "Reckoner") && (it.Plays != 2 || it.Name != "RECKONER" || it.Artist != "radiohead") {
			t.Errorf("Reckoner %+v: want 2 plays spelled as the latest listen", it)
		}
	}
	raw, _ := v.stores[0].Get("alice|2026-03-08")
	if lean, err := aggregator.DecodeDay(raw); err != nil || lean.Seen() != 0 || lean.Total != 3 {
		t.Errorf("stored day keeps its seen set or lost its total: %v %+v", err, lean)
	}

	// The date rolls over: 2026-03-08 leaves the window.
	now.t = now.t.Add(24 * time.Hour)
	if n := v.Prune(now.t); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if d := v.Get("alice", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)); d != nil {
		t.Error("a pruned day is still there")
	}
	// An update of a day that left the window is skipped (and dropped).
	tt.Consume(table, "bob|2026-03-08", d)
	if d := v.Get("bob", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)); d != nil {
		t.Error("an old day was kept")
	}
	// A deletion removes the day.
	tt.Consume(table, "bob|2026-03-09", nil)
	if d := v.Get("bob", time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)); d != nil {
		t.Error("a deleted day is still there")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Days: -1}).Validate(); err == nil {
		t.Error("negative days accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestDayStoreIterators(t *testing.T) {
	s := newDayStore(nil)
	for _, k := range []string{"b|2026-01-02", "a|2026-01-01", "a|2026-01-03", "c|2026-01-01"} {
		_ = s.Set(k, []byte(k))
	}
	it, _ := s.Iterator()
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if len(keys) != 4 || keys[0] != "a|2026-01-01" || keys[3] != "c|2026-01-01" {
		t.Fatalf("iterator order %v", keys)
	}
	it, _ = s.IteratorWithRange([]byte("a|"), nil)
	keys = nil
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if len(keys) != 2 {
		t.Fatalf("prefix iterator %v", keys)
	}
	it, _ = s.Iterator()
	if !it.Seek([]byte("b")) || string(it.Key()) != "b|2026-01-02" {
		t.Fatalf("seek: %s", it.Key())
	}
	if n := s.prune("2026-01-02"); n != 2 || s.len() != 2 {
		t.Fatalf("pruned %d, left %d", n, s.len())
	}
	if off, _ := s.GetOffset(-2); off != -2 {
		t.Fatal(off)
	}
	_ = s.SetOffset(7)
	if off, _ := s.GetOffset(-2); off != 7 {
		t.Fatal(off)
	}
}
