//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
)

// `topk ping`, `topk topics` and `topk migrate` against the real servers,
// each run twice: re-running is harmless.
func TestIntegrationTopicsAndMigrate(t *testing.T) {
	cfg := testenv.Config(t)
	t.Setenv("TOPK_NAMESPACE", cfg.Namespace)
	t.Setenv("TOPK_CASSANDRA_KEYSPACE", cfg.Cassandra.Keyspace)
	t.Setenv("TOPK_POSTGRES_DB", cfg.Postgres.Database)
	testenv.Database(t, cfg)
	t.Cleanup(func() {
		if err := cassandra.DropKeyspace(context.Background(), wiring.Cassandra(cfg.Cassandra), cfg.Cassandra.Keyspace); err != nil {
			t.Error(err)
		}
		a, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		tp := listen.NewTopics(cfg.Namespace)
		if err := kafka.DeleteTopics(a, string(tp.Raw), string(tp.Valid), string(tp.DLQ), string(tp.Recent), string(tp.Stored),
			string(tp.Counts), string(tp.SitewideRecent)); err != nil {
			t.Error(err)
		}
	})
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("topk %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	out := run("ping")
	for _, s := range []string{"kafka", "cassandra", "redis", "postgres"} {
		if !strings.Contains(out, s) {
			t.Errorf("ping output lacks %s:\n%s", s, out)
		}
	}
	for range 2 {
		run("topics")
		run("migrate")
	}
	// Every topic the services read or write outside their own tables,
	// the sitewide charts' included, with user.listen.valid's partitions
	// where they must be copartitioned with it.
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	tp := listen.NewTopics(cfg.Namespace)
	described, err := admin.DescribeTopics([]string{string(tp.Raw), string(tp.Valid), string(tp.DLQ), string(tp.Recent),
		string(tp.Counts), string(tp.SitewideRecent)})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range described {
		if d.Err != sarama.ErrNoError {
			t.Errorf("topic %s after topk topics: %v", d.Name, d.Err)
			continue
		}
		switch d.Name {
		case string(tp.Valid), string(tp.Recent), string(tp.Counts), string(tp.SitewideRecent):
			if len(d.Partitions) != cfg.Kafka.ValidPartitions {
				t.Errorf("topic %s has %d partitions, want user.listen.valid's %d", d.Name, len(d.Partitions), cfg.Kafka.ValidPartitions)
			}
		}
	}
	pool, err := postgres.Connect(context.Background(), wiring.Postgres(cfg.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatalf("migrated users table: %v", err)
	}
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Query(`SELECT count(*) FROM day_items`).Scan(&n); err != nil {
		t.Fatalf("migrated day_items: %v", err)
	}
}
