package processors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/localstore"
)

// Settings are what every processor group of topk needs to run.
type Settings struct {
	Brokers []string
	// Replication of the topics Goka creates (table and loop topics).
	Replication int
	// MinInsync is min.insync.replicas of the table topics (default 1).
	MinInsync int
	// StateDir holds one storage directory per group and instance.
	StateDir string
	// MaxMessageBytes is max.message.bytes of the table topics (0: topk's
	// 1 MiB); producers may write dead letters up to
	// kafka.ProducerMaxMessageBytes of it.
	MaxMessageBytes int
	// StorePendingBytes bounds the writes a group's local store (one per
	// partition) holds in memory between LevelDB writes: keys and values,
	// flushed early at this many bytes (0: localstore's 8 MiB;
	// TOPK_STORE_PENDING_BYTES).
	StorePendingBytes int
	// Registerer takes the collectors of the groups built with these
	// settings (ingest, aggregator and its local stores, dead letters);
	// nil: prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// FetchMinBytes and FetchMaxWait batch the fetches of every Goka consumer
// (groups, tables, views): the broker answers a fetch once it holds 16
// KiB for it, or after 25 ms. With sarama's defaults (1 byte, 500 ms) a
// consumer on a steady stream fetched again as soon as one record was
// there, and at 2,000 listens/s the pipeline's consumers kept Kafka busy
// with tiny fetches: `make bench-latency` on the 2-core machine had
// sitewide p99 0.86–1.29 s in five runs (Kafka 0.71 cores, the machine
// without idle time), and 0.21–0.35 s in three runs with these (ingest
// 0.21 → 0.08 cores, the aggregator 0.22 → 0.17; per-user p50 30 → 70
// ms, p99 about the same). A record waits at most FetchMaxWait per hop
// when the stream is too slow to fill FetchMinBytes; an idle consumer
// asks 40 times a second instead of twice.
const (
	FetchMinBytes = 16 << 10
	FetchMaxWait  = 25 * time.Millisecond
)

// SaramaConfig is Goka's default sarama configuration (copartitioning
// rebalance strategy, producer flushing) with topk's corrections
// (DESIGN.md, "Goka's defaults are wrong for this"): protocol ≥ 2.1, the
// oldest offset for new groups, an idempotent acks=all producer with one
// request in flight, retries with capped backoff, and LZ4 compression of
// table values. The producer may send records up to
// kafka.ProducerMaxMessageBytes (a dead letter of a raw record at the
// limit, plus headers). Its consumers fetch in batches (FetchMinBytes,
// FetchMaxWait).
func (s Settings) SaramaConfig(clientID string) *sarama.Config {
	c := goka.DefaultConfig()
	base := kafka.NewSaramaConfig(clientID)
	c.ClientID = clientID
	c.Version = base.Version
	c.Consumer.Offsets.Initial = base.Consumer.Offsets.Initial
	c.Producer.Idempotent = base.Producer.Idempotent
	c.Producer.RequiredAcks = base.Producer.RequiredAcks
	c.Producer.Retry.Max = base.Producer.Retry.Max
	c.Producer.Retry.Backoff = base.Producer.Retry.Backoff
	c.Producer.Retry.BackoffFunc = base.Producer.Retry.BackoffFunc
	c.Metadata.Retry = base.Metadata.Retry
	c.Net.MaxOpenRequests = base.Net.MaxOpenRequests
	c.Producer.Compression = sarama.CompressionLZ4
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Consumer.Fetch.Min = FetchMinBytes
	c.Consumer.MaxWaitTime = FetchMaxWait
	c.Producer.MaxMessageBytes = kafka.ProducerMaxMessageBytes(s.MaxMessageBytes)
	return c
}

// TableReadAhead is how many records Goka's table and view consumers may
// hold per partition before the partition table takes them (sarama's
// ChannelBufferSize, 256 by default). Those records are user-day states of
// up to TOPK_MAX_STATE_BYTES (512 KiB): 256 of them would be 128 MiB per
// partition while a copy recovers; 8 bound it to 4 MiB, as the flusher's
// read-ahead does. The group consumers (the input: listens of a few
// hundred bytes) keep sarama's default.
const TableReadAhead = 8

// TableConsumerBuilder builds the consumers that read tables (a group's
// recovery, views): s's sarama settings with ChannelBufferSize
// TableReadAhead.
func (s Settings) TableConsumerBuilder(clientID string) goka.SaramaConsumerBuilder {
	c := s.SaramaConfig(clientID)
	c.ChannelBufferSize = TableReadAhead
	return goka.SaramaConsumerBuilderWithConfig(c)
}

// TopicManagerConfig makes Goka create its table topics compacted with the
// configured replication, loop topics retained for a week, and fail on a
// topic whose partitions or settings do not match instead of carrying on.
func TopicManagerConfig(replication int) *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = replication
	tm.Stream.Replication = replication
	tm.Stream.Retention = 7 * 24 * time.Hour
	tm.MismatchBehavior = goka.TMConfigMismatchBehaviorFail
	tm.CreateTopicTimeout = 30 * time.Second
	return tm
}

// Options are the Goka processor options of a group: sarama settings,
// topic manager, storage under dir, logging — no hot standby (see
// ARCHITECTURE.md, "Goka settings"). Callers add
// their own (nil handling, tester).
// An empty dir means a stateless group (in-memory storage, never used);
// otherwise the table lives in dir in a batching LevelDB (localstore),
// whose bounds it logs (once per processor built).
func (s Settings) Options(clientID, dir string) []goka.ProcessorOption {
	cfg := s.SaramaConfig(clientID)
	sb := storage.MemoryBuilder()
	if dir != "" {
		o := localstore.Options{MaxPendingBytes: s.StorePendingBytes, Registerer: s.Registerer}.WithDefaults()
		s.logger().Info("local store batching", "group", clientID, "dir", dir, "flush_interval", o.FlushInterval,
			"max_pending_keys", o.MaxPending, "max_pending_bytes", o.MaxPendingBytes)
		sb = localstore.Builder(dir, o)
	}
	return []goka.ProcessorOption{
		goka.WithClientID(clientID),
		goka.WithConsumerGroupBuilder(orderedGroupBuilder(cfg)),
		goka.WithConsumerSaramaBuilder(s.TableConsumerBuilder(clientID)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, TopicManagerConfig(s.Replication))),
		goka.WithStorageBuilder(sb),
		goka.WithLogger(gokaLogger{s.logger().With("component", clientID)}),
	}
}

// groupBuffer is what kafka.OrderedCommits may hold per partition of a Goka
// group beyond sarama's channel: the groups read listens (a few hundred
// bytes), and fewer than 64 slowed ingest (bench-ingest).
const groupBuffer = 64

// orderedGroupBuilder is Goka's consumer group builder behind
// kafka.OrderedCommits: Goka marks each message when its emits are
// acknowledged, in whatever order that happens; the commit only advances
// over messages that are all done. kafka.RejoinAtOnce joins the next
// session right after a rebalance (Goka waits 5 s, which stalled every
// rebalance of the group).
func orderedGroupBuilder(cfg *sarama.Config) goka.ConsumerGroupBuilder {
	build := goka.ConsumerGroupBuilderWithConfig(cfg)
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		g, err := build(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return kafka.RejoinAtOnce(kafka.OrderedCommits(g, groupBuffer)), nil
	}
}

func (s Settings) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// StorageDir claims a storage directory for one instance of group under
// base: base/<group>/instance-<n>, the lowest n no other live process holds
// (an flock on its lock file). A restarted instance finds its own directory
// again and recovers from its local state; two copies on one machine never
// share one (Goka's /tmp/goka default would collide). release unlocks it.
func StorageDir(base, group string) (dir string, release func(), err error) {
	for n := 0; n < 1024; n++ {
		dir = filepath.Join(base, group, "instance-"+strconv.Itoa(n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("storage dir: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(dir, "LOCK.topk"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return "", nil, fmt.Errorf("storage dir: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return dir, func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
	}
	return "", nil, fmt.Errorf("storage dir: no free instance directory under %s", filepath.Join(base, group))
}

// gokaLogger sends Goka's log lines to slog.
type gokaLogger struct{ log *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.log.Info(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.log.Info(fmt.Sprint(v...)) }
func (g gokaLogger) Printf(format string, v ...any) { g.log.Info(fmt.Sprintf(format, v...)) }

// ViewOptions are the Goka view options matching Options: the same sarama
// settings and topic manager, storage in memory unless dir is set.
func (s Settings) ViewOptions(clientID, dir string) []goka.ViewOption {
	cfg := s.SaramaConfig(clientID)
	sb := storage.MemoryBuilder()
	if dir != "" {
		sb = storage.DefaultBuilder(dir)
	}
	return []goka.ViewOption{
		goka.WithViewClientID(clientID),
		goka.WithViewConsumerSaramaBuilder(s.TableConsumerBuilder(clientID)),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, TopicManagerConfig(s.Replication))),
		goka.WithViewStorageBuilder(sb),
		goka.WithViewLogger(gokaLogger{s.logger().With("component", clientID)}),
	}
}

// EnsureTable creates a group's table topic before Goka starts (compacted,
// with the input's partition count) and waits until every partition has a
// leader. Left to Goka, a fresh table topic races its own metadata: the
// processor asks for offsets before the partitions have leaders and stops.
// It returns the partition count of both. It gives up when ctx ends.
func (s Settings) EnsureTable(ctx context.Context, table goka.Table, input goka.Stream) (int32, error) {
	return s.EnsureCopartitioned(ctx, input, s.TableSpec(table))
}

// TableSpec is the spec of a group table topic under s (kafka.TableTopic
// with s's min.insync.replicas, at least 1, and message size), for
// EnsureCopartitioned.
func (s Settings) TableSpec(table goka.Table) func(partitions int32) kafka.TopicSpec {
	return func(n int32) kafka.TopicSpec {
		return kafka.TableTopic(string(table), n, max(s.MinInsync, 1)).WithMaxMessageBytes(s.MaxMessageBytes)
	}
}

// EnsureCopartitioned creates or reconciles, with one admin connection,
// the topics specs make for input's partition count (which it returns),
// with s's replication, and waits until every partition has a leader. It
// gives up when ctx ends.
func (s Settings) EnsureCopartitioned(ctx context.Context, input goka.Stream, specs ...func(partitions int32) kafka.TopicSpec) (int32, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("kafka %v: %w", s.Brokers, err)
	}
	admin, err := sarama.NewClusterAdmin(s.Brokers, kafka.NewSaramaConfig("topk-table-setup"))
	if err != nil {
		return 0, fmt.Errorf("kafka %v: %w", s.Brokers, err)
	}
	defer admin.Close()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("describe %s: %w", input, err)
	}
	meta, err := admin.DescribeTopics([]string{string(input)})
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", input, err)
	}
	if len(meta) != 1 || meta[0].Err != sarama.ErrNoError || len(meta[0].Partitions) == 0 {
		return 0, fmt.Errorf("input topic %s missing (run topk topics)", input)
	}
	n := int32(len(meta[0].Partitions))
	topics := make([]kafka.TopicSpec, len(specs))
	for i, spec := range specs {
		topics[i] = spec(n)
	}
	if err := kafka.EnsureTopics(ctx, admin, int16(max(s.Replication, 1)), topics, s.logger()); err != nil {
		return 0, err
	}
	return n, nil
}
