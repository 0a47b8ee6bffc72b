package sinktest

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/store/cassandra"
)

// Admin is a cluster admin closed when the test ends.
func Admin(t testing.TB, cfg config.Config) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test-admin"))
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Topic creates spec and deletes it, and the given consumer groups, when
// the test ends.
func Topic(t testing.TB, cfg config.Config, spec kafka.TopicSpec, groups ...string) {
	t.Helper()
	a := Admin(t, cfg)
	if err := kafka.EnsureTopics(t.Context(), a, int16(cfg.Kafka.ReplicationFactor), []kafka.TopicSpec{spec}, testenv.Logger(t)); err != nil {
		t.Fatalf("create topic %s: %v", spec.Name, err)
	}
	t.Cleanup(func() {
		for _, g := range groups {
			if err := a.DeleteConsumerGroup(g); err != nil {
				t.Logf("delete consumer group %s: %v", g, err)
			}
		}
		if err := kafka.DeleteTopics(a, spec.Name); err != nil {
			t.Errorf("delete topic %s: %v", spec.Name, err)
		}
	})
}

// Producer is a synchronous producer; manual makes it honour
// ProducerMessage.Partition instead of hashing the key.
func Producer(t testing.TB, cfg config.Config, manual bool) sarama.SyncProducer {
	t.Helper()
	sc := kafka.NewSaramaConfig("topk-test-producer")
	if manual {
		sc.Producer.Partitioner = sarama.NewManualPartitioner
	}
	p, err := sarama.NewSyncProducer(cfg.Kafka.Brokers, sc)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Send produces msgs in one call and fails the test on any error.
func Send(t testing.TB, p sarama.SyncProducer, msgs []*sarama.ProducerMessage) {
	t.Helper()
	for start := 0; start < len(msgs); start += 1000 {
		if err := p.SendMessages(msgs[start:min(start+1000, len(msgs))]); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// Committed returns the committed offset of every partition of topic for
// group (-1: none).
func Committed(t testing.TB, a sarama.ClusterAdmin, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	ps := make([]int32, partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, b := range resp.Blocks[topic] {
		out[p] = b.Offset
	}
	return out
}

// Eventually polls cond every 50 ms until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Metric sums the current values of the counters or gauges named name in
// the default registry whose labels include labels (name=value pairs).
func Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// Cassandra migrates cfg's keyspace (dropped when the test ends) and
// returns a session on it (closed when the test ends) and, for
// WriterSubject, writers made by open on it (NewWriter) and on a session
// already closed, a store that fails every request (FailingWriter).
func Cassandra(t testing.TB, cfg config.Config, open func(*gocql.Session) (Writer, error)) (
	session *gocql.Session, newWriter, failingWriter func(*testing.T) Writer) {
	t.Helper()
	testenv.Keyspace(t, cfg)
	var closed *gocql.Session
	for _, s := range []**gocql.Session{&session, &closed} {
		var err error
		if *s, err = cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(session.Close)
	closed.Close()
	on := func(s *gocql.Session) func(*testing.T) Writer {
		return func(t *testing.T) Writer {
			w, err := open(s)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
	}
	return session, on(session), on(closed)
}

// Dump is lines sorted, one a line: what a store holds as text, for
// WriterSubject.Stored.
func Dump(lines []string) string {
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
