//go:build integration

package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/cassandra"
)

// Rows with plays 0 (listens deleted; the flusher writes them over the
// earlier values) are not shown: the first day is the first with plays,
// past more than a page of days with none; days and items with plays 0
// are left out; a user whose days all have 0 plays has no first day.
func TestIntegrationReaderSkipsZeroPlays(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	exec := execer(t, ctx, wiring.Cassandra(cfg.Cassandra))
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 { // more than a page of FirstDay's read
		exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, "bob", start.AddDate(0, 0, i), int64(0))
	}
	first := start.AddDate(0, 0, 40)
	exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, "bob", first, int64(2))
	exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, "bob", first.AddDate(0, 0, 1), int64(0))
	exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, "zed", first, int64(0))
	for _, x := range []struct {
		item  int64
		plays int64
	}{{1, 2}, {2, 0}} {
		exec(`INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "bob", first, "track", x.item, "T", "A", x.plays)
		exec(`INSERT INTO month_items (user_id, month, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "bob", 202512, "track", x.item, "T", "A", x.plays)
		exec(`INSERT INTO year_items (user_id, year, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "bob", 2025, "track", x.item, "T", "A", x.plays)
	}
	r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer r.Close()
	if f, ok, err := r.FirstDay(ctx, "bob"); err != nil || !ok || !f.Equal(first) {
		t.Errorf("first day %v %v %v, want %v", f, ok, err, first)
	}
	if f, ok, err := r.FirstDay(ctx, "zed"); err != nil || ok {
		t.Errorf("first day of a user with only 0 plays: %v %v %v, want none", f, ok, err)
	}
	days, err := r.UserDays(ctx, "bob", start, first.AddDate(0, 1, 0))
	if err != nil || len(days) != 1 || !days[0].Day.Equal(first) || days[0].Plays != 2 {
		t.Errorf("user days %+v %v, want only %v", days, err, first)
	}
	for _, p := range []topk.Period{topk.DayPeriod(first), topk.MonthPeriod(first), topk.YearPeriod(first)} {
		items, err := r.Items(ctx, p, "bob", topk.Tracks)
		if err != nil || len(items) != 1 || items[0].Key != 1 || items[0].Plays != 2 {
			t.Errorf("%v items %+v %v, want only item 1", p, items, err)
		}
	}
}

// The api's reads against the real tables: first day, days in a range
// oldest first, items of a day, month and year partition for one entity,
// raw listens newest first with a position (ties of played_at included),
// the prefix search (case-insensitive, its own partition per first
// character), and a reader on a wrong port failing as unavailable.
func TestIntegrationReader(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	exec := execer(t, ctx, wiring.Cassandra(cfg.Cassandra))
	d := func(s string) time.Time { x, _ := time.Parse("2006-01-02", s); return x }
	for _, day := range []string{"2025-12-30", "2026-01-02", "2026-01-05"} {
		exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, "ann", d(day), int64(3))
	}
	exec(`INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "ann", d("2026-01-02"), "track", int64(-5), "Nude", "Radiohead", int64(2))
	exec(`INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "ann", d("2026-01-02"), "artist", int64(9), "Radiohead", nil, int64(2))
	exec(`INSERT INTO month_items (user_id, month, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "ann", 202601, "track", int64(7), "Reckoner", "Radiohead", int64(4))
	exec(`INSERT INTO year_items (user_id, year, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?)`, "ann", 2025, "album", int64(8), "In Rainbows", "Radiohead", int64(3))
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	for i, id := range []byte{3, 1, 2} { // three listens at the same second, one later
		exec(`INSERT INTO raw_listens (user_id, day, played_at, identity, artist_name, track_name, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			"ann", d("2026-01-02"), at, []byte{id}, "Radiohead", fmt.Sprint("T", id), 1000*i)
	}
	exec(`INSERT INTO raw_listens (user_id, day, played_at, identity, artist_name, track_name, album_name) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		"ann", d("2026-01-02"), at.Add(time.Hour), []byte{9}, "Radiohead", "Later", "In Rainbows")
	for _, u := range []string{"Ann", "annie", "bob", "ÄNN"} {
		exec(cassandra.InsertKnownUser, cassandra.KnownUserArgs(u)...)
	}

	r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if f, ok, err := r.FirstDay(ctx, "ann"); err != nil || !ok || !f.Equal(d("2025-12-30")) {
		t.Fatalf("first day %v %v %v", f, ok, err)
	}
	if _, ok, err := r.FirstDay(ctx, "nobody"); err != nil || ok {
		t.Fatalf("first day of nobody: %v %v", ok, err)
	}
	days, err := r.UserDays(ctx, "ann", d("2026-01-01"), d("2026-01-31"))
	if err != nil || len(days) != 2 || !days[0].Day.Equal(d("2026-01-02")) || days[1].Plays != 3 {
		t.Fatalf("user days %+v %v", days, err)
	}
	// rows without first and spellings (written before 005) count from
	// their period's start and have one spelling
	items, err := r.Items(ctx, topk.DayPeriod(d("2026-01-02")), "ann", topk.Tracks)
	if err != nil || len(items) != 1 || items[0].Key != 1<<64-5 || items[0].Name != "Nude" || items[0].Artist != "Radiohead" ||
		items[0].First != d("2026-01-02").Unix() || items[0].Spellings != nil {
		t.Fatalf("day items %+v %v", items, err)
	}
	if items, _ := r.Items(ctx, topk.DayPeriod(d("2026-01-02")), "ann", topk.Artists); len(items) != 1 || items[0].Artist != "" {
		t.Fatalf("artist items %+v", items)
	}
	if items, _ := r.Items(ctx, topk.MonthPeriod(d("2026-01-20")), "ann", topk.Tracks); len(items) != 1 || items[0].Plays != 4 ||
		items[0].First != d("2026-01-01").Unix() {
		t.Fatalf("month items %+v", items)
	}
	if items, _ := r.Items(ctx, topk.YearPeriod(d("2025-05-05")), "ann", topk.Albums); len(items) != 1 || items[0].Name != "In Rainbows" ||
		items[0].First != d("2025-01-01").Unix() {
		t.Fatalf("year items %+v", items)
	}
	// a spellings value that does not decode is an error, not an outage
	exec(`INSERT INTO day_items (user_id, day, entity, item, name, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		"ann", d("2026-01-05"), "track", int64(3), "Bad", int64(1), int64(0), []byte{2, 9})
	if items, err := r.Items(ctx, topk.DayPeriod(d("2026-01-05")), "ann", topk.Tracks); !errors.Is(err, topk.ErrCorrupt) ||
		errors.Is(err, cassandra.ErrUnavailable) || items != nil {
		t.Fatalf("a corrupt spellings value: %+v %v, want ErrCorrupt (not unavailable)", items, err)
	}
	var got []string
	var after *cassandra.ListenPos
	for {
		ls, err := r.Listens(ctx, "ann", d("2026-01-02"), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			got = append(got, l.Track)
		}
		if len(ls) < 2 {
			break
		}
		last := ls[len(ls)-1]
		after = &cassandra.ListenPos{PlayedAt: last.PlayedAt, Identity: last.Identity}
	}
	if fmt.Sprint(got) != "[Later T1 T2 T3]" {
		t.Fatalf("listens newest first, then by identity: %v", got)
	}
	for prefix, want := range map[string]string{"an": "[Ann annie]", "ANNI": "[annie]", "ä": "[ÄNN]", "x": "[]"} {
		users, err := r.SearchUsers(ctx, prefix, 10)
		if err != nil || fmt.Sprint(users) != want {
			t.Errorf("search %q: %v %v, want %s", prefix, users, err, want)
		}
	}

	bad := wiring.Cassandra(cfg.Cassandra)
	bad.Port = 1
	down := cassandra.NewReader(bad)
	defer down.Close()
	if _, _, err := down.FirstDay(ctx, "ann"); !errors.Is(err, cassandra.ErrUnavailable) {
		t.Fatalf("a reader on a wrong port: %v, want ErrUnavailable", err)
	}
}

// cassandra.Reader keeps the contract of the charts' store (the same
// suite the in-memory store passes), on its own keyspace.
func TestIntegrationReaderContract(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	chartstest.StoreSuite(t, func(t *testing.T, d *chartstest.Data) charts.Store {
		ctx := testenv.Context(t, time.Minute)
		exec := execer(t, ctx, wiring.Cassandra(cfg.Cassandra))
		for _, x := range d.Days {
			exec(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?)`, x.User, x.Day, x.Plays)
		}
		// the items through the flusher's write path (DayStore), so the
		// suite's spellings and firsts round-trip through both statements
		s, err := cassandra.Connect(ctx, wiring.Cassandra(cfg.Cassandra))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ds := cassandra.NewDayStore(s, cassandra.DayStoreConfig{})
		for _, p := range d.Items {
			rows := make([]topk.EntityItem, len(p.Items))
			for i, it := range p.Items {
				rows[i] = topk.EntityItem{Entity: p.Entity, Item: it}
			}
			if err := ds.WriteItems(ctx, p.Period, p.User, rows, 1); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range d.Listens {
			exec(`INSERT INTO raw_listens (user_id, day, played_at, identity, artist_name, track_name, album_name, track_id, artist_id,
				album_id, duration_ms, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.User, l.PlayedAt.Truncate(24*time.Hour),
				l.PlayedAt, l.Identity, l.Artist, l.Track, l.Album, l.TrackID, l.ArtistID, l.AlbumID, l.DurationMS, l.Source)
		}
		for _, u := range d.Users {
			exec(cassandra.InsertKnownUser, cassandra.KnownUserArgs(u)...)
		}
		r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
		t.Cleanup(r.Close)
		return r
	})
}

// execer runs statements on a session of its own, closed when the test
// ends; a failing one fails the test.
func execer(t *testing.T, ctx context.Context, c cassandra.Config) func(q string, args ...any) {
	t.Helper()
	s, err := cassandra.Connect(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return func(q string, args ...any) {
		t.Helper()
		if err := s.Query(q, args...).WithContext(ctx).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
