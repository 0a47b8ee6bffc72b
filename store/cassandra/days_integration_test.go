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
// (a bigint holds the uint64's bits), an empty artist left unset, a write
// with a lower timestamp losing, user_days oldest first, and every read
// reported once.
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
	rows := []topk.EntityItem{
		{Entity: topk.Artists, Item: topk.Item{Key: 7, Name: "Radiohead", Plays: 3}},
		{Entity: topk.Albums, Item: topk.Item{Key: 9, Name: "In Rainbows", Artist: "Radiohead", Plays: 2}},
		{Entity: topk.Tracks, Item: topk.Item{Key: 1<<63 + 5, Name: "Reckoner", Artist: "Radiohead", Plays: 2}},
		{Entity: topk.Tracks, Item: topk.Item{Key: 12, Name: "Nude", Artist: "Radiohead", Plays: 1}},
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
	}
	days := []topk.DayTotal{{Day: day.AddDate(0, 0, -1), Plays: 4}, {Day: day, Plays: 3}, {Day: day.AddDate(0, 0, 1), Plays: 5}}
	if err := st.WriteUserDays(ctx, "ann", days); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteUserDays(ctx, "ann", []topk.DayTotal{{Day: day, Plays: 2}}); err != nil { // older, loses
		t.Fatal(err)
	}
	got, err := st.UserDays(ctx, "ann", day.AddDate(0, 0, -1), day)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(days[:2]) {
		t.Errorf("user_days %v, want %v (oldest first, the higher total)", got, days[:2])
	}
	if want := map[string]int{"day_items": 1, "month_items": 1, "year_items": 1, "user_days": 1}; fmt.Sprint(reads) != fmt.Sprint(want) {
		t.Errorf("reads reported %v, want %v", reads, want)
	}
}
