package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
)

// Config loads the configuration from the environment and gives it a random
// namespace, keyspace and database name. The api's per-client rate limit
// is off: tests send many requests from one address, and the tests of
// the limit set it.
func Config(t testing.TB) config.Config {
	t.Helper()
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "t" + hex.EncodeToString(b)
	cfg.Namespace = id
	cfg.Cassandra.Keyspace = "topk_" + id
	cfg.Postgres.Database = "topk_" + id
	cfg.API.RateLimit = 0
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return cfg
}

// Logger writes to the test log when -v is given, nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return ops.NewLogger(w, "debug", "text").With("test", t.Name())
}

// Context is cancelled when the test ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Keyspace migrates cfg's keyspace and drops it when the test ends (on the
// 3-node cluster the migration took 25 s; the budget is 2 minutes).
func Keyspace(t testing.TB, cfg config.Config) {
	t.Helper()
	ctx := Context(t, 2*time.Minute)
	if err := cassandra.Migrate(ctx, wiring.Cassandra(cfg.Cassandra), Logger(t)); err != nil {
		t.Fatalf("migrate keyspace %s: %v", cfg.Cassandra.Keyspace, err)
	}
	t.Cleanup(func() {
		if err := cassandra.DropKeyspace(context.Background(), wiring.Cassandra(cfg.Cassandra), cfg.Cassandra.Keyspace); err != nil {
			t.Errorf("drop keyspace %s: %v", cfg.Cassandra.Keyspace, err)
		}
	})
}

// Database creates cfg's database and drops it when the test ends.
func Database(t testing.TB, cfg config.Config) {
	t.Helper()
	PostgresDatabase(t, wiring.Postgres(cfg.Postgres))
}

// PostgresDatabase creates c's database, dropped when the test ends.
func PostgresDatabase(t testing.TB, c postgres.Config) {
	t.Helper()
	ctx := Context(t, time.Minute)
	if err := postgres.CreateDatabase(ctx, c, c.Database); err != nil {
		t.Fatalf("create database %s: %v", c.Database, err)
	}
	t.Cleanup(func() {
		if err := postgres.DropDatabase(context.Background(), c, c.Database); err != nil {
			t.Errorf("drop database %s: %v", c.Database, err)
		}
	})
}

// Topics creates the listen topics of cfg's namespace and, when the test
// ends, deletes every topic of the namespace (Goka's table topics too).
func Topics(t testing.TB, cfg config.Config) listen.Topics {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	topics := listen.NewTopics(cfg.Namespace)
	err = kafka.EnsureTopics(t.Context(), admin, int16(cfg.Kafka.ReplicationFactor), kafka.ListenTopics(wiring.Kafka(cfg.Kafka), topics), Logger(t))
	admin.Close()
	if err != nil {
		t.Fatalf("topics: %v", err)
	}
	t.Cleanup(func() {
		// A new admin: the test may have killed the broker the first one
		// talked to (its connection is gone even if the broker is back).
		admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
		if err != nil {
			t.Errorf("delete topics: kafka admin: %v", err)
			return
		}
		defer admin.Close()
		if err := kafka.DeleteNamespace(admin, cfg.Namespace); err != nil {
			t.Errorf("delete topics: %v", err)
		}
	})
	return topics
}

// Records reads every record of topic up to the high water marks it finds.
func Records(t testing.TB, cfg config.Config, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset >= hw-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}
