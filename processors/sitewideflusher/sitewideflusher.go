// The sitewide flusher's group, metrics and Config, and its life: New
// builds it on a sink, Run runs it, Check reports its readiness.

package sitewideflusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

const groupName = "topk-sitewide-flusher"

// Group is the sitewide flusher's consumer group in a namespace.
func Group(namespace string) string { return listen.Namespaced(namespace, groupName) }

// Name labels the sitewide flusher's sink metrics
// (topk_sink_*{sink="sitewide_flusher"}); topk_sink_oldest_unwritten_seconds
// with it is the flush lag.
const Name = "sitewide_flusher"

var (
	rowsWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_flusher_rows_written_total",
		Help: "sitewide_days rows written (one per key and flush, after coalescing; a retried flush counts again).",
	})
	flushSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "topk_sitewide_flusher_flush_seconds",
		Help:    "Duration of successful flushes (one partition's batch: coalesce and write).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})
	coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_flusher_changes_coalesced_total",
		Help: "Table records superseded by a newer value of the same key within one flush, beyond those the sink " +
			"replaced as it read them (topk_sink_records_coalesced_total{sink=\"sitewide_flusher\"}).",
	})
	rolledUp = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sitewide_flusher_rolled_up_total",
		Help: "Months (period=month: sitewide_month_items) and years (period=year: sitewide_year_items) of sitewide_days rolled up whole once they left the view's window.",
	}, []string{"period"})
	rollupErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_flusher_rollup_errors_total",
		Help: "Roll-up rounds that failed (tried again after RollupRetry).",
	})
	skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sitewide_flusher_records_skipped_total",
		Help: "Table records not written, by reason (bad_key, tombstone, undecodable, empty: a value with version 0).",
	}, []string{"reason"})
)

// registerMetrics registers the package's metrics on reg (nil: the
// default registerer); again is a no-op.
func registerMetrics(reg prometheus.Registerer) error {
	return metrics.Register(reg, rowsWritten, flushSeconds, coalesced, skipped, rolledUp, rollupErrors)
}

// Config configures the sitewide flusher.
type Config struct {
	// Namespace prefixes the topic and the group (tests); empty in production.
	Namespace string
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// FlushInterval is how long changes are coalesced before they are
	// written (from the first unwritten change of a partition). Default
	// 5 s: the api's sitewide view serves the recent days, so Cassandra
	// may lag by seconds; longer coalesces more of a popular key's
	// changes, shorter makes older days' rows fresher.
	FlushInterval time.Duration
	// MaxBatch flushes early once a partition has this many unwritten
	// changes. Default 5000.
	MaxBatch int
	// MaxBatchBytes flushes early once the values a partition holds to
	// write would pass this many bytes (sink.RecordBytes; a newer value of
	// a key replaces the one held, sink.Coalescer). Default
	// sink.DefaultMaxBatchBytes (TOPK_SINK_BATCH_BYTES).
	MaxBatchBytes int
	// ReadAhead is how many records the Kafka client fetches ahead per
	// claimed partition while a flush is written (sink.Config.ReadAhead):
	// with values of up to V bytes (the group bounds a key's value) a
	// partition holds up to ReadAhead·V beyond its batch. Default 32.
	ReadAhead int
	// Concurrency is the most CQL batches one instance has in flight,
	// all its partitions together. Default 4.
	Concurrency int
	// MaxRowsPerCQLBatch splits the rows of one Cassandra partition into
	// batches of at most this many. Default 1000.
	MaxRowsPerCQLBatch int
	// RecentDays is the api's view window (TOPK_VIEW_DAYS, default
	// sitewide.DefaultRecentDays): a month (a year) is rolled up whole
	// once it ends before the month of today − RecentDays, as the api
	// reads it whole from Cassandra only then.
	RecentDays int
	// RollupEvery is how often the months to roll up are looked for
	// (a round with none costs a few reads per entity). Default 5
	// minutes; RollupRetry (default 1 minute) after a failure.
	RollupEvery, RollupRetry time.Duration
	// Now is the clock of the roll-ups. Default time.Now.
	Now func() time.Time
	// Backoff spaces retries of a failed flush. Default sink.DefaultBackoff.
	Backoff sink.Backoff
	// OutageLimit is how long a partition's writes may keep failing
	// (Cassandra down), or Kafka stay unreachable, before Run returns an
	// error. Default outage.DefaultLimit (5 minutes); see sink.Config.
	OutageLimit time.Duration
	// Log receives the logs. Default slog.Default().
	Log *slog.Logger
	// Sarama overrides the Kafka client settings (default kafka.NewSaramaConfig).
	Sarama *sarama.Config
	// Registerer takes the package's metrics and its sink's (registered
	// by New); nil: prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("sitewide flusher: no Brokers"))
	}
	if c.RecentDays < 0 || c.RollupEvery < 0 || c.RollupRetry < 0 {
		errs = append(errs, errors.New("sitewide flusher: RecentDays, RollupEvery and RollupRetry must not be negative"))
	}
	if c.FlushInterval < 0 || c.MaxBatch < 0 || c.MaxBatchBytes < 0 || c.ReadAhead < 0 || c.Concurrency < 0 ||
		c.MaxRowsPerCQLBatch < 0 || c.OutageLimit < 0 {
		errs = append(errs, errors.New("sitewide flusher: sizes and durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 5000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = sink.DefaultMaxBatchBytes
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = 32
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.MaxRowsPerCQLBatch == 0 {
		c.MaxRowsPerCQLBatch = 1000
	}
	if c.RecentDays == 0 {
		c.RecentDays = sitewide.DefaultRecentDays
	}
	if c.RollupEvery == 0 {
		c.RollupEvery = 5 * time.Minute
	}
	if c.RollupRetry == 0 {
		c.RollupRetry = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Flusher is the sitewide flusher: New, then Run. It is the sink's
// Writer (and Coalescer).
type Flusher struct {
	cfg   Config
	store store
	log   *slog.Logger
	sink  *sink.Sink
}

// newFlusher is a flusher on st without its sink.
func newFlusher(cfg Config, st store) *Flusher {
	cfg = cfg.withDefaults()
	return &Flusher{cfg: cfg, store: st, log: cfg.Log.With("component", Name)}
}

// New returns a sitewide flusher on session (opened on topk's keyspace by
// the caller, who closes it after Run returns).
func New(cfg Config, session *gocql.Session) (*Flusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if session == nil {
		return nil, errors.New("sitewide flusher: nil Cassandra session")
	}
	if err := registerMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("sitewide flusher: %w", err)
	}
	cfg = cfg.withDefaults()
	f := newFlusher(cfg, cassandra.NewSitewideStore(session, cassandra.SitewideStoreConfig{
		Concurrency: cfg.Concurrency, MaxRowsPerBatch: cfg.MaxRowsPerCQLBatch}))
	s, err := sink.New(f.sinkConfig(), f)
	if err != nil {
		return nil, err
	}
	f.sink = s
	return f, nil
}

// sinkConfig is the configuration of the flusher's sink: a batch is one
// flush of a partition (FlushInterval, MaxBatch, MaxBatchBytes).
func (f *Flusher) sinkConfig() sink.Config {
	cfg := f.cfg
	return sink.Config{
		Name:          Name,
		Brokers:       cfg.Brokers,
		Group:         Group(cfg.Namespace),
		Topic:         string(sitewide.Table(cfg.Namespace)),
		BatchSize:     cfg.MaxBatch,
		MaxBatchBytes: cfg.MaxBatchBytes,
		ReadAhead:     cfg.ReadAhead,
		Linger:        cfg.FlushInterval,
		Backoff:       cfg.Backoff,
		OutageLimit:   cfg.OutageLimit,
		Log:           cfg.Log,
		Sarama:        cfg.Sarama,
		Registerer:    cfg.Registerer,
	}
}

// Run flushes until ctx ends; see sink.Sink.Run.
func (f *Flusher) Run(ctx context.Context) error {
	f.log.Info("sitewide flusher started", "flush_interval", f.cfg.FlushInterval, "max_batch", f.cfg.MaxBatch,
		"max_batch_bytes", f.cfg.MaxBatchBytes, "read_ahead", f.cfg.ReadAhead, "concurrency", f.cfg.Concurrency,
		"recent_days", f.cfg.RecentDays)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.rollUps(ctx)
	}()
	defer wg.Wait()
	return f.sink.Run(ctx)
}

// rollUps rolls up the months and years that left the view's window, at once and
// then every RollupEvery (RollupRetry after a failure), until ctx ends.
func (f *Flusher) rollUps(ctx context.Context) {
	for {
		wait := f.cfg.RollupEvery
		if err := f.rollUp(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			rollupErrors.Inc()
			f.log.Warn("sitewide roll-up failed; trying again", "in", f.cfg.RollupRetry, "err", err)
			wait = f.cfg.RollupRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// rollUp is one round of rollUps: the months ending before today −
// RecentDays (UTC), and the years they end, not yet done.
func (f *Flusher) rollUp(ctx context.Context) error {
	before := f.cfg.Now().UTC().AddDate(0, 0, -f.cfg.RecentDays)
	n, err := f.store.RollUp(ctx, before, f.log)
	rolledUp.WithLabelValues("month").Add(float64(n.Months))
	rolledUp.WithLabelValues("year").Add(float64(n.Years))
	return err
}

// Check reports Kafka unreachable and partitions whose flushes keep
// failing (readiness: alive but not flushing; the api does not depend on
// it).
func (f *Flusher) Check(ctx context.Context) error { return f.sink.Check(ctx) }
