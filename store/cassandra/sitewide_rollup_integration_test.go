//go:build integration

package cassandra_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

// Month rollups on the real tables. Rows of three months (two entities,
// 40 items, several buckets per day, older versions written after newer
// ones) are summed by SitewideRange from the day rows; RollUp before
// 2026-01-15 rolls up November and December (both entities: 4 months)
// and 2025 (2 years), and nothing on a second call; each month rollup row
// equals an independent sum of the newest rows; SitewideRange gives the
// same answers from the rollups, reading a year's 16 partitions for all
// of 2025 and a month's for all of a month. That it reads them: a day row
// written into December without RollupTouched shows in a range of part
// of December (days) but not in one of all of December or 2025 until
// RollupTouched recomputes its item's month and year; the first row of a
// month of 2025 that had none is recomputed into 2025 (its month is rolled
// up by the next RollUp); a rollup written with a smaller timestamp (a
// recompute from older rows) changes nothing; a flush of 2,960 late rows
// of new items of December is recomputed into December's and 2025's
// rollups by one RollupTouched; a row written into January (no roll-up
// started) is not recomputed and January reads its days.
func TestIntegrationSitewideRollups(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, 3*time.Minute)
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := cassandra.NewSitewideStore(s, cassandra.SitewideStoreConfig{Concurrency: 4, MaxRowsPerBatch: 50})
	r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer r.Close()

	rng := rand.New(rand.NewPCG(7, 11))
	newest := map[sitewide.Key]cassandra.SitewideRow{}
	var rows, stale []cassandra.SitewideRow
	start := swDay("2025-11-01")
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
		for item := uint64(1); item <= 40; item++ {
			for range 1 + rng.IntN(6) {
				d := start.AddDate(0, 0, rng.IntN(92)) // 2025-11-01 … 2026-01-31
				for _, b := range []uint32{uint32(rng.IntN(8)), 1024 + uint32(rng.IntN(64))} {
					k := sitewide.Key{Entity: e, Item: item<<8 | uint64(e[0]), Day: d, Bucket: b}
					v := uint64(2 + rng.IntN(50))
					row := cassandra.SitewideRow{Key: k, Version: v, Plays: int64(rng.IntN(20)), Listeners: 1 + rng.IntN(5),
						Name: fmt.Sprintf("%s %d", e, item), Artist: "A"}
					if old, ok := newest[k]; !ok || v > old.Version {
						newest[k] = row
					}
					rows = append(rows, row)
					old := row
					old.Version, old.Plays = v-1, 1000 // an older value, written last
					stale = append(stale, old)
				}
			}
		}
	}
	if err := st.WriteSitewide(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteSitewide(ctx, stale); err != nil {
		t.Fatal(err)
	}
	// want is the independent sum of the newest rows per item over
	// [from, to].
	want := func(e topk.Entity, from, to string) string {
		sums := map[uint64]*topk.SitewideItem{}
		best := map[uint64]int64{} // plays of the row the name is from
		for k, row := range newest {
			day := k.Day.Format(topk.DayLayout)
			if k.Entity != e || day < from || day > to {
				continue
			}
			it := sums[k.Item]
			if it == nil {
				it = &topk.SitewideItem{Item: topk.Item{Key: k.Item, Name: row.Name, Artist: row.Artist}}
				sums[k.Item] = it
			}
			it.Plays += row.Plays
			it.Listeners += int64(row.Listeners)
			if b := best[k.Item]; row.Plays > b || row.Plays == b && row.Plays > 0 && row.Name < it.Name {
				best[k.Item], it.Name, it.Artist = row.Plays, row.Name, row.Artist
			}
		}
		var out []topk.SitewideItem
		for _, it := range sums {
			if it.Plays > 0 {
				out = append(out, *it)
			}
		}
		return showSitewide(out)
	}
	// check compares a range with want; reads, unless 0, is how many
	// reads it must take (the states, then 16 per month or year read).
	checkReads := func(what string, e topk.Entity, from, to, want string, reads int) {
		t.Helper()
		g := newReadGate(4)
		got, err := r.SitewideRange(ctx, e, swDay(from), swDay(to), g.read)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if gs := showSitewide(got); gs != want {
			t.Errorf("%s: %s %s..%s:\n%swant\n%s", what, e, from, to, gs, want)
		}
		if n, _, _ := g.figures(); reads != 0 && n != reads {
			t.Errorf("%s: %s %s..%s: %d reads, want %d", what, e, from, to, n, reads)
		}
	}
	check := func(what string, e topk.Entity, from, to, want string) {
		t.Helper()
		checkReads(what, e, from, to, want, 0)
	}
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
		check("before the roll-up", e, "2025-11-01", "2026-01-31", want(e, "2025-11-01", "2026-01-31"))
	}

	n, err := st.RollUp(ctx, swDay("2026-01-15"), nil)
	if err != nil || n != (cassandra.RolledUp{Months: 4, Years: 2}) {
		t.Fatalf("RollUp: %+v, %v; want 4 months (tracks and artists, November and December) and 2 years (2025)", n, err)
	}
	if n, err := st.RollUp(ctx, swDay("2026-01-15"), nil); err != nil || n != (cassandra.RolledUp{}) {
		t.Fatalf("RollUp again: %+v, %v; want nothing", n, err)
	}
	// The rollup rows themselves.
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
		for _, m := range []string{"2025-11", "2025-12"} {
			plays := map[uint64]int64{}
			for k, row := range newest {
				if k.Entity == e && k.Day.Format("2006-01") == m {
					plays[k.Item] += row.Plays
				}
			}
			got := map[uint64]int64{}
			for shard := range cassandra.SitewideShards {
				it := s.Query(`SELECT item, plays FROM sitewide_month_items WHERE entity = ? AND month = ? AND shard = ?`, string(e), m, shard).Iter()
				var item, p int64
				for it.Scan(&item, &p) {
					got[uint64(item)] = p
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(plays) {
				t.Errorf("rollups of %s %s:\n%v\nwant\n%v", e, m, got, plays)
			}
		}
	}
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
		// 1 + 16 × (November, December: rollups; January: days)
		checkReads("after the roll-up", e, "2025-11-01", "2026-01-31", want(e, "2025-11-01", "2026-01-31"), 49)
		// 1 + 16 × (2025: its year rollups; January: days)
		checkReads("after the roll-up, all of 2025", e, "2025-01-01", "2026-01-31", want(e, "2025-01-01", "2026-01-31"), 33)
		check("after the roll-up, part of December", e, "2025-12-02", "2026-01-31", want(e, "2025-12-02", "2026-01-31"))
	}

	// A late row of December, written without its recompute: a range of
	// all of December reads the rollups, which do not have it yet.
	late := cassandra.SitewideRow{Key: sitewide.Key{Entity: topk.Tracks, Item: 1<<8 | uint64('t'), Day: swDay("2025-12-24"), Bucket: 5000},
		Version: 9, Plays: 500, Listeners: 7, Name: "Late", Artist: "A"}
	if err := st.WriteSitewide(ctx, []cassandra.SitewideRow{late}); err != nil {
		t.Fatal(err)
	}
	before := want(topk.Tracks, "2025-12-01", "2025-12-31")
	yearBefore := want(topk.Tracks, "2025-01-01", "2025-12-31")
	newest[late.Key] = late
	check("a late row not yet rolled up, all of December (rollups)", topk.Tracks, "2025-12-01", "2025-12-31", before)
	check("a late row not yet rolled up, all of 2025 (year rollups)", topk.Tracks, "2025-01-01", "2025-12-31", yearBefore)
	check("a late row, part of December (days)", topk.Tracks, "2025-12-02", "2025-12-31", want(topk.Tracks, "2025-12-02", "2025-12-31"))
	if err := st.RollupTouched(ctx, []cassandra.SitewideRow{late}); err != nil {
		t.Fatal(err)
	}
	check("the late row recomputed", topk.Tracks, "2025-12-01", "2025-12-31", want(topk.Tracks, "2025-12-01", "2025-12-31"))
	check("the late row recomputed, all", topk.Tracks, "2025-11-01", "2026-01-31", want(topk.Tracks, "2025-11-01", "2026-01-31"))
	check("the late row recomputed, all of 2025", topk.Tracks, "2025-01-01", "2025-12-31", want(topk.Tracks, "2025-01-01", "2025-12-31"))

	// The first row of a month of 2025 that had none when 2025 was rolled
	// up: the year's started flag makes RollupTouched recompute the
	// item's March and its year; March itself is not done and reads its
	// days.
	march := late
	march.Key.Day, march.Plays, march.Version = swDay("2025-03-09"), 40, 4
	if err := st.WriteSitewide(ctx, []cassandra.SitewideRow{march}); err != nil {
		t.Fatal(err)
	}
	if err := st.RollupTouched(ctx, []cassandra.SitewideRow{march}); err != nil {
		t.Fatal(err)
	}
	newest[march.Key] = march
	check("a new month of a rolled-up year", topk.Tracks, "2025-01-01", "2025-12-31", want(topk.Tracks, "2025-01-01", "2025-12-31"))
	check("a new month of a rolled-up year: the month", topk.Tracks, "2025-03-01", "2025-03-31", want(topk.Tracks, "2025-03-01", "2025-03-31"))
	if n, err := st.RollUp(ctx, swDay("2026-01-15"), nil); err != nil || n != (cassandra.RolledUp{Months: 1}) {
		t.Fatalf("RollUp after the new month: %+v, %v; want March", n, err)
	}
	checkReads("March rolled up", topk.Tracks, "2025-03-01", "2025-03-31", want(topk.Tracks, "2025-03-01", "2025-03-31"), 17)

	// A year rollup summed from older months (a smaller timestamp) loses.
	if err := s.Query(`INSERT INTO sitewide_year_items (entity, year, shard, item, plays, listeners, best, name, artist) VALUES (?, 2025, ?, ?, 1, 1, 1, 'Old', 'A') USING TIMESTAMP 3`,
		string(topk.Tracks), cassandra.SitewideShard(late.Key.Item), int64(late.Key.Item)).Exec(); err != nil {
		t.Fatal(err)
	}
	check("an older year rollup written last", topk.Tracks, "2025-01-01", "2025-12-31", want(topk.Tracks, "2025-01-01", "2025-12-31"))

	// A recompute from older rows (a smaller timestamp) loses.
	if err := s.Query(`INSERT INTO sitewide_month_items (entity, month, shard, item, plays, listeners, best, name, artist) VALUES (?, ?, ?, ?, 1, 1, 1, 'Old', 'A') USING TIMESTAMP 3`,
		string(topk.Tracks), "2025-12", cassandra.SitewideShard(late.Key.Item), int64(late.Key.Item)).Exec(); err != nil {
		t.Fatal(err)
	}
	check("an older rollup written last", topk.Tracks, "2025-12-01", "2025-12-31", want(topk.Tracks, "2025-12-01", "2025-12-31"))

	// A big flush of late rows, as an import of old history writes:
	// 2,960 new items of December, about 185 per shard (more than one
	// recompute read's IN list), recomputed by one RollupTouched into
	// December's and 2025's rollups.
	var big []cassandra.SitewideRow
	for i := range uint64(2960) {
		k := sitewide.Key{Entity: topk.Tracks, Item: 100000 + i, Day: swDay("2025-12-01").AddDate(0, 0, int(i%31)), Bucket: uint32(i % 3)}
		row := cassandra.SitewideRow{Key: k, Version: 5, Plays: int64(1 + i%50), Listeners: 1, Name: fmt.Sprintf("Big %d", i), Artist: "B"}
		big = append(big, row)
		newest[k] = row
	}
	if err := st.WriteSitewide(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := st.RollupTouched(ctx, big); err != nil {
		t.Fatal(err)
	}
	check("a big late flush, all of December (rollups)", topk.Tracks, "2025-12-01", "2025-12-31", want(topk.Tracks, "2025-12-01", "2025-12-31"))
	check("a big late flush, all of 2025 (year rollups)", topk.Tracks, "2025-01-01", "2025-12-31", want(topk.Tracks, "2025-01-01", "2025-12-31"))

	// January: no roll-up started, nothing recomputed, read from days.
	jan := late
	jan.Key.Day, jan.Plays = swDay("2026-01-20"), 300
	if err := st.WriteSitewide(ctx, []cassandra.SitewideRow{jan}); err != nil {
		t.Fatal(err)
	}
	if err := st.RollupTouched(ctx, []cassandra.SitewideRow{jan}); err != nil {
		t.Fatal(err)
	}
	newest[jan.Key] = jan
	var janRollups int
	if err := s.Query(`SELECT COUNT(*) FROM sitewide_month_items WHERE entity = ? AND month = '2026-01' AND shard = ?`,
		string(topk.Tracks), cassandra.SitewideShard(jan.Key.Item)).Scan(&janRollups); err != nil || janRollups != 0 {
		t.Errorf("rollups of January (not started): %d, %v; want none", janRollups, err)
	}
	check("January from its days", topk.Tracks, "2026-01-01", "2026-01-31", want(topk.Tracks, "2026-01-01", "2026-01-31"))
}
