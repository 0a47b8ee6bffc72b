package flusher

import (
	"io"
	"log/slog"
	"reflect"
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

// coalesce keeps each user-day's state with the highest version, whatever
// its total: a delete makes a newer state with fewer plays, and a day
// whose listens were all deleted (total 0) is kept; a state with no change
// at all (version 0) is not.
func TestCoalesceKeepsTheHighestVersionPerUserDay(t *testing.T) {
	rec := func(off int64, key string, d *aggregator.Day) *sarama.ConsumerMessage {
		m := &sarama.ConsumerMessage{Offset: off, Key: []byte(key)}
		if d != nil {
			m.Value = d.Encode()
		}
		return m
	}
	deleted := dayWith(5) // 4 plays, version 6
	deleted.Delete(1, reckoner)
	none := dayWith(1) // 0 plays, version 2
	none.Delete(0, reckoner)
	batch := []*sarama.ConsumerMessage{
		rec(0, "alice|2026-11-28", dayWith(2)),
		rec(1, "alice|2026-11-28", dayWith(5)),
		rec(2, "bob|2026-11-28", dayWith(1)),
		rec(3, "alice|2026-11-28", dayWith(3)), // an older state arriving late
		rec(4, "alice|2026-11-27", nil),        // a tombstone
		rec(5, "no-day", dayWith(1)),
		{Offset: 6, Key: []byte("carol|2026-11-28"), Value: []byte{1, 2, 3}},
		rec(7, "dave|2026-11-28", &aggregator.Day{}),
		rec(8, "erin|2026-11-28", deleted),
		rec(9, "erin|2026-11-28", dayWith(5)), // more plays, older: loses
		rec(10, "fay|2026-11-28", dayWith(1)),
		rec(11, "fay|2026-11-28", none),
	}
	f := testFlusher()
	got := f.coalesce(batch)
	if len(got) != 4 {
		t.Fatalf("%d user-days, want 4 (alice, bob, erin, fay)", len(got))
	}
	if got[0].user != "alice" || got[0].day.Format("2006-01-02") != "2026-11-28" || got[0].d.Total != 5 {
		t.Errorf("alice: %s %v total %d, want the state with 5 plays", got[0].user, got[0].day, got[0].d.Total)
	}
	if got[1].user != "bob" || got[1].d.Total != 1 {
		t.Errorf("bob: %+v", got[1])
	}
	if got[2].user != "erin" || got[2].d.Total != 4 || got[2].d.Version != 6 {
		t.Errorf("erin: total %d version %d, want the state after the delete (4 plays, version 6)", got[2].d.Total, got[2].d.Version)
	}
	if got[3].user != "fay" || got[3].d.Total != 0 || got[3].d.Version != 2 {
		t.Errorf("fay: total %d version %d, want the day deleted to 0 (version 2)", got[3].d.Total, got[3].d.Version)
	}
	if r, ok := f.Rank(batch[8]); !ok || r != 6 {
		t.Errorf("Rank of erin's newer state %d %v, want its version 6", r, ok)
	}
	if r, ok := f.Rank(batch[9]); !ok || r != 5 {
		t.Errorf("Rank of erin's older state %d %v, want its version 5", r, ok)
	}
}

// A rollup sums each spelling's plays (a spelling's first listen is its
// earliest) and shows the majority spelling: most plays, ties the earliest
// first listen; periods that already hold several spellings (a month into
// a year) add theirs; the order of the periods changes nothing but the
// artist (the first period's); tracks come last.
func TestRollupSumsSpellingsAndTakesTheMajority(t *testing.T) {
	spelled := func(e topk.Entity, key uint64, artist string, sp ...topk.Spelling) topk.EntityItem {
		x := topk.EntityItem{Entity: e, Item: topk.Item{Key: key, Artist: artist}}
		x.SetSpellings(sp)
		return x
	}
	at := func(e topk.Entity, key uint64, name, artist string, plays, first int64) topk.EntityItem {
		x := entityItem(e, key, name, artist, plays)
		x.First = first
		return x
	}
	periods := [][]topk.EntityItem{
		{
			at(topk.Tracks, 1, "reckoner", "radiohead", 2, 100),
			at(topk.Artists, 7, "radiohead", "", 3, 200),
			spelled(topk.Tracks, 2, "radiohead", topk.Spelling{Name: "Nude", Plays: 1, First: 300}, topk.Spelling{Name: "NUDE", Plays: 2, First: 310}),
		},
		{
			at(topk.Albums, 9, "In Rainbows", "Radiohead", 3, 50),
			at(topk.Tracks, 1, "Reckoner", "Radiohead", 4, 500),
			at(topk.Artists, 7, "Radiohead", "", 3, 50),
			at(topk.Tracks, 2, "Nude", "Radiohead", 2, 400),
			at(topk.Tracks, 1, "reckoner", "Radiohead", 1, 90),
		},
	}
	want := []topk.EntityItem{
		spelled(topk.Artists, 7, "", topk.Spelling{Name: "Radiohead", Plays: 3, First: 50}, topk.Spelling{Name: "radiohead", Plays: 3, First: 200}),
		at(topk.Albums, 9, "In Rainbows", "Radiohead", 3, 50),
		spelled(topk.Tracks, 1, "radiohead", topk.Spelling{Name: "Reckoner", Plays: 4, First: 500}, topk.Spelling{Name: "reckoner", Plays: 3, First: 90}),
		spelled(topk.Tracks, 2, "radiohead", topk.Spelling{Name: "NUDE", Plays: 2, First: 310}, topk.Spelling{Name: "Nude", Plays: 3, First: 300}),
	}
	if want[0].Name != "Radiohead" || want[2].Name != "Reckoner" || want[2].First != 500 || want[3].Name != "Nude" {
		t.Fatalf("test data: %+v", want)
	}
	for _, reversed := range []bool{false, true} {
		r := newRollup()
		for i := range periods {
			if reversed {
				i = len(periods) - 1 - i
			}
			for _, x := range periods[i] {
				r.add(x)
			}
		}
		rows, total := r.result()
		if total != 12 {
			t.Errorf("reversed %v: total %d, want 12 (track plays)", reversed, total)
		}
		if len(rows) != len(want) {
			t.Fatalf("reversed %v: rows %+v, want %+v", reversed, rows, want)
		}
		for i := range want {
			w := want[i]
			if reversed && w.Artist != "" {
				w.Artist = "Radiohead" // the first period's
			}
			if !reflect.DeepEqual(rows[i], w) {
				t.Errorf("reversed %v: row %d = %+v, want %+v (tracks last)", reversed, i, rows[i], w)
			}
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
