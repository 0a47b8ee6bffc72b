//go:build integration

package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

func swDay(s string) time.Time {
	d, err := time.Parse(topk.DayLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

func swRow(e topk.Entity, item uint64, day string, bucket uint32, version uint64, plays int64, listeners int, name, artist string) cassandra.SitewideRow {
	return cassandra.SitewideRow{Key: sitewide.Key{Entity: e, Item: item, Day: swDay(day), Bucket: bucket},
		Version: version, Plays: plays, Listeners: listeners, Name: name, Artist: artist}
}

// showSitewide is items sorted by key, one a line.
func showSitewide(items []topk.SitewideItem) string {
	slices.SortFunc(items, func(a, b topk.SitewideItem) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%x %q %q plays %d listeners %d\n", it.Key, it.Name, it.Artist, it.Plays, it.Listeners)
	}
	return b.String()
}

// The sitewide counts on the real table: WriteSitewide in many small
// batches (several partitions: months, shards, entities), then
// SitewideRange sums an item's rows over buckets (spill buckets
// included), days and months, the range's first and last days included
// and the days around them not; an older version written after a newer
// one does not win; an item whose rows all have plays 0 is left out, and
// a row with plays 0 adds nothing; the name is the one of the row with
// the most plays (ties: the smaller name); entities do not mix; a reader
// on a wrong port is unavailable. Every read (the months, each of their
// 16 partitions) goes through the read gate, at most its 2 at once.
func TestIntegrationSitewide(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, 2*time.Minute)
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := cassandra.NewSitewideStore(s, cassandra.SitewideStoreConfig{Concurrency: 2, MaxRowsPerBatch: 2})

	const (
		a = uint64(1<<63 | 0x11) // high bit set: stored as a negative bigint
		b = uint64(0x22)
		c = uint64(0x33) // only rows with plays 0 in the range
		d = uint64(0x44) // ties of plays between two spellings
	)
	rows := []cassandra.SitewideRow{
		// a: around the range [2026-01-31, 2026-03-01]
		swRow(topk.Tracks, a, "2026-01-30", 0, 4, 1000, 1000, "Outside", "X"), // the day before: out
		swRow(topk.Tracks, a, "2026-01-31", 0, 3, 5, 2, "Song", "Band"),
		swRow(topk.Tracks, a, "2026-01-31", 3, 2, 7, 3, "Song", "Band"),
		swRow(topk.Tracks, a, "2026-02-14", 1030, 9, 2, 1, "SONG", "BAND"), // a spill bucket
		swRow(topk.Tracks, a, "2026-02-28", 7, 6, 11, 4, "Song", "Band"),
		swRow(topk.Tracks, a, "2026-03-01", 2, 1, 1, 1, "song", "band"),
		swRow(topk.Tracks, a, "2026-03-02", 2, 1, 500, 500, "Outside", "X"), // the day after: out
		// b: a newer value, then an older one written late
		swRow(topk.Tracks, b, "2026-02-01", 5, 8, 10, 3, "B new", "Band"),
		swRow(topk.Tracks, b, "2026-02-02", 5, 2, 0, 0, "", ""), // plays 0: adds nothing
		// c: plays went to 0
		swRow(topk.Tracks, c, "2026-02-03", 1, 7, 0, 0, "", ""),
		// d: 3 plays under two names
		swRow(topk.Tracks, d, "2026-02-04", 1, 1, 3, 1, "zed", "Z"),
		swRow(topk.Tracks, d, "2026-02-05", 1, 1, 3, 1, "Zed", "Z"),
		// another entity, the same item and days
		swRow(topk.Albums, a, "2026-01-31", 0, 1, 40, 9, "Record", "Band"),
	}
	// many rows of one partition: a batch of 2 rows each
	for i := range 20 {
		day := swDay("2026-02-01").AddDate(0, 0, i%20).Format(topk.DayLayout)
		rows = append(rows, swRow(topk.Artists, 0x50, day, uint32(i/20), 1, 2, 2, "Band", ""))
	}
	if err := st.WriteSitewide(ctx, rows); err != nil {
		t.Fatal(err)
	}
	older := []cassandra.SitewideRow{
		swRow(topk.Tracks, b, "2026-02-01", 5, 7, 1000, 900, "B old", "Band"), // version 7 < 8
		swRow(topk.Tracks, c, "2026-02-03", 1, 6, 4, 2, "C", "Band"),          // version 6 < 7 (plays 0)
	}
	if err := st.WriteSitewide(ctx, older); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteSitewide(ctx, rows); err != nil { // again: nothing changes
		t.Fatal(err)
	}

	r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer r.Close()
	check := func(e topk.Entity, from, to, want string) {
		t.Helper()
		g := newReadGate(2)
		got, err := r.SitewideRange(ctx, e, swDay(from), swDay(to), g.read)
		if err != nil {
			t.Fatalf("%s %s..%s: %v", e, from, to, err)
		}
		if reads, most, now := g.figures(); to >= from && (reads < 1 || (reads-1)%cassandra.SitewideShards != 0) || most > 2 || now != 0 {
			t.Errorf("%s %s..%s: the gate saw %d reads (want the months and 16 per month), %d at once (at most 2), %d not given back", e, from, to, reads, most, now)
		}
		if g := showSitewide(got); g != want {
			t.Errorf("%s %s..%s:\n%swant\n%s", e, from, to, g, want)
		}
	}
	check(topk.Tracks, "2026-01-31", "2026-03-01", ""+
		"22 \"B new\" \"Band\" plays 10 listeners 3\n"+
		"44 \"Zed\" \"Z\" plays 6 listeners 2\n"+
		"8000000000000011 \"Song\" \"Band\" plays 26 listeners 11\n")
	check(topk.Tracks, "2026-02-14", "2026-02-14", "8000000000000011 \"SONG\" \"BAND\" plays 2 listeners 1\n")
	check(topk.Tracks, "2026-03-01", "2026-03-31", "8000000000000011 \"Outside\" \"X\" plays 501 listeners 501\n")
	check(topk.Tracks, "2026-02-03", "2026-02-03", "")
	check(topk.Tracks, "2025-06-01", "2025-12-31", "")
	check(topk.Tracks, "2026-03-01", "2026-02-01", "") // to before from
	check(topk.Albums, "2025-12-01", "2026-12-31", "8000000000000011 \"Record\" \"Band\" plays 40 listeners 9\n")
	check(topk.Artists, "2026-02-01", "2026-02-10", "50 \"Band\" \"\" plays 20 listeners 20\n")

	bad := wiring.Cassandra(cfg.Cassandra)
	bad.Port = 1
	down := cassandra.NewReader(bad)
	defer down.Close()
	if _, err := down.SitewideRange(ctx, topk.Tracks, swDay("2026-02-01"), swDay("2026-02-02"), nil); !errors.Is(err, cassandra.ErrUnavailable) {
		t.Fatalf("a reader on a wrong port: %v, want ErrUnavailable", err)
	}
}

// readGate is a read bound of n, as the api's (charts.Service.Read),
// that counts what goes through it.
type readGate struct {
	slots                 chan struct{}
	mu                    sync.Mutex
	reads, inFlight, most int
}

func newReadGate(n int) *readGate { return &readGate{slots: make(chan struct{}, n)} }

func (g *readGate) read(ctx context.Context) func() {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return func() {}
	}
	g.mu.Lock()
	g.reads++
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
		<-g.slots
	}
}

// figures are the reads so far, the most at once, and those running.
func (g *readGate) figures() (reads, most, now int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads, g.most, g.inFlight
}
