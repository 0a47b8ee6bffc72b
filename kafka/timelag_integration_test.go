//go:build integration

package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
)

// GroupTimeLag on the real broker: a compacted two-partition topic whose
// records carry timestamps from a minute ago on; the lag follows the
// group's commits (none, part, all) and the meter agrees with it.
func TestIntegrationGroupTimeLag(t *testing.T) {
	cfg := testenv.Config(t)
	a := admin(t, cfg)
	topic := listen.Namespaced(cfg.Namespace, "timelag-table")
	group := listen.Namespaced(cfg.Namespace, "timelag-group")
	if err := kafka.EnsureTopics(t.Context(), a, int16(cfg.Kafka.ReplicationFactor), []kafka.TopicSpec{kafka.TableTopic(topic, 2, cfg.Kafka.MinInsyncReplicas)}, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.DeleteConsumerGroup(group)
		if err := kafka.DeleteTopics(a, topic); err != nil {
			t.Errorf("delete topic: %v", err)
		}
	})

	sc := kafka.NewSaramaConfig("topk-test-timelag")
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	now := time.Now()
	// Partition 0: offsets 0, 1, 2 written 60, 50, 40 s ago (distinct
	// keys: compaction keeps them). Partition 1: offset 0, 20 s ago.
	for _, r := range []struct {
		p   int32
		key string
		age time.Duration
	}{{0, "a", 60 * time.Second}, {0, "b", 50 * time.Second}, {0, "c", 40 * time.Second}, {1, "d", 20 * time.Second}} {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: r.p, Key: sarama.StringEncoder(r.key),
			Value: sarama.StringEncoder("v"), Timestamp: now.Add(-r.age)}); err != nil {
			t.Fatal(err)
		}
	}
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	pom0, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pom1, err := om.ManagePartition(topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	meter := kafka.NewTimeLagMeter(cfg.Kafka.Brokers, nil, group, topic)
	defer meter.Close()
	records := kafka.NewLagCollector(cfg.Kafka.Brokers, "test", group, topic)
	defer records.Close()

	// A record written age ago at the latest (now was taken before any
	// was produced) shows a lag from age to age + time since now (+ 1 ms:
	// Kafka keeps milliseconds).
	// The same commits in records: GroupLag and the collector, gathered
	// as Prometheus would.
	checkRecords := func(what string, want int64) {
		t.Helper()
		ctx := testenv.Context(t, 20*time.Second)
		if lag, err := kafka.GroupLag(ctx, client, a, group, topic); err != nil || lag != want {
			t.Fatalf("%s: GroupLag %d, %v; want %d", what, lag, err, want)
		}
		if got := testutil.ToFloat64(records); got != float64(want) {
			t.Fatalf("%s: topk_consumer_lag %v, want %d", what, got, want)
		}
	}
	check := func(what string, want time.Duration) {
		t.Helper()
		ctx := testenv.Context(t, 20*time.Second)
		lag, err := kafka.GroupTimeLag(ctx, client, group, topic)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ml, merr := meter.Measure(ctx)
		hi := want + time.Since(now) + time.Millisecond
		if want == 0 {
			hi = 0
		}
		if lag < want || lag > hi {
			t.Fatalf("%s: lag %v, want %v to %v", what, lag, want, hi)
		}
		if merr != nil || ml < want || ml > hi {
			t.Fatalf("%s: the meter says %v, %v; want %v to %v", what, ml, merr, want, hi)
		}
		t.Logf("%s: %v", what, lag.Round(time.Millisecond))
	}
	check("no commit", 60*time.Second) // partition 0's oldest record
	checkRecords("no commit", 4)
	pom0.MarkOffset(2, "")
	om.Commit()
	check("partition 0 committed up to 2", 40*time.Second)
	checkRecords("partition 0 committed up to 2", 2)
	pom0.MarkOffset(3, "")
	om.Commit()
	check("partition 0 done, partition 1 without commit", 20*time.Second)
	checkRecords("partition 0 done, partition 1 without commit", 1)
	pom1.MarkOffset(1, "")
	om.Commit()
	check("all committed", 0)
	checkRecords("all committed", 0)

	// A context that ends first returns its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := kafka.GroupTimeLag(ctx, client, group, topic); err == nil {
		t.Fatal("a cancelled context measured")
	}
	// An unknown topic is an error, not 0.
	if _, err := kafka.GroupTimeLag(testenv.Context(t, 20*time.Second), client, group, topic+"-none"); err == nil {
		t.Fatal("an unknown topic measured")
	}
}
