package charts

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LagSource tells how far Cassandra's day values and rollups are behind
// the aggregator's changelog, which the view follows (LagMonitor
// implements it).
type LagSource interface {
	// CassandraLag is how long the oldest changelog record the flusher
	// has not yet written has waited; known false: it cannot be measured
	// now (Kafka unreachable, no measurement yet).
	CassandraLag() (lag time.Duration, known bool)
}

// LagConfig configures a LagMonitor.
type LagConfig struct {
	// Measure measures the lag once (kafka.TimeLagMeter.Measure on the
	// flusher's group and the aggregator's table). An error makes the lag
	// unknown until a measurement succeeds again.
	Measure func(ctx context.Context) (time.Duration, error)
	// Interval is the pause between measurements. Default 5 s.
	Interval time.Duration
	// Timeout bounds one measurement. Default Interval.
	Timeout time.Duration
	// MaxAge: a lag measured longer ago than this is unknown (Run not
	// running). Default 3 × Interval.
	MaxAge time.Duration
	// Registerer takes topk_api_cassandra_lag_seconds and
	// topk_api_cassandra_lag_errors_total; default
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Metric is the prefix of those two metrics' names and What the
	// writer the lag is of, in their help. Defaults
	// "topk_api_cassandra_lag" and "the flusher" (the sitewide charts'
	// monitor names its own).
	Metric, What string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// LagMonitor measures the Cassandra lag in the background, one
// measurement at a time, so requests only read the last result.
type LagMonitor struct {
	cfg    LagConfig
	log    *slog.Logger
	errors prometheus.Counter

	mu       sync.Mutex
	lag      time.Duration
	measured time.Time // of the last successful measurement; zero: none
	failing  bool      // the last measurement failed
}

// NewLagMonitor registers the metrics; Run measures.
func NewLagMonitor(cfg LagConfig, log *slog.Logger) (*LagMonitor, error) {
	if cfg.Measure == nil {
		return nil, errors.New("charts: LagConfig needs Measure")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Interval
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 3 * cfg.Interval
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metric == "" {
		cfg.Metric, cfg.What = "topk_api_cassandra_lag", "the flusher"
	}
	m := &LagMonitor{cfg: cfg, log: log}
	m.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: cfg.Metric + "_errors_total",
		Help: "Measurements of the Cassandra lag of " + cfg.What + " that failed (Kafka unreachable); the lag is unknown until one succeeds.",
	})
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: cfg.Metric + "_seconds",
		Help: "How long the oldest changelog record " + cfg.What + " has not yet written to Cassandra has waited " +
			"(answers whose days come partly from Cassandra carry it); NaN while unknown.",
	}, func() float64 {
		lag, ok := m.CassandraLag()
		if !ok {
			return math.NaN()
		}
		return lag.Seconds()
	})
	for _, c := range []prometheus.Collector{m.errors, gauge} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Run measures now and then every Interval until ctx ends; it returns
// nil then. A failing measurement is logged once, and once when it
// succeeds again.
func (m *LagMonitor) Run(ctx context.Context) error {
	for {
		m.measure(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.cfg.Interval):
		}
	}
}

func (m *LagMonitor) measure(ctx context.Context) {
	mctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	lag, err := m.cfg.Measure(mctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not a failure
	}
	m.mu.Lock()
	wasFailing := m.failing
	m.failing = err != nil
	if err == nil {
		m.lag, m.measured = max(lag, 0), m.cfg.Now()
	}
	m.mu.Unlock()
	switch {
	case err != nil:
		m.errors.Inc()
		if !wasFailing {
			m.log.Warn("cannot measure how far Cassandra is behind: answers say unknown", "err", err)
		}
	case wasFailing:
		m.log.Info("measuring how far Cassandra is behind again", "lag", lag.Round(time.Millisecond))
	}
}

// CassandraLag implements LagSource: the last measurement, unless it
// failed or is older than MaxAge.
func (m *LagMonitor) CassandraLag() (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing || m.measured.IsZero() || m.cfg.Now().Sub(m.measured) > m.cfg.MaxAge {
		return 0, false
	}
	return m.lag, true
}

// Freshness says how current an answer's Cassandra part is. It is taken
// when the answer is made, never cached with the Cassandra part: a cached
// tally shows the lag of now (its as_of tells its own age).
type Freshness struct {
	// CassandraLag is present when the answer read Cassandra (source
	// cassandra or mixed): seconds to a tenth, null when unknown.
	CassandraLag LagSeconds `json:"cassandra_lag_seconds,omitzero"`
	// Stale: the Cassandra part may miss changes the view already shows
	// (lag above 0, or unknown).
	Stale bool `json:"stale"`
}

// LagSeconds is the JSON of a lag: absent (IsZero), null (unknown) or a
// number.
type LagSeconds struct {
	present, known bool
	seconds        float64
}

// IsZero reports an absent lag (the answer did not read Cassandra).
func (l LagSeconds) IsZero() bool { return !l.present }

// String is the lag in seconds, or "unknown".
func (l LagSeconds) String() string {
	if !l.known {
		return "unknown"
	}
	return strconv.FormatFloat(l.seconds, 'f', -1, 64)
}

// MarshalJSON is the number, or null when unknown.
func (l LagSeconds) MarshalJSON() ([]byte, error) {
	if !l.known {
		return []byte("null"), nil
	}
	return []byte(l.String()), nil
}

// freshness of an answer from source; answers only from the view carry
// none (nothing in them lags the view).
func (s *Service) freshness(source string) Freshness { return FreshnessOf(source, s.cfg.Lag) }

// FreshnessOf is the Freshness of an answer from source (SourceView,
// SourceCassandra, SourceMixed) when lag tells how far Cassandra is
// behind the view (nil: unknown). The sitewide charts use it too, with
// the sitewide flusher's lag.
func FreshnessOf(source string, lag LagSource) Freshness {
	if source == SourceView {
		return Freshness{}
	}
	l := LagSeconds{present: true}
	if lag != nil {
		if lag, ok := lag.CassandraLag(); ok {
			l.known, l.seconds = true, math.Round(max(lag, 0).Seconds()*10)/10
		}
	}
	return Freshness{CassandraLag: l, Stale: !l.known || l.seconds > 0}
}
