package flusher

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/aggregator"
)

func play(sec uint32, track string) aggregator.Play {
	return aggregator.Play{Sec: sec, TrackKey: uint64(len(track)) + 100, ArtistKey: 7, AlbumKey: 9,
		Track: track, Artist: "Radiohead", Album: "In Rainbows"}
}

// dayWith returns a day state with n plays.
func dayWith(n int) *aggregator.Day {
	d := &aggregator.Day{}
	for i := range n {
		d.Add(play(uint32(i), "Reckoner"))
	}
	return d
}

// entityItem is a row of an item table.
func entityItem(e topk.Entity, key uint64, name, artist string, plays int64) topk.EntityItem {
	return topk.EntityItem{Entity: e, Item: topk.Item{Key: key, Name: name, Artist: artist, Plays: plays}}
}

func testFlusher() *Flusher {
	return newFlusher(Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
}

func TestCoalesceKeepsTheHighestTotalPerUserDay(t *testing.T) {
	rec := func(off int64, key string, d *aggregator.Day) *sarama.ConsumerMessage {
		m := &sarama.ConsumerMessage{Offset: off, Key: []byte(key)}
		if d != nil {
			m.Value = d.Encode()
		}
		return m
	}
	batch := []*sarama.ConsumerMessage{
		rec(0, "alice|2026-11-28", dayWith(2)),
		rec(1, "alice|2026-11-28", dayWith(5)),
		rec(2, "bob|2026-11-28", dayWith(1)),
		rec(3, "alice|2026-11-28", dayWith(3)), // an older state arriving late
		rec(4, "alice|2026-11-27", nil),        // a tombstone
		rec(5, "no-day", dayWith(1)),
		{Offset: 6, Key: []byte("carol|2026-11-28"), Value: []byte{1, 2, 3}},
		rec(7, "dave|2026-11-28", &aggregator.Day{}),
	}
	got := testFlusher().coalesce(batch)
	if len(got) != 2 {
		t.Fatalf("%d user-days, want 2 (alice, bob)", len(got))
	}
	if got[0].user != "alice" || got[0].day.Format("2006-01-02") != "2026-11-28" || got[0].d.Total != 5 {
		t.Errorf("alice: %s %v total %d, want the state with 5 plays", got[0].user, got[0].day, got[0].d.Total)
	}
	if got[1].user != "bob" || got[1].d.Total != 1 {
		t.Errorf("bob: %+v", got[1])
	}
}

func TestRollupSumsAndTakesTheLatestSpelling(t *testing.T) {
	r := newRollup()
	// oldest period first
	r.add(entityItem(topk.Tracks, 1, "reckoner", "radiohead", 2))
	r.add(entityItem(topk.Artists, 7, "radiohead", "", 3))
	r.add(entityItem(topk.Tracks, 2, "Nude", "radiohead", 1))
	r.add(entityItem(topk.Albums, 9, "In Rainbows", "Radiohead", 3))
	r.add(entityItem(topk.Tracks, 1, "Reckoner", "Radiohead", 4))
	r.add(entityItem(topk.Artists, 7, "Radiohead", "", 4))
	rows, total := r.result()
	if total != 7 {
		t.Errorf("total %d, want 7 (track plays)", total)
	}
	want := []topk.EntityItem{
		entityItem(topk.Artists, 7, "Radiohead", "", 7),
		entityItem(topk.Albums, 9, "In Rainbows", "Radiohead", 3),
		entityItem(topk.Tracks, 1, "Reckoner", "Radiohead", 6),
		entityItem(topk.Tracks, 2, "Nude", "radiohead", 1),
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v (tracks last)", i, rows[i], want[i])
		}
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Error("no brokers accepted")
	}
	if _, err := New(Config{Brokers: []string{"x"}}, nil); err == nil {
		t.Error("nil session accepted")
	}
	if err := (Config{Brokers: []string{"x"}, MaxBatchBytes: -1}).Validate(); err == nil {
		t.Error("negative MaxBatchBytes accepted")
	}
	if err := (Config{Brokers: []string{"x"}, CacheBytes: -1}).Validate(); err != nil {
		t.Errorf("CacheBytes -1 (no cache) refused: %v", err)
	}
	if Group("") != "topk-flusher" || Group("t1") != "t1.topk-flusher" {
		t.Error("group names")
	}
	if c := (Config{}).withDefaults(); c.FlushInterval.Seconds() != 1 || c.RollupLinger.Seconds() != 1 || c.MaxBatch != 2000 || c.MaxBatchBytes != 4<<20 || c.Concurrency != 4 || c.CacheBytes != 64<<20 {
		t.Errorf("defaults %+v", c)
	}
	if c := (Config{FlushInterval: 300 * time.Millisecond}).withDefaults(); c.RollupLinger != 300*time.Millisecond {
		t.Errorf("RollupLinger %v, want the flush interval", c.RollupLinger)
	}
	if f := newFlusher(Config{RollupLinger: -1}, nil); f.roll.linger != 0 {
		t.Errorf("RollupLinger -1: rounds wait %v, want 0", f.roll.linger)
	}
}
