// The flusher's group, metrics and Config, and its life: New builds it on
// a sink, Run runs it, Check reports its readiness.

package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/topk-charts/topk/processors/stored"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/store/cassandra"
)

const groupName = "topk-flusher"

// Group is the flusher's consumer group in a namespace.
func Group(namespace string) string { return listen.Namespaced(namespace, groupName) }

// Name labels the flusher's sink metrics (topk_sink_*{sink="flusher"});
// topk_sink_oldest_unwritten_seconds{sink="flusher"} is the flush lag.
const Name = "flusher"

var (
	daysWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_days_written_total",
		Help: "User-day states written to Cassandra (after coalescing).",
	})
	rollupsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rollups_written_total",
		Help: "Rollups recomputed and written, by level (month, year).",
	}, []string{"level"})
	rollupsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rollups_unchanged_total",
		Help: "Rollups recomputed and not written, by level (month, year): this instance had written one of that period " +
			"with at least that version (the sum of its days' versions) already.",
	}, []string{"level"})
	rowsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rows_written_total",
		Help: "Rows written, by table.",
	}, []string{"table"})
	coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_changes_coalesced_total",
		Help: "Changelog records superseded by a newer state of the same user-day within one flush, beyond those " +
			"the sink replaced as it read them (topk_sink_records_coalesced_total{sink=\"flusher\"}).",
	})
	skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_records_skipped_total",
		Help: "Changelog records not written, by reason (tombstone, undecodable, bad_key, empty: a state with no change, version 0).",
	}, []string{"reason"})
	reads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_reads_total",
		Help: "CQL reads sent to recompute rollups, by table.",
	}, []string{"table"})
	inputs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rollup_inputs_total",
		Help: "Day states (level day) and month rollups (level month) summed into rollups, by source: " +
			"batch (the state just written), cache (remembered, same version as Cassandra's), read (from Cassandra), " +
			"and for months round (recomputed in the same round) and days (summed from its days for the year).",
	}, []string{"level", "source"})
	requests = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_rollup_requests_total",
		Help: "Flushes (one partition's batch) that asked for rollups.",
	})
	rounds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_rollup_rounds_total",
		Help: "Rollup rounds; each serves every flush that asked before it started.",
	})
	roundWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "topk_flusher_rollup_round_wait_seconds",
		Help: "How long a rollup round waited, once it could start, for the partitions expected to submit to it " +
			"(at most the rollup linger, by default the flush interval).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
	})
	cacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_flusher_cache_bytes",
		Help: "Approximate size of the flusher's cache of day states and month rollups.",
	})
)

// registerMetrics registers the flusher's metrics on reg (nil: the
// default registerer); again is a no-op.
func registerMetrics(reg prometheus.Registerer) error {
	return metrics.Register(reg, daysWritten, rollupsWritten, rollupsSkipped, rowsWritten, coalesced, skipped, reads, inputs, requests,
		rounds, roundWait, cacheBytes)
}

// Config configures the flusher.
type Config struct {
	// Namespace prefixes the topic and the group (tests); empty in production.
	Namespace string
	// Stored tells the api's caches about every write that changed a day
	// before yesterday (processors/stored), after the write and before the
	// input's offsets are marked; nil: nobody is told.
	Stored *stored.Publisher
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// FlushInterval is how long changes are coalesced before they are
	// written (from the first unwritten change of a partition). Default 1 s
	// (TOPK_FLUSH_INTERVAL_MS).
	FlushInterval time.Duration
	// RollupLinger bounds how long a rollup round waits, once it could
	// start, for the partitions expected to submit to it soon (writing
	// their days, filling batches while catching up, or a tenth of the
	// flush interval from their batch timer), so that one round serves a
	// whole wave of flushes: a user's days are spread over every
	// partition, and each round serving some of them recomputes the user's
	// rollups again (see roller). A round waits at most RollupLinger or, if
	// longer, as long as its slowest flush took to write its days (while
	// catching up, the partitions of a wave finish their day writes seconds
	// apart): the wait adds at most that much to a flush's write (while
	// catching up, about doubles it); it is usually the spread between the
	// partitions' flushes of a wave, and none when no other partition is
	// about to flush. Default FlushInterval; negative: no wait (a round
	// serves what was submitted while the previous one ran).
	RollupLinger time.Duration
	// MaxBatch flushes early once a partition has this many unwritten
	// changes. Default 2000.
	MaxBatch int
	// MaxBatchBytes flushes early once the states a partition holds to
	// write would pass this many bytes (keys and encoded states,
	// sink.RecordBytes); a state larger than this is flushed alone. A
	// partition holds only the newest state of each user-day: as records
	// are read, a newer state of a user-day replaces the one held
	// (sink.Coalescer), so successive states of a few heavy user-days
	// coalesce as they did under MaxBatch alone. It bounds what a claimed
	// partition holds between flushes while catching up (a state may be
	// up to TOPK_MAX_STATE_BYTES, 512 KiB: 2000 of them were up to 1 GiB).
	// During a flush the partition also holds these states decoded and as
	// rows, about twice their encoded bytes again. Default
	// sink.DefaultMaxBatchBytes, 4 MiB (TOPK_SINK_BATCH_BYTES).
	MaxBatchBytes int
	// ReadAhead is how many records the Kafka client fetches ahead per
	// claimed partition while a flush is written (sink.Config.ReadAhead,
	// plus the 64 of kafka.OrderedCommits). Default 8: with states of up
	// to 512 KiB, 4 MiB, as much as a batch (sarama's default of 256 held
	// up to 128 MiB per partition).
	ReadAhead int
	// Concurrency is the most Cassandra requests one flusher instance has
	// in flight, all its partitions together (day writes, rollup reads and
	// writes). Default 4: on a small node, more only queues inside
	// Cassandra until requests time out.
	Concurrency int
	// CacheBytes bounds the cache of day states and month rollups the
	// rollup recompute takes instead of reading them back (see the package
	// doc). Default 64 MiB; negative disables it.
	CacheBytes int
	// MaxRowsPerCQLBatch splits rollups larger than this into several
	// batches (tracks last, see the package doc). Default 5000.
	MaxRowsPerCQLBatch int
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
	// Registerer takes the flusher's metrics and its sink's (registered
	// by New); nil: prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("flusher: no Brokers"))
	}
	if c.FlushInterval < 0 || c.MaxBatch < 0 || c.MaxBatchBytes < 0 || c.ReadAhead < 0 || c.Concurrency < 0 || c.MaxRowsPerCQLBatch < 0 { // CacheBytes < 0: no cache
		errs = append(errs, errors.New("flusher: sizes and durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.RollupLinger == 0 {
		c.RollupLinger = c.FlushInterval
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = sink.DefaultMaxBatchBytes
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = 8
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 64 << 20
	}
	if c.MaxRowsPerCQLBatch == 0 {
		c.MaxRowsPerCQLBatch = 5000
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Flusher is the flusher: New, then Run.
type Flusher struct {
	cfg   Config
	store store
	log   *slog.Logger
	sink  *sink.Sink
	cache *cache
	roll  *roller
}

// newFlusher is a flusher on st without its sink.
func newFlusher(cfg Config, st store) *Flusher {
	cfg = cfg.withDefaults()
	f := &Flusher{cfg: cfg, store: st, log: cfg.Log.With("component", Name), cache: newCache(max(cfg.CacheBytes, 0))}
	f.roll = newRoller(f, cfg.RollupLinger, cfg.FlushInterval)
	return f
}

// New returns a flusher on session (opened on topk's keyspace by the
// caller, who closes it after Run returns). Day values are read back at the
// session's consistency (topk's default LOCAL_QUORUM): rollups need reads
// that see the writes before them.
func New(cfg Config, session *gocql.Session) (*Flusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if session == nil {
		return nil, errors.New("flusher: nil Cassandra session")
	}
	if err := registerMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("flusher: %w", err)
	}
	cfg = cfg.withDefaults()
	f := newFlusher(cfg, cassandra.NewDayStore(session, cassandra.DayStoreConfig{Concurrency: cfg.Concurrency,
		MaxRowsPerBatch: cfg.MaxRowsPerCQLBatch, OnRead: func(t string) { reads.WithLabelValues(t).Inc() }}))
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
		Topic:         string(aggregator.Table(cfg.Namespace)),
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
	f.cfg.Log.Info("flusher started", "flush_interval", f.cfg.FlushInterval, "rollup_linger", f.roll.linger, "max_batch", f.cfg.MaxBatch,
		"max_batch_bytes", f.cfg.MaxBatchBytes, "read_ahead", f.cfg.ReadAhead, "cache_bytes", max(f.cfg.CacheBytes, 0), "concurrency", f.cfg.Concurrency)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				cacheBytes.Set(float64(f.cache.bytes()))
			}
		}
	}()
	err := f.sink.Run(ctx)
	close(stop)
	f.roll.wg.Wait()
	return err
}

// Check reports Kafka unreachable and partitions whose flushes keep failing
// (readiness: the flusher is alive but not flushing; the api does not
// depend on it, so Cassandra down is still not the product down).
func (f *Flusher) Check(ctx context.Context) error { return f.sink.Check(ctx) }
