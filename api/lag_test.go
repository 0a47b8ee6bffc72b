package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/topk-charts/topk/ops"
)

// fakeLag is a LagSource the test sets.
type fakeLag struct {
	mu    sync.Mutex
	lag   time.Duration
	known bool
}

func (l *fakeLag) CassandraLag() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lag, l.known
}

func (l *fakeLag) set(lag time.Duration, known bool) {
	l.mu.Lock()
	l.lag, l.known = lag, known
	l.mu.Unlock()
}

// lagOf reads an answer's freshness: the field (absent: "absent"; null:
// "null"; else the number), stale, source and the header.
func lagOf(t *testing.T, f *fixture, path string) (field string, stale bool, source, header string) {
	t.Helper()
	rec := f.do(path)
	if rec.Code != 200 {
		t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	field = "absent"
	if v, ok := m["cassandra_lag_seconds"]; ok {
		field = string(v)
	}
	if err := json.Unmarshal(m["stale"], &stale); err != nil {
		t.Fatalf("%s: stale %s: %v", path, m["stale"], err)
	}
	_ = json.Unmarshal(m["source"], &source)
	return field, stale, source, rec.Header().Get(LagHeader)
}

// Answers that read Cassandra (source cassandra or mixed) carry the lag
// in the body and a header; answers only from the view carry neither and
// are not stale; an unknown lag is null, "unknown" and stale.
func TestAnswersCarryCassandraLag(t *testing.T) {
	lag := &fakeLag{lag: 12_540 * time.Millisecond, known: true}
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute, lag: lag})
	cases := []struct {
		path, source string
	}{
		{"/v1/users/alice/top/tracks?range=7d", SourceView},
		{"/v1/users/alice/top/artists?range=365d", SourceMixed},
		{"/v1/users/alice/top/albums?from=2025-01-01&to=2025-02-01", SourceCassandra},
		{"/v1/users/alice/activity?range=30d", SourceView},
		{"/v1/users/alice/activity?range=all", SourceMixed},
		{"/v1/users/carol/activity?from=2025-01-01&to=2025-06-01", SourceCassandra},
	}
	for _, c := range []struct {
		lag          time.Duration
		known        bool
		field, head  string
		staleIfCassa bool
	}{
		{12_540 * time.Millisecond, true, "12.5", "12.5", true},
		{0, true, "0", "0", false},
		{30 * time.Millisecond, true, "0", "0", false}, // rounds to a tenth
		{-time.Second, true, "0", "0", false},          // a producer clock ahead
		{0, false, "null", "unknown", true},
	} {
		lag.set(c.lag, c.known)
		for _, k := range cases {
			field, stale, source, header := lagOf(t, f, k.path)
			if source != k.source {
				t.Fatalf("%s: source %s, want %s", k.path, source, k.source)
			}
			want, wantStale, wantHead := c.field, c.staleIfCassa, c.head
			if k.source == SourceView {
				want, wantStale, wantHead = "absent", false, ""
			}
			if field != want || stale != wantStale || header != wantHead {
				t.Errorf("lag %v known %v, %s: cassandra_lag_seconds %s stale %v header %q; want %s %v %q",
					c.lag, c.known, k.path, field, stale, header, want, wantStale, wantHead)
			}
		}
	}

	// A cached Cassandra part shows the lag of now, not the one it was
	// read with.
	path := "/v1/users/alice/top/tracks?range=365d"
	lag.set(40*time.Second, true)
	if field, _, _, _ := lagOf(t, f, path); field != "40" {
		t.Fatalf("first read: %s", field)
	}
	reads := f.store.reads["month_items"]
	lag.set(2*time.Second, true)
	if field, stale, _, header := lagOf(t, f, path); field != "2" || !stale || header != "2" {
		t.Fatalf("cached answer: %s %v %q, want the lag of now (2)", field, stale, header)
	}
	if f.store.reads["month_items"] != reads {
		t.Fatal("the second answer was not cached")
	}

	// The view not recovered: everything from Cassandra, with its lag.
	f.view.recovered = false
	if field, stale, source, _ := lagOf(t, f, "/v1/users/alice/top/tracks?range=7d"); source != SourceCassandra || field != "2" || !stale {
		t.Fatalf("view not recovered: %s %s %v", source, field, stale)
	}

	// Without a LagSource the lag is unknown, never 0.
	g := newFixture(t, fixtureOpts{recovered: true})
	if field, stale, _, header := lagOf(t, g, "/v1/users/alice/top/tracks?range=365d"); field != "null" || !stale || header != "unknown" {
		t.Fatalf("no LagSource: %s %v %q", field, stale, header)
	}

	// Errors carry no lag.
	if rec := f.do("/v1/users/alice/top/tracks?k=0"); rec.Code != 400 || rec.Header().Get(LagHeader) != "" {
		t.Fatalf("a 400: %d %q", rec.Code, rec.Header().Get(LagHeader))
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
