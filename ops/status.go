package ops

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// StatusReporter logs a service's status line every Interval, at
// LevelStatus, computed from the process's own metrics (what /metrics
// serves): one line a person can read to see whether the service keeps
// up, where the rest of the log is a line per request and per crawl.
//
//	level=STATUS msg=status in/s=41.2 counted=48213 counted/s=40.8 dead_lettered=0
//	  lag.ingest=0 lag.aggregator=12 lag.raw_writer=0 lag.flusher=3 lag.view=0
//	  crawled=400 crawl_errors=0 api.req/s=2.4 api.p99_ms=3.1   (one line)
//
// Rates are over the interval, between two gathers. The figures are those
// of the parts the service runs (Parts):
//
//   - ingest: in/s, records read from user.listen.raw
//     (topk_ingest_records_total); dead_lettered, records sent to the DLQ
//     since the start (topk_dlq_records_total); lag.ingest;
//   - aggregator: counted and counted/s, listens counted
//     (topk_aggregator_listens_total{outcome="counted"}); dead_lettered;
//     lag.aggregator;
//   - raw-writer, flusher: lag.raw_writer, lag.flusher (topk_sink_lag);
//   - fanout, sitewide, sitewide-flusher (the sitewide charts): lag.fanout
//     and lag.sitewide (topk_consumer_lag), lag.sitewide_flusher
//     (topk_sink_lag);
//   - api: lag.view (topk_view_lag), api.req/s and api.p99_ms, every
//     route's requests and the 99th percentile of their latency over the
//     interval (topk_http_requests_total,
//     topk_http_request_duration_seconds, interpolated in its buckets as
//     Prometheus' histogram_quantile does; "-" without requests);
//   - crawler: crawled and crawl_errors, crawls that succeeded and that
//     failed (retrying or given up) since the start
//     (topk_crawler_crawls_total).
//
// lag.ingest and lag.aggregator are topk_consumer_lag (kafka.LagCollector):
// records of their input not yet committed. A lag is records, summed over
// partitions; "?" while unknown (Kafka unreachable, a sink with no
// partition claimed yet). A counter with no sample yet reads 0.
type StatusReporter struct {
	// Gatherer is read every interval; nil: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Interval spaces the lines (the first comes one interval after Run
	// starts).
	Interval time.Duration
	// Parts are what the service runs: "ingest", "aggregator",
	// "raw-writer", "flusher", "fanout", "sitewide", "sitewide-flusher",
	// "api", "crawler".
	Parts []string
	// Log takes the lines.
	Log *slog.Logger
}

// Run logs a line every Interval until ctx ends; it returns nil, or an
// error at once when Interval is not positive.
func (r *StatusReporter) Run(ctx context.Context) error {
	if r.Interval <= 0 {
		return fmt.Errorf("status line: interval %v is not positive", r.Interval)
	}
	g := r.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	prev := gatherReading(g, time.Now())
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			cur := gatherReading(g, now)
			r.Log.LogAttrs(ctx, LevelStatus, "status", statusAttrs(r.Parts, prev, cur)...)
			prev = cur
		}
	}
}

// Names of the metrics the status line reads (their owners: ingest,
// aggregator, processors' dead letters, kafka.LagCollector, sink, views,
// api, crawler).
const (
	metricIngest       = "topk_ingest_records_total"
	metricCounted      = "topk_aggregator_listens_total"
	metricDeadLetters  = "topk_dlq_records_total"
	metricConsumerLag  = "topk_consumer_lag"
	metricSinkLag      = "topk_sink_lag"
	metricViewLag      = "topk_view_lag"
	metricCrawls       = "topk_crawler_crawls_total"
	metricRequests     = "topk_http_requests_total"
	metricRequestTimes = "topk_http_request_duration_seconds"
)

// reading is one gather of the registry.
type reading struct {
	at       time.Time
	families map[string]*dto.MetricFamily
}

// gatherReading gathers g. A collector that fails leaves its metrics out
// (the line shows them unknown); the others are still read.
func gatherReading(g prometheus.Gatherer, at time.Time) reading {
	mfs, _ := g.Gather()
	r := reading{at: at, families: make(map[string]*dto.MetricFamily, len(mfs))}
	for _, mf := range mfs {
		r.families[mf.GetName()] = mf
	}
	return r
}

// sum adds the samples of a counter or gauge whose labels match (label,
// one of values; no label: every sample); ok is false when there is none.
func (r reading) sum(name, label string, values ...string) (v float64, ok bool) {
	mf := r.families[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if label != "" && !slices.Contains(values, labelValue(m, label)) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		default:
			continue
		}
		ok = true
	}
	return v, ok
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// buckets are a histogram's cumulative counts by upper bound, every
// sample of the family added together (+Inf last).
func (r reading) buckets(name string) (bounds, counts []float64) {
	mf := r.families[name]
	if mf == nil {
		return nil, nil
	}
	by := map[float64]float64{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		for _, b := range h.GetBucket() {
			by[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		by[math.Inf(1)] += float64(h.GetSampleCount())
	}
	for b := range by {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	for _, b := range bounds {
		counts = append(counts, by[b])
	}
	return bounds, counts
}

// increase is cur − prev of a counter; a counter that went down was reset
// (the process keeps its counters, but a component's may be rebuilt), and
// then all of cur is new.
func increase(prev, cur float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// quantile is the q-quantile of the observations between two readings of
// a histogram (cumulative counts by upper bound, +Inf last), interpolated
// linearly within its bucket like Prometheus' histogram_quantile: NaN
// without observations; the largest finite bound when it falls in +Inf.
func quantile(q float64, bounds, prev, cur []float64) float64 {
	if len(bounds) == 0 {
		return math.NaN()
	}
	delta := make([]float64, len(bounds))
	for i := range bounds {
		p := 0.0
		if i < len(prev) {
			p = prev[i]
		}
		delta[i] = increase(p, cur[i])
	}
	total := delta[len(delta)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	for i, c := range delta {
		if c < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return bounds[i-1]
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bounds[i-1], delta[i-1]
		}
		if c == below {
			return bounds[i]
		}
		return lower + (bounds[i]-lower)*(rank-below)/(c-below)
	}
	return bounds[len(bounds)-1]
}

// alignTo gives prev's cumulative counts at cur's bounds (a bound prev
// lacks: 0, the histogram had no sample then).
func alignTo(bounds, prevBounds, prevCounts []float64) []float64 {
	out := make([]float64, len(bounds))
	for i, b := range bounds {
		if j, ok := slices.BinarySearch(prevBounds, b); ok {
			out[i] = prevCounts[j]
		}
	}
	return out
}

// statusAttrs are the status line's figures for parts, from two readings.
func statusAttrs(parts []string, prev, cur reading) []slog.Attr {
	runs := func(p string) bool { return slices.Contains(parts, p) }
	secs := cur.at.Sub(prev.at).Seconds()
	rate := func(name, label string, values ...string) float64 {
		p, _ := prev.sum(name, label, values...)
		c, _ := cur.sum(name, label, values...)
		if secs <= 0 {
			return 0
		}
		return round1(increase(p, c) / secs)
	}
	total := func(name, label string, values ...string) int64 {
		v, _ := cur.sum(name, label, values...)
		return int64(v)
	}
	lag := func(key, name, label, value string) slog.Attr {
		v, ok := cur.sum(name, label, value)
		if !ok {
			return slog.String(key, "?")
		}
		return slog.Int64(key, int64(v))
	}

	var out, lags []slog.Attr
	if runs("ingest") {
		out = append(out, slog.Float64("in/s", rate(metricIngest, "")))
	}
	if runs("aggregator") {
		out = append(out, slog.Int64("counted", total(metricCounted, "outcome", "counted")),
			slog.Float64("counted/s", rate(metricCounted, "outcome", "counted")))
	}
	if runs("ingest") || runs("aggregator") {
		out = append(out, slog.Int64("dead_lettered", total(metricDeadLetters, "")))
	}
	for _, l := range []struct{ part, key, metric, label, value string }{
		{"ingest", "ingest", metricConsumerLag, "component", "ingest"},
		{"aggregator", "aggregator", metricConsumerLag, "component", "aggregator"},
		{"raw-writer", "raw_writer", metricSinkLag, "sink", "raw_writer"},
		{"flusher", "flusher", metricSinkLag, "sink", "flusher"},
		{"fanout", "fanout", metricConsumerLag, "component", "fanout"},
		{"sitewide", "sitewide", metricConsumerLag, "component", "sitewide"},
		{"sitewide-flusher", "sitewide_flusher", metricSinkLag, "sink", "sitewide_flusher"},
		{"api", "view", metricViewLag, "", ""},
	} {
		if runs(l.part) {
			lags = append(lags, lag(l.key, l.metric, l.label, l.value))
		}
	}
	if len(lags) > 0 {
		out = append(out, slog.Attr{Key: "lag", Value: slog.GroupValue(lags...)})
	}
	if runs("crawler") {
		out = append(out, slog.Int64("crawled", total(metricCrawls, "outcome", "ok")),
			slog.Int64("crawl_errors", total(metricCrawls, "outcome", "retrying", "failed")))
	}
	if runs("api") {
		p99 := slog.StringValue("-")
		bounds, counts := cur.buckets(metricRequestTimes)
		pb, pc := prev.buckets(metricRequestTimes)
		if q := quantile(0.99, bounds, alignTo(bounds, pb, pc), counts); !math.IsNaN(q) {
			p99 = slog.Float64Value(round1(q * 1000))
		}
		out = append(out, slog.Attr{Key: "api", Value: slog.GroupValue(
			slog.Float64("req/s", rate(metricRequests, "")), slog.Attr{Key: "p99_ms", Value: p99})})
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
