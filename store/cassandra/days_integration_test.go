//go:build integration

package cassandra_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/cassandra"
)

// The flusher's store on the real tables: rows written in several batches
// read back with their write timestamps, keys with the high bit set kept
// (a bigint holds the uint64's bits), an empty artist left unset, First
// and spellings kept, a write with a lower timestamp losing, a newer row
// with one spelling replacing an older row's spellings, user_days oldest
// first, and every read reported once.
func TestIntegrationDayStore(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	reads := map[string]int{}
	st := cassandra.NewDayStore(s, cassandra.DayStoreConfig{Concurrency: 2, MaxRowsPerBatch: 2, OnRead: func(table string) {
		mu.Lock()
		reads[table]++
		mu.Unlock()
	}})
	day := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
	at := day.Unix() + 3600
	artist := topk.Item{Key: 7, Artist: ""}
	artist.SetSpellings([]topk.Spelling{{Name: "RADIOHEAD", Plays: 1, First: at}, {Name: "Radiohead", Plays: 2, First: at + 60}})
	rows := []topk.EntityItem{
		{Entity: topk.Artists, Item: artist},
		{Entity: topk.Albums, Item: topk.Item{Key: 9, Name: "In Rainbows", Artist: "Radiohead", Plays: 2, First: at}},
		{Entity: topk.Tracks, Item: topk.Item{Key: 1<<63 + 5, Name: "Reckoner", Artist: "Radiohead", Plays: 2, First: at + 60}},
		{Entity: topk.Tracks, Item: topk.Item{Key: 12, Name: "Nude", Artist: "Radiohead", Plays: 1, First: at}},
	}
	if len(artist.Spellings) != 2 || artist.Name != "Radiohead" {
		t.Fatalf("test data: %+v", artist)
	}
	for _, p := range []topk.Period{topk.DayPeriod(day), topk.MonthPeriod(day), topk.YearPeriod(day)} {
		if err := st.WriteItems(ctx, p, "ann", rows, 3); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		// an older state (lower timestamp) written late loses
		if err := st.WriteItems(ctx, p, "ann", rows[3:], 1); err != nil {
			t.Fatal(err)
		}
		got, ts, err := st.Items(ctx, p, "ann")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, r := range rows {
			want[fmt.Sprintf("%+v@3", r)] = true
		}
		if len(got) != len(rows) || len(ts) != len(got) {
			t.Fatalf("%v: read %+v %v, want %+v at 3", p, got, ts, rows)
		}
		for i, r := range got {
			if k := fmt.Sprintf("%+v@%d", r, ts[i]); !want[k] {
				t.Errorf("%v: read %s, want one of %v", p, k, want)
			}
		}
		// a newer row of the artist with one spelling: no list left over
		one := topk.EntityItem{Entity: topk.Artists, Item: topk.Item{Key: 7, Name: "radiohead", Plays: 4, First: at - 60}}
		if err := st.WriteItems(ctx, p, "ann", []topk.EntityItem{one}, 4); err != nil {
			t.Fatal(err)
		}
		got, _, err = st.Items(ctx, p, "ann")
		if err != nil || len(got) != len(rows) {
			t.Fatalf("%v: %+v %v", p, got, err)
		}
		for _, r := range got {
			if r.Entity == one.Entity && fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", one) {
				t.Errorf("%v: after the row with one spelling: %+v, want %+v", p, r, one)
			}
		}
	}
	// versions, not plays, order the writes: a day with a delete has
	// fewer plays at a higher version; plays 0 is a row too
	days := []topk.DayTotal{{Day: day.AddDate(0, 0, -1), Plays: 0, Version: 6}, {Day: day, Plays: 3, Version: 5}, {Day: day.AddDate(0, 0, 1), Plays: 5, Version: 5}}
	if err := st.WriteUserDays(ctx, "ann", days); err != nil {
		t.Fatal(err)
	}
	older := []topk.DayTotal{{Day: day, Plays: 4, Version: 4}, {Day: day.AddDate(0, 0, -1), Plays: 3, Version: 3}}
	if err := st.WriteUserDays(ctx, "ann", older); err != nil { // older versions, more plays: they lose
		t.Fatal(err)
	}
	got, err := st.UserDays(ctx, "ann", day.AddDate(0, 0, -1), day)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(days[:2]) {
		t.Errorf("user_days %v, want %v (oldest first, the higher version, WRITETIME as Version)", got, days[:2])
	}
	if want := map[string]int{"day_items": 2, "month_items": 2, "year_items": 2, "user_days": 1}; fmt.Sprint(reads) != fmt.Sprint(want) {
		t.Errorf("reads reported %v, want %v", reads, want)
	}
}
