package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
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
	return startViewWith(t, Config{Days: days, Now: now.now})
}

// startViewWith runs a view of cfg (Registerer and Maintain set here) on
// Goka's tester.
func startViewWith(t *testing.T, cfg Config) (*View, *tester.Tester) {
	t.Helper()
	tt := tester.New(t)
	cfg.Registerer, cfg.Maintain = prometheus.NewRegistry(), time.Hour
	v, err := New(processors.Settings{}, cfg, goka.WithViewTester(tt))
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
	table := string(listen.NewTopics("").Recent)
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
	// Reckoner and RECKONER tie on plays: the earlier listen's spelling
	// (second 0) wins; the artist is the artist item's majority.
	midnight := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC).Unix()
	wantSp := []topk.Spelling{{Name: "RECKONER", Plays: 1, First: midnight + 2}, {Name: "Reckoner", Plays: 1, First: midnight}}
	var reckoner topk.Item
	for _, it := range got.Tracks {
		if it.Key == listen.TrackKey("Radiohead", "Reckoner") {
			reckoner = it
		}
	}
	if reckoner.Plays != 2 || reckoner.Name != "Reckoner" || reckoner.First != midnight || reckoner.Artist != "Radiohead" ||
		fmt.Sprint(reckoner.Spellings) != fmt.Sprint(wantSp) {
		t.Errorf("Reckoner %+v: want 2 plays spelled as the first listen, spellings %v", reckoner, wantSp)
	}
	raw, _ := v.stores[0].Get("alice|2026-03-08")
	lean, err := aggregator.DecodeDay(raw)
	if err != nil || lean.Seen() != 0 || lean.Total != 3 {
		t.Fatalf("stored day keeps its seen set or lost its total: %v %+v", err, lean)
	}
	for _, it := range lean.Tracks {
		if it.Key == reckoner.Key && fmt.Sprint(it.Topk(days[0].Date).Spellings) != fmt.Sprint(wantSp) {
			t.Errorf("stored Reckoner %+v lost its spellings", it)
		}
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
	if n := s.Prune("2026-01-02", userDay); n != 2 || s.Len() != 2 {
		t.Fatalf("pruned %d, left %d", n, s.Len())
	}
	if off, _ := s.GetOffset(-2); off != -2 {
		t.Fatal(off)
	}
	_ = s.SetOffset(7)
	if off, _ := s.GetOffset(-2); off != 7 {
		t.Fatal(off)
	}
}

// Kafka away at start: the set-up fails three times (Check says Kafka is
// down meanwhile, not recovered), then works; the view recovers, Check is
// nil, and the three rebuilds are counted.
func TestViewWaitsForKafka(t *testing.T) {
	tt := tester.New(t)
	reg := prometheus.NewRegistry()
	v, err := New(processors.Settings{}, Config{Registerer: reg, Maintain: time.Hour, OutageLimit: time.Minute,
		Backoff: sink.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fails, release := 0, make(chan struct{})
	v.life.Build = func(ctx context.Context) (*goka.View, func(), error) {
		mu.Lock()
		defer mu.Unlock()
		if fails < 3 {
			fails++
			if fails == 3 {
				<-release // hold the third failure until Check was looked at
			}
			return nil, nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}
		return v.newGoka(ctx)
	}
	if err := v.Check(context.Background()); err == nil || err.Error() != "starting" {
		t.Fatalf("Check before Run = %v, want starting", err)
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
	deadline := time.Now().Add(5 * time.Second)
	for v.life.Kafka.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failed set-up was not noticed")
		}
		time.Sleep(time.Millisecond)
	}
	if err := v.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "reconnecting: kafka down for") ||
		!strings.Contains(err.Error(), "connection refused") || v.Recovered() {
		t.Fatalf("Check while Kafka is away = %v (recovered %v)", err, v.Recovered())
	}
	close(release)
	for !v.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("the view did not recover once Kafka answered")
		}
		time.Sleep(time.Millisecond)
	}
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check once recovered = %v", err)
	}
	if v.Goka() == nil {
		t.Fatal("no Goka view for the monitor")
	}
	if n := testutil.ToFloat64(v.life.Restarts); n != 3 {
		t.Fatalf("restarts %v, want 3", n)
	}
	tt.Consume(string(listen.NewTopics("").Recent), "alice|"+time.Now().UTC().Format(listen.DayLayout), day(t, [3]string{"A", "T", "B"}))
	if d := v.Get("alice", time.Now().UTC().Truncate(24*time.Hour)); d == nil || d.Plays != 1 {
		t.Fatalf("day after recovery: %+v", d)
	}
}

// Kafka that never comes back: Run gives up once the outage is longer than
// the limit, with an error naming Kafka, the limit and the last error.
func TestViewGivesUpPastTheOutageLimit(t *testing.T) {
	v, err := New(processors.Settings{}, Config{Registerer: prometheus.NewRegistry(), Maintain: time.Hour,
		OutageLimit: 200 * time.Millisecond, Backoff: sink.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	v.life.Build = func(context.Context) (*goka.View, func(), error) {
		return nil, nil, errors.New("kafka: client has run out of available brokers to talk to")
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- v.Run(context.Background()) }()
	select {
	case err := <-done:
		var le *outage.LimitError
		if !errors.As(err, &le) || le.Name != "kafka" || !strings.Contains(err.Error(), "outage limit of 200ms") ||
			!strings.Contains(err.Error(), "run out of available brokers") {
			t.Fatalf("Run = %v", err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("gave up after %v, before the limit", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still retrying 10 s after a 200 ms outage limit")
	}
	if v.Recovered() {
		t.Fatal("recovered without Kafka")
	}
}

// A rebuilt Goka view gets each partition's store back, with its days and
// offset: nothing is read again from the start, nothing served is lost.
func TestViewKeepsItsStoresAcrossRebuilds(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v, tt := startView(t, now, 3)
	tt.Consume(string(listen.NewTopics("").Recent), "alice|2026-03-10", day(t, [3]string{"A", "T", "B"}))
	old := v.stores[0]
	off, _ := old.GetOffset(-1)
	st, err := v.storage("any", 0)
	if err != nil || st != old {
		t.Fatalf("partition 0's store after a rebuild: %p, want %p (%v)", st, old, err)
	}
	if got, _ := st.GetOffset(-1); got != off || v.Get("alice", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) == nil {
		t.Fatalf("offset %d (want %d) or the day lost", got, off)
	}
}

// Past MaxBytes the view keeps the newest days that fit in 90% of it,
// FirstDay moves up (the api reads the rest from Cassandra), later
// records of the cut days are skipped, and today always stays.
func TestViewMemoryBound(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	d := day(t, [3]string{"Radiohead", "Reckoner", "In Rainbows"}, [3]string{"Radiohead", "Nude", "In Rainbows"})
	b, _ := aggregator.DayCodec{}.Encode(d)
	lean, _ := aggregator.DecodeDay(b)
	per := dayBytes("user00|2026-03-10", &Day{}) + int64(len(lean.Encode())) + 2*(56+9+9) + 56 + 9 + 56 + 11 + 9
	// Room for about 25 user-days: 10 users × 10 days do not fit.
	v, tt := startViewWith(t, Config{Days: 10, Now: now.now, MaxBytes: 25 * per})
	topic := string(listen.NewTopics("").Recent)
	for i := 9; i >= 0; i-- { // oldest first, as a recovery reads them
		date := now.t.AddDate(0, 0, -i).Format(listen.DayLayout)
		for u := range 10 {
			tt.Consume(topic, fmt.Sprintf("user%02d|%s", u, date), d)
		}
	}
	first := v.FirstDay(now.t)
	if !first.After(now.t.AddDate(0, 0, -9)) {
		t.Fatalf("first day %v: the memory bound did not cut the window", first)
	}
	v.Prune(now.t)
	v.dmu.RLock()
	used, held := v.bytes, len(v.days)
	v.dmu.RUnlock()
	if used > v.cfg.MaxBytes || held == 0 {
		t.Fatalf("view holds %d user-days in %d bytes, bound %d", held, used, v.cfg.MaxBytes)
	}
	if got := v.Get("user03", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)); got == nil {
		t.Fatal("today was dropped")
	}
	// A record of a cut day is skipped, not kept.
	old := first.AddDate(0, 0, -1)
	tt.Consume(topic, "user99|"+old.Format(listen.DayLayout), d)
	if v.Get("user99", old) != nil {
		t.Fatal("a day before the memory cut was kept")
	}
	days, _ := v.Range("user01", now.t.AddDate(0, 0, -9), now.t)
	for _, dd := range days {
		if dd.Date.Before(first) {
			t.Fatalf("Range returned %v, before the first day %v", dd.Date, first)
		}
	}
}

// Goka's partition stats say 1 for a caught-up partition (high-water mark
// minus the last offset applied); the view's lag says 0.
func TestRecordsBehind(t *testing.T) {
	in := func(offsetLag int64) *goka.TableStats {
		return &goka.TableStats{Input: &goka.InputStats{OffsetLag: offsetLag}}
	}
	for _, c := range []struct {
		name  string
		parts map[int32]*goka.TableStats
		want  int64
	}{
		{"no partition", nil, 0},
		{"caught up", map[int32]*goka.TableStats{0: in(1), 1: in(1), 2: in(0)}, 0},
		{"behind", map[int32]*goka.TableStats{0: in(5), 1: in(1), 2: in(3)}, 6},
		{"mark older than the last record, no stats", map[int32]*goka.TableStats{0: in(-4), 1: {}, 2: nil}, 0},
	} {
		if got := recordsBehind(&goka.ViewStats{Partitions: c.parts}); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// A held day's estimate counts its items' spellings: hostile spelling
// variants cannot grow a view past its memory bound unseen.
func TestDayBytesCountsSpellings(t *testing.T) {
	it := topk.Item{Key: 1, Name: "Reckoner", Artist: "Radiohead", Plays: 2}
	one := &Day{Tracks: []topk.Item{it}}
	it.Spellings = []topk.Spelling{{Name: "RECKONER", Plays: 1, First: 2}, {Name: "Reckoner", Plays: 1}}
	two := &Day{Tracks: []topk.Item{it}}
	if extra := dayBytes("u|2026-03-10", two) - dayBytes("u|2026-03-10", one); extra < 2*(32+8) {
		t.Fatalf("two spellings add %d bytes to the estimate, want at least %d", extra, 2*(32+8))
	}
}
