//go:build integration

package flusher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/store/cassandra"
)

// Days of one month and year spelling a track and its artist differently
// (one listen per day, so each day row has one spelling and its first is
// that listen): the month and year rollups in Cassandra hold every
// spelling with its summed plays and earliest first listen, and show the
// majority spelling; on a tie of plays the one first played earlier.
func TestIntegrationRollupsShowTheMajoritySpelling(t *testing.T) {
	w := newEmptyWorld(t, partitions, nil)
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	const reckoner, nude, radiohead = 1001, 1002, 11
	listens := []struct {
		day       string
		sec       uint32
		track, by string
		trackKey  uint64
	}{
		{day: "2026-03-01", sec: 3600, track: "Reckoner", by: "RADIOHEAD", trackKey: reckoner},
		{day: "2026-03-02", sec: 60, track: "RECKONER", by: "RADIOHEAD", trackKey: reckoner},
		{day: "2026-03-03", sec: 100, track: "Reckoner", by: "RADIOHEAD", trackKey: reckoner},
		{day: "2026-03-04", sec: 10, track: "RECKONER", by: "Radiohead", trackKey: reckoner},
		{day: "2026-03-05", sec: 5, track: "Nude", by: "Radiohead", trackKey: nude},
		{day: "2026-04-01", sec: 0, track: "RECKONER", by: "Radiohead", trackKey: reckoner},
	}
	for _, l := range listens {
		key := "ann|" + l.day
		d := &aggregator.Day{}
		d.Add(aggregator.Play{Sec: l.sec, TrackKey: l.trackKey, ArtistKey: radiohead, Track: l.track, Artist: l.by})
		w.keys = append(w.keys, key)
		w.states[key] = [][]byte{d.Encode()}
	}
	w.produce(0, 1)
	w.flusher(flusher.Config{FlushInterval: 100 * time.Millisecond})
	w.converge(40 * time.Second)

	at := func(d string, sec int64) int64 { return day(d).Unix() + sec }
	spelled := func(e topk.Entity, key uint64, artist string, sp ...topk.Spelling) topk.EntityItem {
		x := topk.EntityItem{Entity: e, Item: topk.Item{Key: key, Artist: artist}}
		x.SetSpellings(sp)
		return x
	}
	march := []topk.EntityItem{
		// RADIOHEAD 3 plays, Radiohead 2 (the latest)
		spelled(topk.Artists, radiohead, "", topk.Spelling{Name: "RADIOHEAD", Plays: 3, First: at("2026-03-01", 3600)},
			topk.Spelling{Name: "Radiohead", Plays: 2, First: at("2026-03-04", 10)}),
		// 2 each: Reckoner was played first (RECKONER last); the artist
		// column is the first day's
		spelled(topk.Tracks, reckoner, "RADIOHEAD", topk.Spelling{Name: "RECKONER", Plays: 2, First: at("2026-03-02", 60)},
			topk.Spelling{Name: "Reckoner", Plays: 2, First: at("2026-03-01", 3600)}),
		spelled(topk.Tracks, nude, "Radiohead", topk.Spelling{Name: "Nude", Plays: 1, First: at("2026-03-05", 5)}),
	}
	year := []topk.EntityItem{
		// 3 each: RADIOHEAD was played first (Radiohead last)
		spelled(topk.Artists, radiohead, "", topk.Spelling{Name: "RADIOHEAD", Plays: 3, First: at("2026-03-01", 3600)},
			topk.Spelling{Name: "Radiohead", Plays: 3, First: at("2026-03-04", 10)}),
		// RECKONER 3 plays, Reckoner 2
		spelled(topk.Tracks, reckoner, "RADIOHEAD", topk.Spelling{Name: "RECKONER", Plays: 3, First: at("2026-03-02", 60)},
			topk.Spelling{Name: "Reckoner", Plays: 2, First: at("2026-03-01", 3600)}),
		march[2],
	}
	for _, c := range []struct {
		name string
		want []topk.EntityItem
	}{{"RADIOHEAD", march[:1]}, {"Reckoner", march[1:2]}, {"RADIOHEAD", year[:1]}, {"RECKONER", year[1:2]}} {
		if c.want[0].Name != c.name {
			t.Fatalf("test data: %+v, want the name %s", c.want[0], c.name)
		}
	}
	st := cassandra.NewDayStore(w.session, cassandra.DayStoreConfig{})
	ctx := t.Context()
	for _, c := range []struct {
		p    topk.Period
		want []topk.EntityItem
	}{{topk.MonthPeriod(day("2026-03-01")), march}, {topk.YearPeriod(day("2026-01-01")), year}} {
		rows, _, err := st.Items(ctx, c.p, "ann")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range rows {
			got[fmt.Sprintf("%+v", r)] = true
		}
		for _, r := range c.want {
			if !got[fmt.Sprintf("%+v", r)] {
				t.Errorf("%v: no row %+v in %+v", c.p, r, rows)
			}
		}
		if len(rows) != len(c.want) {
			t.Errorf("%v: %d rows, want %d", c.p, len(rows), len(c.want))
		}
	}
}
