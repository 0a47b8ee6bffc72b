package flusher

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// reckoner is the msid of dayWith's listens (play's artist and track).
var reckoner = listen.MSID("Radiohead", "Reckoner")

// cellTS is the write timestamp of a row of the model store.
func (m *memStore) cellTS(t table, user string, part any, ik itemKey) (int64, topk.EntityItem, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.parts[partName(t, user, part)][ik]
	if c == nil {
		return 0, topk.EntityItem{}, false
	}
	return c.ts, c.r, true
}

// A delete takes a day from 5 plays (version 5) to 4 (version 6): the
// flusher writes the 4 with a higher timestamp than the 5, so it wins
// even when the 5 is replayed after it, and the rollups follow.
func TestADeleteIsWrittenOverTheHigherTotal(t *testing.T) {
	st := newMemStore(1)
	f := newFlusher(quietConfig(), st)
	ctx := context.Background()
	five := dayWith(5)
	four := dayWith(5)
	if got := four.Delete(2, reckoner); got != aggregator.Removed {
		t.Fatalf("Delete = %v", got)
	}
	if four.Total != 4 || four.Version != 6 {
		t.Fatalf("after the delete: total %d version %d, want 4 and 6", four.Total, four.Version)
	}
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", five)}); err != nil {
		t.Fatal(err)
	}
	// the newer state, then a replay of the older in one batch, then the
	// older alone: the 4 stays
	for _, batch := range [][]*aggregator.Day{{four, five}, {five}} {
		var recs []*sarama.ConsumerMessage
		for _, d := range batch {
			recs = append(recs, recOf("ann|2026-03-01", d))
		}
		if err := f.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		ts, row, ok := st.cellTS(dayItems, "ann", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), itemKey{topk.Tracks, play(0, "Reckoner").TrackKey})
		if !ok || ts != 6 || row.Plays != 4 {
			t.Errorf("day_items track: plays %d at %d (%v), want 4 at 6", row.Plays, ts, ok)
		}
		_, days := st.snapshot()
		if got := days["ann|2026-03-01"]; got != 4 {
			t.Errorf("user_days: %d plays, want 4", got)
		}
		for _, c := range []struct {
			t    table
			part any
		}{{monthItems, 202603}, {yearItems, 2026}} {
			if got := st.total(c.t, "ann", c.part); got != 4 {
				t.Errorf("%s: total %d, want 4", c.t, got)
			}
			ts, _, _ := st.cellTS(c.t, "ann", c.part, itemKey{topk.Tracks, play(0, "Reckoner").TrackKey})
			if ts != 6 {
				t.Errorf("%s written at %d, want 6 (the day's version)", c.t, ts)
			}
		}
	}
}

// A day whose listens are all deleted (total 0, version 2n) is written:
// its rows and its user_days row with plays 0, over the earlier values,
// and the rollups' rows of its items become 0 as well, while the other
// days' plays stay.
func TestADayDeletedToZeroWritesZeroRows(t *testing.T) {
	st := newMemStore(1)
	f := newFlusher(quietConfig(), st)
	ctx := context.Background()
	d := &aggregator.Day{}
	d.Add(play(1, "Reckoner"))
	d.Add(play(2, "Nude"))
	other := dayWith(3) // another day of the month, Reckoner only
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", d), recOf("ann|2026-03-02", other)}); err != nil {
		t.Fatal(err)
	}
	d.Delete(1, reckoner)
	d.Delete(2, listen.MSID("Radiohead", "Nude"))
	if d.Total != 0 || d.Version != 4 {
		t.Fatalf("total %d version %d, want 0 and 4", d.Total, d.Version)
	}
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", d)}); err != nil {
		t.Fatal(err)
	}
	items, days := st.snapshot()
	if got, ok := days["ann|2026-03-01"]; !ok || got != 0 {
		t.Errorf("user_days: %d plays (%v), want a row with 0", got, ok)
	}
	day := items[partName(dayItems, "ann", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))]
	if len(day) != 4 { // two tracks, an artist, an album
		t.Errorf("day_items has %d rows, want 4", len(day))
	}
	for ik, r := range day {
		if r.Plays != 0 {
			t.Errorf("day_items %v: %d plays, want 0", ik, r.Plays)
		}
	}
	for _, c := range []struct {
		t    table
		part any
	}{{monthItems, 202603}, {yearItems, 2026}} {
		rows := items[partName(c.t, "ann", c.part)]
		nude := rows[itemKey{topk.Tracks, play(0, "Nude").TrackKey}]
		if nude.Plays != 0 || nude.Name != "Nude" {
			t.Errorf("%s: Nude %+v, want a row with 0 plays", c.t, nude)
		}
		for _, e := range []topk.Entity{topk.Tracks, topk.Artists, topk.Albums} {
			const want = 3 // the other day's (Reckoner, Radiohead, In Rainbows); Nude's is 0
			var got int64
			for ik, r := range rows {
				if ik.entity == e {
					got += r.Plays
				}
			}
			if got != want {
				t.Errorf("%s %s: %d plays, want %d (the other day's)", c.t, e, got, want)
			}
		}
		ts, _, _ := st.cellTS(c.t, "ann", c.part, itemKey{topk.Tracks, play(0, "Nude").TrackKey})
		if ts != 4+3 {
			t.Errorf("%s written at %d, want 7 (the sum of the days' versions)", c.t, ts)
		}
	}
}

// A day goes 5 plays (version 5) → 4 (6) → 5 (7) through another
// instance: an instance that cached the day at 5 plays must not take its
// rows for the current state (same plays, another version): it reads the
// day back, and the month is the sum of the current states.
func TestTheCacheIsKeyedByVersion(t *testing.T) {
	st := newMemStore(1)
	x, y := newFlusher(quietConfig(), st), newFlusher(quietConfig(), st)
	ctx := context.Background()
	d := dayWith(5)
	if err := x.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", d)}); err != nil {
		t.Fatal(err)
	}
	d.Delete(0, reckoner)
	if err := y.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", d)}); err != nil {
		t.Fatal(err)
	}
	d.Add(play(100, "Nude"))
	if d.Total != 5 || d.Version != 7 {
		t.Fatalf("total %d version %d, want 5 and 7", d.Total, d.Version)
	}
	if err := y.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", d)}); err != nil {
		t.Fatal(err)
	}
	if !x.cache.has(dayKey("ann", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), 5) {
		t.Fatal("x does not hold the day's version 5")
	}
	r0 := st.reads[dayItems].Load()
	if err := x.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-02", dayWith(2))}); err != nil {
		t.Fatal(err)
	}
	if n := st.reads[dayItems].Load() - r0; n != 1 {
		t.Errorf("x read %d days, want 1 (the day changed elsewhere, same plays, newer version)", n)
	}
	items, _ := st.snapshot()
	month := items[partName(monthItems, "ann", 202603)]
	if got := month[itemKey{topk.Tracks, play(0, "Nude").TrackKey}].Plays; got != 1 {
		t.Errorf("month: Nude %d plays, want 1", got)
	}
	if got := month[itemKey{topk.Tracks, play(0, "Reckoner").TrackKey}].Plays; got != 4+2 {
		t.Errorf("month: Reckoner %d plays, want 6", got)
	}
	if got := st.total(yearItems, "ann", 2026); got != 7 {
		t.Errorf("year total %d, want 7", got)
	}
	// and the cache now holds version 7 (read whole), not 5
	if !x.cache.has(dayKey("ann", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), 7) {
		t.Error("x did not remember the day read back at version 7")
	}
}

// Rollup rows with plays 0 carry the item only: a spelling or an artist
// of a day where the item has no plays left does not show in the sum.
func TestRollupTakesNothingButTheItemFromZeroRows(t *testing.T) {
	zero := entityItem(topk.Tracks, 1, "SONG", "BAND", 0)
	zero.First = 5
	one := entityItem(topk.Tracks, 1, "Song", "Band", 2)
	one.First = 9
	for _, order := range [][]topk.EntityItem{{zero, one}, {one, zero}} {
		r := newRollup()
		for _, x := range order {
			r.add(x)
		}
		rows, total := r.result()
		if len(rows) != 1 || total != 2 {
			t.Fatalf("%d rows, total %d", len(rows), total)
		}
		if got := rows[0].Item; got.Name != "Song" || got.Artist != "Band" || got.First != 9 || got.Plays != 2 || got.Spellings != nil {
			t.Errorf("sum %+v, want Song by Band, 2 plays, first 9, no other spelling", got)
		}
	}
	r := newRollup()
	r.add(zero)
	r.add(entityItem(topk.Tracks, 1, "Other", "", 0))
	r.add(entityItem(topk.Artists, 3, "BAND", "", 1))
	rows, _ := r.result()
	if len(rows) != 2 || rows[0].Plays != 0 || rows[0].Name != "SONG" || rows[1].Entity != topk.Artists {
		t.Errorf("rows %+v, want the 0-play track first (the first day's row), then the artist", rows)
	}
}
