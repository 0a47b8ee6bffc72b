package charts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/ops"
)

// The service's internals: range names, the merge, the tally's
// encoding, cursors, the answer cache and the lag monitor. The service
// itself on the fakes is in service_test.go.

var testNow = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC) // a Wednesday

func date(s string) time.Time { d, _ := ParseDay(s); return d }

func TestNamedRanges(t *testing.T) {
	for _, c := range []struct {
		now, name, from, to string
	}{
		{"2026-03-11", "today", "2026-03-11", "2026-03-11"},
		{"2026-03-11", "7d", "2026-03-05", "2026-03-11"},
		{"2026-03-11", "30d", "2026-02-10", "2026-03-11"},
		{"2026-03-11", "90d", "2025-12-12", "2026-03-11"},
		{"2026-03-11", "180d", "2025-09-13", "2026-03-11"},
		{"2026-03-11", "365d", "2025-03-12", "2026-03-11"},
		{"2024-03-01", "365d", "2023-03-03", "2024-03-01"},       // across 29 February
		{"2026-03-11", "this_week", "2026-03-09", "2026-03-11"},  // Wednesday → Monday
		{"2026-03-09", "this_week", "2026-03-09", "2026-03-09"},  // a Monday is its week's first day
		{"2026-03-15", "this_week", "2026-03-09", "2026-03-15"},  // Sunday is the last
		{"2026-01-01", "this_week", "2025-12-29", "2026-01-01"},  // a week across years
		{"2026-03-11", "this_month", "2026-03-01", "2026-03-11"}, //
		{"2026-03-01", "this_month", "2026-03-01", "2026-03-01"},
		{"2026-03-11", "this_year", "2026-01-01", "2026-03-11"},
		{"2026-01-01", "this_year", "2026-01-01", "2026-01-01"},
	} {
		now := date(c.now).Add(23*time.Hour + 59*time.Minute) // late in the UTC day
		r, ok := named(c.name, now)
		if !ok || day(r.From) != c.from || day(r.To) != c.to || r.Name != c.name {
			t.Errorf("%s at %s: %s … %s, want %s … %s", c.name, c.now, day(r.From), day(r.To), c.from, c.to)
		}
	}
	// Another time zone's evening is the next UTC day.
	r, _ := named("today", time.Date(2026, 3, 11, 22, 0, 0, 0, time.FixedZone("x", -5*3600)))
	if day(r.From) != "2026-03-12" {
		t.Errorf("today in UTC: %s", day(r.From))
	}
	r, ok := named("all", testNow)
	if !ok || !r.All {
		t.Errorf("all: %+v", r)
	}
	if _, ok := named("8d", testNow); ok {
		t.Error("8d accepted")
	}
}

// rank against sorting everything, for many splits of the same items
// between an older tally and recent days.
func TestRankMergesOlderAndRecent(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	for seed := range 200 {
		olderAcc, recent, all := newAccumulator(0), newAccumulator(0), newAccumulator(0)
		n := 1 + seed%23
		for i := range n * 3 {
			key := uint64(1 + (i*7+seed)%n)
			name := names[(int(key)+seed)%len(names)]
			plays := int64(1 + (i*13+seed)%5)
			if (i+seed)%3 == 0 {
				recent.add(&topk.Item{Key: key, Name: name, Plays: plays})
			} else {
				olderAcc.add(&topk.Item{Key: key, Name: name, Plays: plays})
			}
		}
		// all = older then recent, as the api orders periods.
		for i := range olderAcc.items {
			all.add(&olderAcc.items[i])
		}
		for i := range recent.items {
			all.add(&recent.items[i])
		}
		want := all.tally().items
		older := olderAcc.tally()
		if seed%5 == 0 {
			older = nil
			want = slices.Clone(recent.items)
			slices.SortFunc(want, compare)
		}
		// Names set after ranking (as the all-time names are) reorder
		// equal plays across the page's ends: rank keeps the tied items.
		rename := func(items []topk.Item) {
			for i := range items {
				items[i].Name = names[(int(items[i].Key)*5+seed/3)%len(names)]
			}
		}
		renamed := slices.Clone(want)
		rename(renamed)
		slices.SortFunc(renamed, compare)
		for _, ko := range [][2]int{{1, 0}, {3, 0}, {1000, 0}, {2, 3}, {5, n}, {10, 100}, {1, 1}, {2, 4}} {
			for _, wanted := range []struct {
				items  []topk.Item
				rename bool
			}{{want, false}, {renamed, true}} {
				spent := &accumulator{index: recent.index, items: cloneItems(recent.items)} // rank spends it
				p := rank(older, spent, ko[1], ko[0])
				if wanted.rename {
					rename(p.items)
				}
				got := p.ordered()
				w := window(wanted.items, ko[1])
				if len(w) > ko[0] {
					w = w[:ko[0]]
				}
				if p.total != len(want) || fmt.Sprint(got) != fmt.Sprint(w) {
					t.Fatalf("seed %d k %d offset %d renamed %v: %v (total %d), want %v (total %d)", seed, ko[0], ko[1], wanted.rename, got, p.total, w, len(want))
				}
			}
		}
	}
}

// cloneItems copies items with their spellings (Merge changes them in
// place).
func cloneItems(items []topk.Item) []topk.Item {
	out := slices.Clone(items)
	for i := range out {
		out[i].Spellings = slices.Clone(out[i].Spellings)
	}
	return out
}

func TestTallyEncoding(t *testing.T) {
	acc := newAccumulator(0)
	acc.add(&topk.Item{Key: 1, Name: "Nude", Artist: "Radiohead", Plays: 3})
	acc.add(&topk.Item{Key: 1<<63 + 5, Name: "Ünïcödé", Plays: 7})
	acc.add(&topk.Item{Key: 2, Artist: "x"})
	tl := acc.tally()
	got, err := decodeTally(tl.encode())
	if err != nil || fmt.Sprint(got.items) != fmt.Sprint(tl.items) || got.index[1<<63+5] != 0 {
		t.Fatalf("%v %v", err, got)
	}
	b := tl.encode()
	for i := range len(b) {
		if _, err := decodeTally(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := &Cursor{day: date("2026-03-10"), playedAt: date("2026-03-10").Add(5*time.Hour + 123*time.Millisecond), identity: []byte{1, 2, 3}}
	got, err := decodeCursor(c.encode())
	if err != nil || !got.day.Equal(c.day) || !got.playedAt.Equal(c.playedAt) || string(got.identity) != string(c.identity) {
		t.Fatalf("%v %+v", err, got)
	}
	bad := &Cursor{day: date("2026-03-10"), playedAt: date("2026-03-11")}
	if _, err := decodeCursor(bad.encode()); err == nil {
		t.Fatal("a played_at outside its day decoded")
	}
}

// As entries near the end of their TTL, one background fill replaces them
// while requests keep being served from the old one.
func TestCacheRefreshAhead(t *testing.T) {
	var fills atomic.Int32
	_, get, advance := cacheOf(t, func(context.Context) (int, error) { return int(fills.Add(1)), nil })
	if first, second := get(), get(); first != 1 || second != 1 || fills.Load() != 1 {
		t.Fatalf("fills %d", fills.Load())
	}
	advance(50 * time.Second) // past 3/4 of the TTL: served, refreshed behind
	if v := get(); v != 1 {
		t.Fatalf("served %d while refreshing", v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("never refreshed")
		}
		time.Sleep(time.Millisecond)
	}
	advance(2 * time.Minute) // expired: a new fill
	if v := get(); v != 3 {
		t.Fatalf("after expiry %d", v)
	}
}

// cacheOf is a cache with a TTL of a minute on a clock the test advances,
// and get, which fetches key k through fill.
func cacheOf(t *testing.T, fill func(context.Context) (int, error)) (a *answers, get func() int, advance func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := newAnswers(answersConfig{ttl: time.Minute, localBytes: 1 << 20, log: ops.NewLogger(io.Discard, "error", "text"), now: clock, reg: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c := jsonCodec[int]()
	get = func() int {
		v, _, err := fetch(context.Background(), a, "k", c, fill)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	advance = func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	return a, get, advance
}

// A refresh-ahead runs under the service's context: close cancels the one
// running and waits for it, and none starts after it.
func TestCacheCloseStopsRefreshAhead(t *testing.T) {
	var fills atomic.Int32
	started, cancelled := make(chan struct{}), make(chan struct{})
	a, get, advance := cacheOf(t, func(ctx context.Context) (int, error) {
		if fills.Add(1) == 1 {
			return 1, nil
		}
		close(started)
		<-ctx.Done()
		close(cancelled)
		return 0, ctx.Err()
	})
	if v := get(); v != 1 {
		t.Fatalf("first fill %d", v)
	}
	advance(50 * time.Second) // past 3/4 of the TTL: refreshed behind
	if v := get(); v != 1 {
		t.Fatalf("served %d while refreshing", v)
	}
	<-started
	a.close()
	select {
	case <-cancelled:
	default:
		t.Fatal("close returned before the refresh saw its context end")
	}
	if v := get(); v != 1 || fills.Load() != 2 {
		t.Fatalf("after close: served %d, fills %d (want 1, 2: no refresh started)", v, fills.Load())
	}
}

func TestLRUBudget(t *testing.T) {
	l := newLRU(1000)
	for i := range 30 {
		l.put(fmt.Sprint(i), cached{size: 100})
	}
	if l.used > 1000 || len(l.m) != 10 {
		t.Fatalf("used %d, %d entries", l.used, len(l.m))
	}
	if _, ok := l.get("29"); !ok {
		t.Fatal("newest evicted")
	}
	if _, ok := l.get("0"); ok {
		t.Fatal("oldest kept")
	}
	l.put("big", cached{size: 600})
	if _, ok := l.get("big"); ok {
		t.Fatal("an entry over half the budget was kept")
	}
}

// The monitor measures in the background: the last lag while
// measurements succeed, unknown from the first failure (logged once)
// until the next success, unknown when a measurement outlives its
// timeout, and the gauge follows (NaN while unknown).
func TestLagMonitor(t *testing.T) {
	type result struct {
		lag time.Duration
		err error
	}
	results := make(chan result)
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	m, err := NewLagMonitor(LagConfig{
		Measure: func(ctx context.Context) (time.Duration, error) {
			select {
			case r := <-results:
				return r.lag, r.err
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		},
		Interval:   time.Millisecond,
		Timeout:    time.Hour,
		Registerer: reg,
	}, ops.NewLogger(&logs, "info", "text"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.CassandraLag(); ok {
		t.Fatal("known before any measurement")
	}
	if v := gaugeValue(t, reg, "topk_api_cassandra_lag_seconds"); !math.IsNaN(v) {
		t.Fatalf("gauge before any measurement: %v", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()

	// step hands r to one measurement and to the next: the next starts
	// only after the first was applied.
	step := func(r result) {
		results <- r
		results <- r
	}
	step(result{lag: 7 * time.Second})
	if lag, ok := m.CassandraLag(); !ok || lag != 7*time.Second {
		t.Fatalf("after a measurement: %v %v", lag, ok)
	}
	if v := gaugeValue(t, reg, "topk_api_cassandra_lag_seconds"); v != 7 {
		t.Fatalf("gauge: %v", v)
	}
	boom := errors.New("kafka: client has run out of available brokers")
	step(result{err: boom})
	step(result{err: boom})
	if _, ok := m.CassandraLag(); ok {
		t.Fatal("known after a failed measurement")
	}
	if v := gaugeValue(t, reg, "topk_api_cassandra_lag_seconds"); !math.IsNaN(v) {
		t.Fatalf("gauge while unknown: %v", v)
	}
	if v := gaugeValue(t, reg, "topk_api_cassandra_lag_errors_total"); v < 2 {
		t.Fatalf("errors: %v", v)
	}
	if n := strings.Count(logs.String(), "cannot measure"); n != 1 {
		t.Fatalf("%d warnings for consecutive failures, want 1:\n%s", n, logs.String())
	}
	step(result{lag: time.Second})
	if lag, ok := m.CassandraLag(); !ok || lag != time.Second {
		t.Fatalf("after recovering: %v %v", lag, ok)
	}
	if !strings.Contains(logs.String(), "again") {
		t.Fatalf("no log line when measuring works again:\n%s", logs.String())
	}
	cancel()
	// The pending call sees the context end; Run returns nil.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A measurement that outlives its timeout leaves the lag unknown; so does
// a last measurement older than MaxAge.
func TestLagMonitorTimeoutAndAge(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	hang := false
	m, err := NewLagMonitor(LagConfig{
		Measure: func(ctx context.Context) (time.Duration, error) {
			mu.Lock()
			h := hang
			mu.Unlock()
			if h {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 3 * time.Second, nil
		},
		Interval:   time.Second,
		Timeout:    20 * time.Millisecond,
		Registerer: prometheus.NewRegistry(),
		Now:        func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.measure(ctx)
	if lag, ok := m.CassandraLag(); !ok || lag != 3*time.Second {
		t.Fatalf("measured: %v %v", lag, ok)
	}
	mu.Lock()
	now = now.Add(3*time.Second + time.Millisecond) // past MaxAge (3 × Interval)
	mu.Unlock()
	if _, ok := m.CassandraLag(); ok {
		t.Fatal("a measurement older than MaxAge is known")
	}
	m.measure(ctx)
	if _, ok := m.CassandraLag(); !ok {
		t.Fatal("a fresh measurement is unknown")
	}
	mu.Lock()
	hang = true
	mu.Unlock()
	start := time.Now()
	m.measure(ctx)
	if _, ok := m.CassandraLag(); ok || time.Since(start) > time.Second {
		t.Fatalf("a measurement past its timeout: known %v after %v", ok, time.Since(start))
	}
}

// gaugeValue reads a gauge from a registry (NaN when absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return metricValue(mf.GetMetric()[0])
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

func metricValue(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// syncBuffer is a log sink the monitor's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
