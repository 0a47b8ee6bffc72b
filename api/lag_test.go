package api

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk/charts"
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
		{"/v1/users/alice/top/tracks?range=7d", charts.SourceView},
		{"/v1/users/alice/top/artists?range=365d", charts.SourceMixed},
		{"/v1/users/alice/top/albums?from=2025-01-01&to=2025-02-01", charts.SourceCassandra},
		{"/v1/users/alice/activity?range=30d", charts.SourceView},
		{"/v1/users/alice/activity?range=all", charts.SourceMixed},
		{"/v1/users/carol/activity?from=2025-01-01&to=2025-06-01", charts.SourceCassandra},
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
			if k.source == charts.SourceView {
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
	reads := f.store.Reads("month_items")
	lag.set(2*time.Second, true)
	if field, stale, _, header := lagOf(t, f, path); field != "2" || !stale || header != "2" {
		t.Fatalf("cached answer: %s %v %q, want the lag of now (2)", field, stale, header)
	}
	if f.store.Reads("month_items") != reads {
		t.Fatal("the second answer was not cached")
	}

	// The view not recovered: everything from Cassandra, with its lag.
	f.view.SetRecovered(false)
	if field, stale, source, _ := lagOf(t, f, "/v1/users/alice/top/tracks?range=7d"); source != charts.SourceCassandra || field != "2" || !stale {
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
