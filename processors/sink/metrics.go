package sink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
)

// Metrics of every sink, labelled by Config.Name. New registers them on
// the sink's Config.Registerer, so several sinks (and tests building many)
// share them.
var (
	messagesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sink_messages_written_total",
		Help: "Records written by the sink's Writer and marked.",
	}, []string{"sink"})
	batchesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sink_batches_written_total",
		Help: "Batches written by the sink's Writer and marked.",
	}, []string{"sink"})
	writeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sink_write_failures_total",
		Help: "Failed Write attempts; each is retried with the same batch.",
	}, []string{"sink"})
	retrying = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "topk_sink_retrying",
		Help: "Partitions whose current batch failed at least once and is being retried.",
	}, []string{"sink"})
	writeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "topk_sink_write_seconds",
		Help:    "Duration of successful Write calls.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"sink"})
	batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "topk_sink_batch_messages",
		Help:    "Records per written batch.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	}, []string{"sink"})
	batchSizeBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "topk_sink_batch_written_bytes",
		Help:    "Bytes (keys, values, headers) per written batch; at most the sink's MaxBatchBytes unless the batch is one record.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
	}, []string{"sink"})
	batchBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "topk_sink_batch_bytes",
		Help: "Bytes (keys, values, headers) of the batches the sink's claimed partitions are collecting or writing, all partitions together.",
	}, []string{"sink"})
	coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sink_records_coalesced_total",
		Help: "Records marked but not written: a later record of the same key in the batch superseded them (Coalescer writers: the flusher).",
	}, []string{"sink"})
	lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "topk_sink_lag",
		Help: "Records of a claimed partition not yet written: high-water mark minus the next offset to mark.",
	}, []string{"sink", "partition"})
	oldestUnwritten = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "topk_sink_oldest_unwritten_seconds",
		Help: "Age (by record timestamp) of the oldest record read but not yet written; 0 when nothing is pending. For the flusher: the flush lag.",
	}, []string{"sink"})
	groupErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sink_consumer_errors_total",
		Help: "Errors reported by the sink's consumer group (fetch, commit, rebalance).",
	}, []string{"sink"})
)

// registerMetrics registers the sink metrics on reg (nil: the default
// registerer); again is a no-op.
func registerMetrics(reg prometheus.Registerer) error {
	return metrics.Register(reg, messagesWritten, batchesWritten, writeFailures, retrying,
		writeSeconds, batchSize, batchSizeBytes, batchBytes, coalesced, lag, oldestUnwritten, groupErrors)
}
