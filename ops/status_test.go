package ops

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statusWorld is a registry with the metrics the status line reads, under
// their names and labels.
type statusWorld struct {
	reg                  *prometheus.Registry
	ingest, counted, dlq *prometheus.CounterVec
	crawls, requests     *prometheus.CounterVec
	consumerLag, sinkLag *prometheus.GaugeVec
	viewLag              prometheus.Gauge
	latency              *prometheus.HistogramVec
}

func newStatusWorld() *statusWorld {
	w := &statusWorld{reg: prometheus.NewPedanticRegistry()}
	w.ingest = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricIngest, Help: "h"}, []string{"outcome"})
	w.counted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricCounted, Help: "h"}, []string{"outcome"})
	w.dlq = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricDeadLetters, Help: "h"}, []string{"stage", "reason"})
	w.crawls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricCrawls, Help: "h"}, []string{"provider", "outcome"})
	w.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests, Help: "h"}, []string{"route", "method", "code", "source"})
	w.consumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricConsumerLag, Help: "h"}, []string{"component", "group", "topic"})
	w.sinkLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricSinkLag, Help: "h"}, []string{"sink", "partition"})
	w.viewLag = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricViewLag, Help: "h"})
	// The api's buckets.
	w.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricRequestTimes, Help: "h",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"route", "method", "source"})
	w.reg.MustRegister(w.ingest, w.counted, w.dlq, w.crawls, w.requests, w.consumerLag, w.sinkLag, w.viewLag, w.latency)
	return w
}

var allParts = []string{"ingest", "aggregator", "raw-writer", "flusher", "api", "crawler"}

// line renders attrs as the text handler writes the status line, without
// the time.
func line(t *testing.T, attrs []slog.Attr) string {
	t.Helper()
	var b bytes.Buffer
	NewLogger(&b, "info", "text").LogAttrs(context.Background(), LevelStatus, "status", attrs...)
	return strings.TrimSpace(regexp.MustCompile(`^time=\S+ `).ReplaceAllString(b.String(), ""))
}

// Known metric values at two gathers 5 s apart: rates over the interval,
// totals, lags summed over partitions, and the p99 of the requests of the
// interval only, interpolated in its bucket.
func TestStatusLineFromKnownMetrics(t *testing.T) {
	w := newStatusWorld()
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	// Before the interval.
	w.ingest.WithLabelValues("valid").Add(100)
	w.ingest.WithLabelValues("dead_letter").Add(2)
	w.counted.WithLabelValues("counted").Add(90)
	w.counted.WithLabelValues("duplicate").Add(10)
	w.dlq.WithLabelValues("ingest", "bad_json").Add(2)
	w.requests.WithLabelValues("/v1/users/:user/top/:entity", "GET", "200", "view").Add(50)
	for range 50 {
		w.latency.WithLabelValues("/v1/users/:user/top/:entity", "GET", "view").Observe(0.0008)
	}
	prev := gatherReading(w.reg, t0)

	// During the interval: 50 records in (10/s), 40 counted (8/s), a dead
	// letter, 100 requests (20/s) on two routes: 98 of 3 ms and 2 of
	// 200 ms, so the 99th (rank 99 of 100) lies halfway into the
	// (100 ms, 250 ms] bucket: 175 ms.
	w.ingest.WithLabelValues("valid").Add(49)
	w.ingest.WithLabelValues("dead_letter").Add(1)
	w.counted.WithLabelValues("counted").Add(40)
	w.counted.WithLabelValues("duplicate").Add(9)
	w.dlq.WithLabelValues("aggregator", "daily_cap").Add(1)
	w.requests.WithLabelValues("/v1/users/:user/top/:entity", "GET", "200", "view").Add(60)
	w.requests.WithLabelValues("/metrics", "GET", "200", "none").Add(40)
	for range 58 {
		w.latency.WithLabelValues("/v1/users/:user/top/:entity", "GET", "view").Observe(0.003)
	}
	for range 40 {
		w.latency.WithLabelValues("/metrics", "GET", "none").Observe(0.003)
	}
	for range 2 {
		w.latency.WithLabelValues("/v1/users/:user/top/:entity", "GET", "view").Observe(0.2)
	}
	w.consumerLag.WithLabelValues("ingest", "topk-ingest", "user.listen.raw").Set(0)
	w.consumerLag.WithLabelValues("aggregator", "topk-aggregator", "user.listen.valid").Set(12)
	w.sinkLag.WithLabelValues("raw_writer", "0").Set(1)
	w.sinkLag.WithLabelValues("raw_writer", "3").Set(2)
	w.viewLag.Set(5)
	// No flusher partition claimed: its lag is unknown.
	w.crawls.WithLabelValues("simulated", "ok").Add(4)
	w.crawls.WithLabelValues("simulated", "retrying").Add(1)
	w.crawls.WithLabelValues("lastfm", "failed").Add(1)
	cur := gatherReading(w.reg, t0.Add(5*time.Second))

	got := line(t, statusAttrs(allParts, prev, cur))
	// Lags and crawls are levels and totals: the same in both intervals.
	const lagsAndCrawls = "lag.ingest=0 lag.aggregator=12 lag.raw_writer=3 lag.flusher=? lag.view=5 crawled=4 crawl_errors=2 "
	want := "level=STATUS msg=status in/s=10 counted=130 counted/s=8 dead_lettered=3 " + lagsAndCrawls + "api.req/s=20 api.p99_ms=175"
	if got != want {
		t.Errorf("status line\n got %s\nwant %s", got, want)
	}

	// The next interval: nothing happened; no request, so no p99.
	next := gatherReading(w.reg, t0.Add(10*time.Second))
	got = line(t, statusAttrs(allParts, cur, next))
	want = "level=STATUS msg=status in/s=0 counted=130 counted/s=0 dead_lettered=3 " + lagsAndCrawls + "api.req/s=0 api.p99_ms=-"
	if got != want {
		t.Errorf("idle status line\n got %s\nwant %s", got, want)
	}
}

// A service shows only the figures of the parts it runs; counters with no
// sample yet read 0.
func TestStatusLineParts(t *testing.T) {
	w := newStatusWorld()
	t0 := time.Now()
	prev := gatherReading(w.reg, t0)
	cur := gatherReading(w.reg, t0.Add(time.Second))
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{[]string{"api"}, "level=STATUS msg=status lag.view=0 api.req/s=0 api.p99_ms=-"},
		{[]string{"ingest"}, "level=STATUS msg=status in/s=0 dead_lettered=0 lag.ingest=?"},
		{[]string{"flusher"}, "level=STATUS msg=status lag.flusher=?"},
		{[]string{"crawler"}, "level=STATUS msg=status crawled=0 crawl_errors=0"},
	} {
		if got := line(t, statusAttrs(c.parts, prev, cur)); got != c.want {
			t.Errorf("parts %v\n got %s\nwant %s", c.parts, got, c.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{0.01, 0.1, 1, math.Inf(1)}
	for _, c := range []struct {
		name      string
		prev, cur []float64
		q, want   float64
		wantIsNaN bool
	}{
		{name: "no observations", prev: []float64{5, 5, 5, 5}, cur: []float64{5, 5, 5, 5}, q: 0.99, wantIsNaN: true},
		{name: "first bucket from 0", cur: []float64{10, 10, 10, 10}, q: 0.5, want: 0.005},
		{name: "interpolated", cur: []float64{0, 50, 100, 100}, q: 0.75, want: 0.55},
		{name: "only the interval", prev: []float64{100, 100, 100, 100}, cur: []float64{100, 100, 200, 200}, q: 0.5, want: 0.55},
		{name: "in +Inf: the largest finite bound", cur: []float64{0, 0, 1, 100}, q: 0.99, want: 1},
		{name: "reset counter: all of cur is new", prev: []float64{500, 500, 500, 500}, cur: []float64{0, 10, 10, 10}, q: 0.5, want: 0.055},
	} {
		prev := c.prev
		if prev == nil {
			prev = make([]float64, len(bounds))
		}
		got := quantile(c.q, bounds, prev, c.cur)
		if c.wantIsNaN != math.IsNaN(got) || (!c.wantIsNaN && math.Abs(got-c.want) > 1e-9) {
			t.Errorf("%s: %v, want %v (NaN %v)", c.name, got, c.want, c.wantIsNaN)
		}
	}
}

// lineWriter hands each write to a channel (dropping it when the channel
// is full), for a test that waits for a line while a logger writes.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

// Run logs a line per interval at LevelStatus, which a split logger's
// terminal shows, and stops with its context; without an interval it
// refuses.
func TestStatusReporterRun(t *testing.T) {
	w := newStatusWorld()
	term := make(lineWriter, 100)
	var file bytes.Buffer // read once Run has returned
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &StatusReporter{Gatherer: w.reg, Interval: 20 * time.Millisecond, Parts: []string{"aggregator"},
		Log: NewSplitLogger(term, &file, "info", "text")}
	go func() { done <- r.Run(ctx) }()
	w.counted.WithLabelValues("counted").Add(7)
	timeout := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case l := <-term:
			seen = strings.Contains(l, "level=STATUS msg=status counted=7 ")
		case <-timeout:
			t.Fatal("no status line with counted=7 on the terminal within 5 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file.String(), "level=STATUS msg=status counted=7 ") {
		t.Errorf("the file lacks the status line: %q", file.String())
	}
	if err := (&StatusReporter{Gatherer: w.reg, Log: NewLogger(&file, "info", "text")}).Run(context.Background()); err == nil {
		t.Error("a zero interval ran")
	}
}
