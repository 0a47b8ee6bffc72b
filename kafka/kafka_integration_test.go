//go:build integration

package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
)

func admin(t *testing.T, cfg config.Config) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// ensureTopics creates the namespaced listen topics and deletes them when the test ends.
func ensureTopics(t *testing.T, cfg config.Config) listen.Topics {
	t.Helper()
	a := admin(t, cfg)
	topics := listen.NewTopics(cfg.Namespace)
	specs := kafka.ListenTopics(wiring.Kafka(cfg.Kafka), topics)
	if err := kafka.EnsureTopics(t.Context(), a, int16(cfg.Kafka.ReplicationFactor), specs, testenv.Logger(t)); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	t.Cleanup(func() {
		if err := kafka.DeleteTopics(a, string(topics.Raw), string(topics.Valid), string(topics.DLQ)); err != nil {
			t.Errorf("delete topics: %v", err)
		}
	})
	return topics
}

func TestIntegrationEnsureTopicsIsIdempotentAndConfigures(t *testing.T) {
	cfg := testenv.Config(t)
	topics := ensureTopics(t, cfg)
	a := admin(t, cfg)
	// A second run changes nothing and fails nothing.
	specs := kafka.ListenTopics(wiring.Kafka(cfg.Kafka), topics)
	if err := kafka.EnsureTopics(t.Context(), a, 1, specs, testenv.Logger(t)); err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	meta, err := a.DescribeTopics([]string{string(topics.Raw), string(topics.Valid), string(topics.DLQ)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{string(topics.Raw): cfg.Kafka.RawPartitions, string(topics.Valid): cfg.Kafka.ValidPartitions, string(topics.DLQ): cfg.Kafka.RawPartitions}
	for _, m := range meta {
		if m.Err != sarama.ErrNoError {
			t.Fatalf("%s: %v", m.Name, m.Err)
		}
		if len(m.Partitions) != want[m.Name] {
			t.Errorf("%s has %d partitions, want %d", m.Name, len(m.Partitions), want[m.Name])
		}
	}
	for _, s := range specs {
		entries, err := topicConfig(a, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range entries {
			got[e.Name] = e.Value
		}
		for k, v := range s.Config {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name, k, got[k], v)
			}
		}
	}
	// Re-running with another max.message.bytes reconciles existing topics.
	bigger := wiring.Kafka(cfg.Kafka)
	bigger.MaxMessageBytes = 2 << 20
	if err := kafka.EnsureTopics(t.Context(), a, 1, kafka.ListenTopics(bigger, topics), testenv.Logger(t)); err != nil {
		t.Fatalf("ensure with max.message.bytes %d: %v", bigger.MaxMessageBytes, err)
	}
	for name, want := range map[string]int{string(topics.Raw): 2 << 20, string(topics.Valid): 2 << 20, string(topics.DLQ): 2<<20 + kafka.DeadLetterHeadroom} {
		entries, err := topicConfig(a, name, "max.message.bytes")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Value != strconv.Itoa(want) {
			t.Errorf("%s: max.message.bytes %+v after reconciling, want %d", name, entries, want)
		}
	}
	// The valid topic's partition count is fixed forever: another count is an error.
	bad := kafka.ListenTopics(kafka.Config{ValidPartitions: cfg.Kafka.ValidPartitions * 2, RawPartitions: cfg.Kafka.RawPartitions, MinInsyncReplicas: 1}, topics)
	err = kafka.EnsureTopics(t.Context(), a, 1, bad, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "fixed forever") {
		t.Fatalf("ensure with another partition count of %s: got %v, want a fixed-partitions error", topics.Valid, err)
	}
}

// consume reads n messages from every partition of topic, from the oldest offset.
func consume(t *testing.T, cfg config.Config, topic string, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test-consumer"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *sarama.ConsumerMessage, n)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case m := <-out:
			got = append(got, m)
		case <-deadline:
			t.Fatalf("read %d of %d messages from %s within %v", len(got), n, topic, timeout)
		}
	}
	return got
}

func TestIntegrationSaramaProduceConsume(t *testing.T) {
	cfg := testenv.Config(t)
	topics := ensureTopics(t, cfg)
	p, err := sarama.NewSyncProducer(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test-producer"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 100
	sent := map[string]bool{}
	for i := range n {
		v := `{"user_id":"u` + string(rune('a'+i%26)) + `","i":` + strconv.Itoa(i) + `}`
		sent[v] = true
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: string(topics.Raw), Key: sarama.StringEncoder("u"), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for _, m := range consume(t, cfg, string(topics.Raw), n, 30*time.Second) {
		if !sent[string(m.Value)] {
			t.Errorf("read %q, which was not sent (or twice)", m.Value)
		}
		delete(sent, string(m.Value))
	}
}

// The real kafka-console-producer (Maven Central's kafka-tools, through the
// wrapper users call) writes a JSON line into user.listen.raw that a Go
// consumer then reads byte for byte.
func TestIntegrationConsoleProducerToGoConsumer(t *testing.T) {
	cfg := testenv.Config(t)
	topics := ensureTopics(t, cfg)
	_, file, _, _ := runtime.Caller(0)
	wrapper := filepath.Join(filepath.Dir(file), "..", "bin", "kafka-console-producer")
	line := `{"user_id":"alice","played_at":"` + time.Now().UTC().Format(time.RFC3339) + `","artist_name":"Radiohead","track_name":"Reckoner","album_name":"In Rainbows"}`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrapper, "--bootstrap-server", strings.Join(cfg.Kafka.Brokers, ","),
		"--topic", string(topics.Raw), "--property", "parse.key=true", "--property", "key.separator=\t")
	cmd.Stdin = strings.NewReader("alice\t" + line + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("kafka-console-producer: %v\n%s", err, out)
	}
	got := consume(t, cfg, string(topics.Raw), 1, 30*time.Second)
	if string(got[0].Value) != line {
		t.Fatalf("consumed %q, want %q", got[0].Value, line)
	}
	if string(got[0].Key) != "alice" {
		t.Fatalf("key %q, want alice", got[0].Key)
	}
}

// topicConfig is the topic's configuration (only names, if any).
func topicConfig(a sarama.ClusterAdmin, topic string, names ...string) ([]sarama.ConfigEntry, error) {
	res, err := a.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: names}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, err
	}
	var out []sarama.ConfigEntry
	for _, r := range res {
		if r.ErrorCode != sarama.ErrNoError {
			return nil, fmt.Errorf("describe %s: %v %s", topic, r.ErrorCode, r.ErrorMsg)
		}
		out = append(out, r.Configs...)
	}
	return out, nil
}
