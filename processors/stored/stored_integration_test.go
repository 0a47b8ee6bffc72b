//go:build integration

package stored_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/stored"
)

// TestIntegrationGenerations: notices of older days reach an api's
// Generations (which creates nothing: the publisher makes the topic),
// each new one gives its user a new generation, users without notices
// have none, and an api started later reads the notices of its horizon
// and is ready once it has.
func TestIntegrationGenerations(t *testing.T) {
	cfg := testenv.Config(t)
	topic := string(listen.NewTopics(cfg.Namespace).Stored)
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("test"))
		if err == nil {
			_ = kafka.DeleteTopics(admin, topic)
			admin.Close()
		}
	})
	pub, err := stored.NewPublisher(stored.PublisherConfig{Brokers: cfg.Kafka.Brokers, Topic: kafka.StoredTopic(topic, 3, 0), Writer: "test", Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx := testenv.Context(t, 2*time.Minute)
	old := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -40)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if err := pub.Publish(ctx, map[string][]time.Time{"alice": {old}, "bob": {today}}); err != nil {
		t.Fatal(err)
	}
	run := func() (*stored.Generations, context.CancelFunc) {
		g := stored.NewGenerations(stored.GenerationsConfig{Brokers: cfg.Kafka.Brokers, Topic: topic, Horizon: time.Minute, Log: testenv.Logger(t)})
		gctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = g.Run(gctx) }()
		return g, func() { cancel(); <-done }
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 30 s for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	g, stop := run()
	defer stop()
	wait("ready", func() bool { return g.Check(ctx) == nil })
	a1 := g.Generation("alice")
	if a1 == 0 || g.Generation("bob") != 0 {
		t.Fatalf("alice %d (want a notice), bob %d (recent days only: none)", a1, g.Generation("bob"))
	}
	start := time.Now()
	if err := pub.Publish(ctx, map[string][]time.Time{"alice": {old, old.AddDate(0, 0, 1)}}); err != nil {
		t.Fatal(err)
	}
	wait("alice's second notice", func() bool { return g.Generation("alice") != a1 })
	t.Logf("a notice reached the running api %v after it was published", time.Since(start).Round(time.Millisecond))
	a2 := g.Generation("alice")
	// An api started now reads the horizon's notices: alice's latest.
	h, stopH := run()
	defer stopH()
	wait("the second api ready", func() bool { return h.Check(ctx) == nil })
	if h.Generation("alice") != a2 {
		t.Errorf("an api started later: alice %d, want %d", h.Generation("alice"), a2)
	}
}
