package sitewide

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sitewide"
	swview "github.com/topk-charts/topk/views/sitewide"
)

// feed writes the world's plays as the sitewide group would: per key
// (entity, item, day, the user's bucket) each user's plays and spelling.
func feed(t *testing.T, tt *tester.Tester, w *world) {
	t.Helper()
	type listener struct {
		plays int64
		sp    sitewide.Spelling
	}
	keys := map[string]map[string]listener{}
	for _, r := range w.rows {
		k := sitewide.Key{Entity: r.e, Item: r.item, Day: r.day, Bucket: sitewide.BucketOf(r.user)}.String()
		if keys[k] == nil {
			keys[k] = map[string]listener{}
		}
		l := keys[k][r.user]
		l.plays += r.plays
		// A user's spelling of an item-day: their latest (the world's
		// users keep one per item).
		l.sp = sitewide.Spelling{Name: r.name, Artist: r.artist}
		keys[k][r.user] = l
	}
	topic := string(listen.NewTopics("").SitewideRecent)
	for k, users := range keys {
		v := &sitewide.Value{Version: 1}
		names := make([]string, 0, len(users))
		for u := range users {
			names = append(names, u)
		}
		slices.SortFunc(names, strings.Compare)
		for _, u := range names {
			l := users[u]
			i := slices.Index(v.Spellings, l.sp)
			if i < 0 {
				i = len(v.Spellings)
				v.Spellings = append(v.Spellings, l.sp)
			}
			v.Listeners = append(v.Listeners, sitewide.Listener{User: u, Plays: uint32(l.plays), Version: 1, Spelling: uint32(i)})
		}
		tt.Consume(topic, k, sitewide.AppendValue(nil, v))
	}
}

// The service over the real sitewide view (fed through Goka's tester as
// the group writes) and the fake Cassandra: the view's ranges are exact,
// mixed ranges agree with the independent count.
func TestServiceOverTheView(t *testing.T) {
	w := seeded()
	tt := tester.New(t)
	clock := func() time.Time { return now }
	v, err := swview.New(processors.Settings{}, swview.Config{Days: 35, Now: clock, Registerer: prometheus.NewRegistry(), Maintain: time.Hour},
		goka.WithViewTester(tt))
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
	for !v.Recovered() {
		time.Sleep(5 * time.Millisecond)
	}
	feed(t, tt, w)
	store := &fakeStore{w: w}
	svc, err := New(Config{View: v, Store: store, CacheTTL: time.Minute, Now: clock, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{w: w}
	first := v.FirstDay(now)
	if day(first) != "2026-02-04" {
		t.Fatalf("first day %s", day(first))
	}
	for _, c := range []struct {
		r        string
		from     string
		source   string
		entities []topk.Entity
	}{
		{"today", "2026-03-10", charts.SourceView, []topk.Entity{topk.Tracks, topk.Artists}},
		{"30d", "2026-02-09", charts.SourceView, []topk.Entity{topk.Tracks, topk.Artists}},
		{"this_month", "2026-03-01", charts.SourceView, []topk.Entity{topk.Tracks}},
		{"90d", "2025-12-11", charts.SourceMixed, []topk.Entity{topk.Tracks, topk.Artists}},
	} {
		for _, e := range c.entities {
			a, err := svc.Top(context.Background(), Query{Entity: e, Range: charts.Named(c.r), K: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if a.Source != c.source || a.ListenersExact != (c.source == charts.SourceView) {
				t.Fatalf("%s %s: source %s, exact %v", c.r, e, a.Source, a.ListenersExact)
			}
			want := f.want(e, date(c.from), date("2026-03-10"), first)
			if a.Total != len(want) {
				t.Fatalf("%s %s: total %d, want %d", c.r, e, a.Total, len(want))
			}
			sameItems(t, c.r+" "+string(e), a.Items, want)
		}
	}
}
