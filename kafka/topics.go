package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/listen"
)

// TopicSpec is a topic as topk wants it.
type TopicSpec struct {
	Name       string
	Partitions int32
	// FixedPartitions marks topics whose partition count may never change
	// (Goka-partitioned state keys): a mismatch is an error, not a warning.
	FixedPartitions bool
	Config          map[string]string
}

const day = 24 * time.Hour

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Config is the topic layout ListenTopics builds: partition counts,
// min.insync.replicas and max.message.bytes. The brokers, the replication
// factor (EnsureTopics takes it) and the local broker's server settings are
// not part of it. cmd/ fills it from config.Kafka (internal/wiring).
type Config struct {
	// ValidPartitions is N of user.listen.valid and of the aggregator's
	// table: fixed forever, a power of two.
	ValidPartitions int
	// RawPartitions is the partition count of user.listen.raw and
	// user.listen.dlq.
	RawPartitions int
	// MinInsyncReplicas is set on every topic ListenTopics lays out.
	MinInsyncReplicas int
	// MaxMessageBytes is max.message.bytes of the raw and valid topics (0:
	// DefaultMaxMessageBytes); the DLQ allows DeadLetterHeadroom more.
	MaxMessageBytes int
}

// DefaultMaxMessageBytes is the default of TOPK_KAFKA_MAX_MESSAGE_BYTES
// (Config.MaxMessageBytes), used where none is given (0).
const DefaultMaxMessageBytes = 1 << 20

// DeadLetterHeadroom is how much larger than MaxMessageBytes a dead letter
// may be: it carries a raw record that may be at the limit, plus its
// headers (reason, detail, source topic/partition/offset/key, …). The DLQ
// topic's max.message.bytes and the limit of producers that may write dead
// letters (ProducerMaxMessageBytes) add it.
const DeadLetterHeadroom = 64 << 10

// ProducerMaxMessageBytes is the sarama Producer.MaxMessageBytes of a
// producer that may write dead letters: maxMessageBytes (the configured
// TOPK_KAFKA_MAX_MESSAGE_BYTES; 0: DefaultMaxMessageBytes) plus
// DeadLetterHeadroom. The brokers still hold every other topic to
// maxMessageBytes.
func ProducerMaxMessageBytes(maxMessageBytes int) int {
	return messageBytes(maxMessageBytes) + DeadLetterHeadroom
}

// messageBytes applies the default to a max.message.bytes setting.
func messageBytes(n int) int {
	if n <= 0 {
		return DefaultMaxMessageBytes
	}
	return n
}

// ListenTopics is the layout of DESIGN.md's topic table. Raw and valid get
// max.message.bytes = k.MaxMessageBytes (0: DefaultMaxMessageBytes), the
// DLQ that plus DeadLetterHeadroom.
func ListenTopics(k Config, t listen.Topics) []TopicSpec {
	minISR := strconv.Itoa(k.MinInsyncReplicas)
	maxMsg := strconv.Itoa(messageBytes(k.MaxMessageBytes))
	return []TopicSpec{
		{Name: string(t.Raw), Partitions: int32(k.RawPartitions), Config: map[string]string{
			"cleanup.policy": "delete", "retention.ms": ms(7 * day), "min.insync.replicas": minISR,
			"max.message.bytes": maxMsg,
		}},
		{Name: string(t.Valid), Partitions: int32(k.ValidPartitions), FixedPartitions: true, Config: map[string]string{
			"cleanup.policy": "delete", "retention.ms": ms(14 * day), "min.insync.replicas": minISR,
			"max.message.bytes": maxMsg,
		}},
		{Name: string(t.DLQ), Partitions: int32(k.RawPartitions), Config: map[string]string{
			"cleanup.policy": "delete", "retention.ms": ms(30 * day), "min.insync.replicas": minISR,
			"max.message.bytes": strconv.Itoa(ProducerMaxMessageBytes(k.MaxMessageBytes)),
		}},
		StoredTopic(string(t.Stored), int32(k.RawPartitions), k.MinInsyncReplicas),
	}
}

// EnsureTopics creates missing topics and brings the configuration of
// existing ones to the spec. Running it again changes nothing. A topic with
// FixedPartitions and another partition count is an error: its keys would
// move to other partitions. sarama's admin calls take no context: ctx is
// checked before each of them and while waiting for the topics to serve.
func EnsureTopics(ctx context.Context, admin sarama.ClusterAdmin, replication int16, specs []TopicSpec, log *slog.Logger) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	meta, err := admin.DescribeTopics(names)
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	existing := map[string]*sarama.TopicMetadata{}
	for _, m := range meta {
		if !errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition) && m.Err == sarama.ErrNoError {
			existing[m.Name] = m
		}
	}
	var errs []error
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", s.Name, err))
			break
		}
		m, ok := existing[s.Name]
		if !ok {
			entries := make(map[string]*string, len(s.Config))
			for k, v := range s.Config {
				entries[k] = &v
			}
			err := admin.CreateTopic(s.Name, &sarama.TopicDetail{
				NumPartitions: s.Partitions, ReplicationFactor: replication, ConfigEntries: entries,
			}, false)
			if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %s: %w", s.Name, err))
				continue
			}
			log.Info("topic created", "topic", s.Name, "partitions", s.Partitions, "replication", replication)
			continue
		}
		if got := int32(len(m.Partitions)); got != s.Partitions {
			if s.FixedPartitions {
				errs = append(errs, fmt.Errorf("topic %s has %d partitions, want %d: its partition count is fixed forever (state keys would move); use a new topic name", s.Name, got, s.Partitions))
				continue
			}
			log.Warn("topic partition count differs from config (allowed for this topic)", "topic", s.Name, "partitions", got, "config", s.Partitions)
		}
		entries := make(map[string]sarama.IncrementalAlterConfigsEntry, len(s.Config))
		for k, v := range s.Config {
			entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
		}
		if err := admin.IncrementalAlterConfig(sarama.TopicResource, s.Name, entries, false); err != nil {
			errs = append(errs, fmt.Errorf("configure topic %s: %w", s.Name, err))
			continue
		}
		log.Info("topic up to date", "topic", s.Name, "partitions", len(m.Partitions))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return awaitTopics(ctx, admin, names, 30*time.Second)
}

// awaitTopics waits until every topic shows in the metadata with all its
// partitions led, and every partition answers an offset request: a topic
// just created is not usable at once (KRaft's metadata can name a leader
// before that broker serves the partition, and a Goka processor or view
// asking for offsets then stops with "not the leader"). It gives up when
// ctx ends.
func awaitTopics(ctx context.Context, admin sarama.ClusterAdmin, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var client sarama.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	for {
		err := topicsServe(admin, &client, names)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not ready after %v: %w", names, timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not ready: %w (last error: %v)", names, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicsServe(admin sarama.ClusterAdmin, client *sarama.Client, names []string) error {
	meta, err := admin.DescribeTopics(names)
	if err != nil {
		return err
	}
	if len(meta) != len(names) {
		return fmt.Errorf("metadata for %d of %d topics", len(meta), len(names))
	}
	for _, m := range meta {
		if m.Err != sarama.ErrNoError || len(m.Partitions) == 0 {
			return fmt.Errorf("%s: %v", m.Name, m.Err)
		}
		for _, p := range m.Partitions {
			if p.Err != sarama.ErrNoError || p.Leader < 0 {
				return fmt.Errorf("%s/%d: no leader", m.Name, p.ID)
			}
		}
	}
	if *client == nil {
		brokers, _, err := admin.DescribeCluster()
		if err != nil {
			return err
		}
		addrs := make([]string, len(brokers))
		for i, b := range brokers {
			addrs[i] = b.Addr()
		}
		if *client, err = sarama.NewClient(addrs, NewSaramaConfig("topk-topics-check")); err != nil {
			return err
		}
	}
	if err := (*client).RefreshMetadata(names...); err != nil {
		return err
	}
	for _, m := range meta {
		for _, p := range m.Partitions {
			if _, err := (*client).GetOffset(m.Name, p.ID, sarama.OffsetOldest); err != nil {
				return fmt.Errorf("%s/%d: %w", m.Name, p.ID, err)
			}
		}
	}
	return nil
}

// DeleteTopics removes topics (tests clean up their namespaced topics).
func DeleteTopics(admin sarama.ClusterAdmin, names ...string) error {
	var errs []error
	for _, n := range names {
		if err := admin.DeleteTopic(n); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// TableTopic is a Goka group table topic as topk wants it: compacted only
// (never deleted: the aggregator keeps every day forever), with the
// partition count of the group's input, and max.message.bytes =
// DefaultMaxMessageBytes. With a configured TOPK_KAFKA_MAX_MESSAGE_BYTES,
// chain WithMaxMessageBytes:
//
//	kafka.TableTopic(name, partitions, minInsync).WithMaxMessageBytes(cfg.Kafka.MaxMessageBytes)
func TableTopic(name string, partitions int32, minInsync int) TopicSpec {
	return TopicSpec{Name: name, Partitions: partitions, FixedPartitions: true, Config: map[string]string{
		"cleanup.policy": "compact", "min.insync.replicas": strconv.Itoa(minInsync),
		"max.message.bytes": strconv.Itoa(DefaultMaxMessageBytes),
	}}
}

// WithMaxMessageBytes returns s with max.message.bytes = n (0 or less:
// DefaultMaxMessageBytes). s's Config is copied, not changed.
func (s TopicSpec) WithMaxMessageBytes(n int) TopicSpec {
	c := make(map[string]string, len(s.Config)+1)
	for k, v := range s.Config {
		c[k] = v
	}
	c["max.message.bytes"] = strconv.Itoa(messageBytes(n))
	s.Config = c
	return s
}

// DeleteNamespace removes every topic whose name starts with namespace and
// a dot (tests and benchmarks clean up their own corner this way).
func DeleteNamespace(admin sarama.ClusterAdmin, namespace string) error {
	if namespace == "" {
		return errors.New("kafka: refusing to delete the empty namespace (the production topics)")
	}
	all, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var mine []string
	for name := range all {
		if strings.HasPrefix(name, namespace+".") {
			mine = append(mine, name)
		}
	}
	return DeleteTopics(admin, mine...)
}

// StoredRetention is how long the stored topic keeps its notices: far
// longer than an answer is cached (TOPK_CACHE_TTL) and than an api takes
// to read them when it starts (see processors/stored).
const StoredRetention = time.Hour

// StoredTopic is the stored topic (listen.Topics.Stored): notices that a
// user's older days changed in Cassandra, keyed by user, deleted by age
// (the broker's clock).
func StoredTopic(name string, partitions int32, minInsync int) TopicSpec {
	spec := TopicSpec{Name: name, Partitions: partitions, Config: map[string]string{
		"cleanup.policy": "delete", "retention.ms": ms(StoredRetention),
		"segment.ms": ms(10 * time.Minute), "message.timestamp.type": "LogAppendTime",
	}}
	if minInsync > 0 {
		spec.Config["min.insync.replicas"] = strconv.Itoa(minInsync)
	}
	return spec
}

// RecentTopic is the aggregator's projection of the recent days for the
// api's views (listen.Topics.Recent): compacted (the latest value of a
// user-day) and deleted by age, so it holds only what a view serves. A
// user-day of the last days days was last written at its date or later
// (played_at is at most 10 minutes ahead), so keeping records for days+2
// days (LogAppendTime: the broker's clock, whatever the producer's) never
// deletes the value of a day still in the window; 6-hour segments let
// deletion follow the window closely. Same partitions and
// max.message.bytes as the table. minInsync 0 leaves min.insync.replicas
// to the brokers' default.
func RecentTopic(name string, partitions int32, minInsync, days int) TopicSpec {
	spec := TopicSpec{Name: name, Partitions: partitions, FixedPartitions: true, Config: map[string]string{
		"cleanup.policy": "compact,delete", "retention.ms": ms(time.Duration(days+2) * day),
		"segment.ms": ms(6 * time.Hour), "message.timestamp.type": "LogAppendTime",
		"max.message.bytes": strconv.Itoa(DefaultMaxMessageBytes),
	}}
	if minInsync > 0 {
		spec.Config["min.insync.replicas"] = strconv.Itoa(minInsync)
	}
	return spec
}
