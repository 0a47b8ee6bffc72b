// What a sink's user provides: the Writer (and Coalescer) it writes
// through, and its Config; RecordBytes, what a record counts against
// MaxBatchBytes.

package sink

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/kafka"
)

// Writer stores records. It is the one thing a sink's user writes.
type Writer interface {
	// Write stores a batch: records of one partition, in offset order (a
	// Coalescer's: one record per key, see Coalescer), never empty. A nil error means every record is durably stored; the sink then
	// marks the batch's offsets. After an error the sink calls Write again
	// with the same batch, and after a restart or a rebalance the records
	// may come again: Write must be idempotent. It skips (and counts) records
	// it cannot ever store instead of failing on them, or their partition
	// stalls. ctx ends on shutdown and on rebalance: Write should then
	// return soon. Write must not keep the batch after it returns.
	Write(ctx context.Context, batch []*sarama.ConsumerMessage) error
}

// Config configures a sink.
type Config struct {
	// Name labels the sink's metrics and logs ("raw_writer", "flusher").
	Name string
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Group is the consumer group, already namespaced.
	Group string
	// Topic is the one topic consumed.
	Topic string
	// BatchSize is the most records per Write. Default 500.
	BatchSize int
	// MaxBatchBytes is the most bytes per Write: a batch is written once
	// the next record would take it past this many bytes of keys, values
	// and headers (RecordBytes), or once it reaches it. A record larger
	// than this is written alone, in a batch of one, never refused. It
	// bounds what a claimed partition holds while it collects or retries a
	// batch. Default DefaultMaxBatchBytes (TOPK_SINK_BATCH_BYTES).
	MaxBatchBytes int
	// ReadAhead is how many records sarama may hold per claimed partition
	// beyond the batch (its ChannelBufferSize): they are fetched while the
	// batch is written. With records of up to R bytes a claimed partition
	// holds at most MaxBatchBytes + (ReadAhead + 5)·R (kafka.OrderedCommits
	// passes records on through a buffer of 4), plus its part of the fetch
	// response being handed over (at most MaxBatchBytes, or one record
	// batch if larger). Default: the Sarama config's (sarama's 256).
	ReadAhead int
	// Linger is how long a batch may wait, from its first record, for more
	// records before it is written anyway. Default 200 ms. Longer means
	// bigger batches (and, for the flusher, more coalescing), shorter means
	// fresher data in the store.
	Linger time.Duration
	// Backoff spaces retries of a failed batch. Default DefaultBackoff.
	Backoff Backoff
	// OutageLimit is how long a partition's batch may keep failing, or the
	// consumer group keep failing to reach Kafka, before Run gives up and
	// returns an error (the service exits non-zero with it). Default
	// outage.DefaultLimit (5 minutes).
	OutageLimit time.Duration
	// Log receives the sink's logs. Default slog.Default().
	Log *slog.Logger
	// Sarama is the client configuration. Default kafka.NewSaramaConfig
	// (protocol ≥ 2.1, oldest offset for a new group); the sink always turns
	// on autocommit of marked offsets (every second unless set) and sets
	// ChannelBufferSize to ReadAhead when that is set.
	Sarama *sarama.Config
	// Registerer takes the topk_sink_* metrics (registered by New; every
	// sink registering on it shares them, labelled by Name); nil:
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// orderedBuffer is what kafka.OrderedCommits may hold per claimed partition
// beyond ReadAhead: a few records, as sink records may be user-day states of
// up to 512 KiB.
const orderedBuffer = 4

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("sink: Name is empty"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("sink: no Brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("sink: Group is empty"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("sink: Topic is empty"))
	}
	if c.BatchSize < 0 || c.MaxBatchBytes < 0 || c.ReadAhead < 0 || c.Linger < 0 || c.OutageLimit < 0 {
		errs = append(errs, errors.New("sink: BatchSize, MaxBatchBytes, ReadAhead, Linger and OutageLimit must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Linger == 0 {
		c.Linger = 200 * time.Millisecond
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.OutageLimit == 0 {
		c.OutageLimit = outage.DefaultLimit
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Sarama == nil {
		c.Sarama = kafka.NewSaramaConfig(c.Group)
	}
	return c
}

// A Coalescer is a Writer whose records are successive states of their
// keys, of which only the newest needs writing (the flusher: a user-day's
// state on the aggregator's changelog). The sink then keeps, while it
// collects a batch, one record per key: of two records with equal keys
// that Rank ranks, the one of higher rank, the later on a tie. The other
// is marked with the batch and never written, and MaxBatchBytes counts
// only the records kept. A batch a Coalescer writes holds each ranked key
// once, in the order of the key's first record in the batch.
type Coalescer interface {
	Writer
	// Rank ranks a record among the records of its key; ok false keeps
	// the record as it is (written, not coalesced: one the Writer will
	// skip and count, say). It is called once per record, as it is read.
	Rank(m *sarama.ConsumerMessage) (rank int64, ok bool)
}

// DefaultMaxBatchBytes is Config.MaxBatchBytes unless set: 4 MiB, the
// default of TOPK_SINK_BATCH_BYTES.
const DefaultMaxBatchBytes = 4 << 20

// RecordBytes is what a record counts against Config.MaxBatchBytes: its
// key, value and headers.
func RecordBytes(m *sarama.ConsumerMessage) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		if h != nil {
			n += len(h.Key) + len(h.Value)
		}
	}
	return n
}
