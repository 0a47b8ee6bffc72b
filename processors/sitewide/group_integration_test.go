//go:build integration

package sitewide_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/processors/sitewide"
)

// The group on the real Kafka with a small KeyBytes: Counts of 300 users
// (two versions each, sent twice in shuffled order) spill over child keys
// across partitions; the table's latest values hold every user once with
// its latest plays, SitewideRecent has the same values, and a Count on
// the wrong partition goes to the DLQ.
func TestIntegrationSitewideGroup(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	err = kafka.EnsureTopics(t.Context(), admin, int16(cfg.Kafka.ReplicationFactor), []kafka.TopicSpec{{
		Name: string(topics.Counts), Partitions: int32(cfg.Kafka.ValidPartitions), FixedPartitions: true,
		Config: map[string]string{"cleanup.policy": "delete"}}}, testenv.Logger(t))
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor,
		MinInsync: cfg.Kafka.MinInsyncReplicas, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	gcfg, err := sitewide.Setup(t.Context(), s, sitewide.Config{Namespace: cfg.Namespace, KeyBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	n := gcfg.Partitions

	today := time.Now().UTC().Truncate(24 * time.Hour)
	rng := rand.New(rand.NewPCG(5, 6))
	final := map[string]uint32{}
	var msgs []*sarama.ProducerMessage
	for i := range 300 {
		u := fmt.Sprintf("user-%03d", i)
		k := sitewide.Key{Entity: topk.Artists, Item: 7, Day: today, Bucket: sitewide.BucketOf(u)}
		p1 := uint32(1 + rng.IntN(50))
		p2 := p1 + uint32(rng.IntN(200))
		final[u] = p2
		for _, c := range []sitewide.Count{{User: u, Version: 1, Plays: p1, Name: "Band"}, {User: u, Version: 2, Plays: p2, Name: "Band"}} {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Counts), Key: sarama.StringEncoder(k.String()),
				Partition: sitewide.KeyPartition(k.String(), n), Value: sarama.ByteEncoder(sitewide.AppendCount(nil, &c))})
		}
	}
	all := append(append([]*sarama.ProducerMessage{}, msgs...), msgs...)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	wrong := sitewide.Key{Entity: topk.Artists, Item: 7, Day: today, Bucket: sitewide.BucketOf("stray")}
	all = append(all, &sarama.ProducerMessage{Topic: string(topics.Counts), Key: sarama.StringEncoder(wrong.String()),
		Partition: (sitewide.KeyPartition(wrong.String(), n) + 1) % n,
		Value:     sarama.ByteEncoder(sitewide.AppendCount(nil, &sitewide.Count{User: "stray", Version: 1, Plays: 1}))})
	prod := sinktest.Producer(t, cfg, true)
	for i, m := range all {
		if _, _, err := prod.SendMessage(m); err != nil {
			t.Fatalf("produce %d of %d: %v", i, len(all), err)
		}
	}

	p, err := sitewide.New(s, gcfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	}()

	latest := func(topic string) map[string]*sitewide.Value {
		vs := map[string]*sitewide.Value{}
		for _, m := range testenv.Records(t, cfg, topic) {
			if sitewide.KeyPartition(string(m.Key), n) != m.Partition {
				t.Fatalf("%s: key %s on partition %d", topic, m.Key, m.Partition)
			}
			v, err := sitewide.DecodeValue(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Value) > gcfg.KeyBytes {
				t.Fatalf("%s: a value of %d bytes", m.Key, len(m.Value))
			}
			vs[string(m.Key)] = v
		}
		return vs
	}
	check := func(vs map[string]*sitewide.Value) error {
		seen := map[string]bool{}
		for k, v := range vs {
			key, err := sitewide.ParseKey(k)
			if err != nil {
				return err
			}
			for _, l := range v.Listeners {
				if seen[l.User] {
					return fmt.Errorf("user %s in two keys", l.User)
				}
				seen[l.User] = true
				if !sitewide.OnPath(key.Bucket, l.User) {
					return fmt.Errorf("user %s in %s, off its path", l.User, k)
				}
				if l.Plays != final[l.User] {
					return fmt.Errorf("user %s: %d plays, want %d", l.User, l.Plays, final[l.User])
				}
			}
		}
		if len(seen) != len(final) {
			return fmt.Errorf("%d users counted, want %d", len(seen), len(final))
		}
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	var tableVs map[string]*sitewide.Value
	for {
		tableVs = latest(string(sitewide.Table(cfg.Namespace)))
		err := check(tableVs)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table: %v", err)
		}
		time.Sleep(time.Second)
	}
	recent := latest(string(topics.SitewideRecent))
	if err := check(recent); err != nil || len(recent) != len(tableVs) {
		t.Fatalf("recent topic: %v; %d keys, table %d", err, len(recent), len(tableVs))
	}
	full := 0
	for _, v := range tableVs {
		if v.Full {
			full++
		}
	}
	if full == 0 {
		t.Fatal("no key spilled")
	}
	t.Logf("%d users over %d keys (%d full) on %d partitions", len(final), len(tableVs), full, n)
	var reasons []string
	for _, m := range testenv.Records(t, cfg, string(topics.DLQ)) {
		for _, h := range m.Headers {
			if string(h.Key) == processors.HeaderReason {
				reasons = append(reasons, string(h.Value))
			}
		}
	}
	if len(reasons) != 1 || reasons[0] != "wrong_partition" {
		t.Fatalf("dead letters %v, want one wrong_partition", reasons)
	}
}
