//go:build integration

package aggregator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// A table written by a version without the recent topic: the backfill
// copies the latest value of each recent user-day (and nothing older) to
// the recent topic, and refuses while an aggregator copy runs.
func TestIntegrationBackfillRecent(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	s := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor,
		MinInsync: cfg.Kafka.MinInsyncReplicas, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	n, err := s.EnsureTable(t.Context(), aggregator.Table(cfg.Namespace), topics.Valid)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	day := func(user string, back, plays int) (string, []byte) {
		d := &aggregator.Day{}
		at := now.AddDate(0, 0, -back)
		for i := range plays {
			d.Add(aggregator.PlayOf(listen.Listen{UserID: user, PlayedAt: at.Add(-time.Duration(i) * time.Minute),
				ArtistName: "A", TrackName: fmt.Sprintf("T%d", i), AlbumName: "X"}))
		}
		return listen.DayKey(user, at), d.Encode()
	}
	var msgs []*sarama.ProducerMessage
	want := map[string]int{}
	for u := range 20 {
		user := fmt.Sprintf("u%02d", u)
		for _, back := range []int{0, 3, 34, 35, 36, 400} {
			for plays := 1; plays <= 3; plays++ { // three versions; the last (3 plays) wins
				k, v := day(user, back, plays)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: string(aggregator.Table(cfg.Namespace)),
					Partition: aggregator.KeyPartition(k, n), Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)})
				if back <= 35 {
					want[k] = 3
				}
			}
		}
	}
	sinktest.Send(t, sinktest.Producer(t, cfg, true), msgs)

	ctx := testenv.Context(t, 2*time.Minute)
	res, err := aggregator.Backfill(ctx, s, aggregator.BackfillConfig{Namespace: cfg.Namespace, RecentDays: 35, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Read != int64(len(msgs)) || res.Written != int64(len(want)) {
		t.Fatalf("backfill read %d and wrote %d, want %d and %d", res.Read, res.Written, len(msgs), len(want))
	}
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	got := map[string]int{}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	recent := string(topics.Recent)
	for p := range n {
		end, err := client.GetOffset(recent, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(recent, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			d, err := aggregator.DecodeDay(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if aggregator.KeyPartition(string(m.Key), n) != p {
				t.Errorf("%s written to partition %d", m.Key, p)
			}
			got[string(m.Key)] = int(d.Total)
			if m.Offset == end-1 {
				break
			}
		}
		pc.Close()
	}
	if len(got) != len(want) {
		t.Fatalf("recent topic holds %d user-days, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d plays in the recent topic, want %d", k, got[k], w)
		}
	}

	// With an aggregator copy in the group, the backfill refuses.
	acfg, err := aggregator.Setup(t.Context(), s, aggregator.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	p, err := aggregator.New(s, acfg, s.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(time.Minute)
	for !p.Recovered() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := aggregator.Backfill(ctx, s, aggregator.BackfillConfig{Namespace: cfg.Namespace}); !errors.Is(err, aggregator.ErrAggregatorRunning) {
		t.Fatalf("backfill with a running aggregator: %v, want ErrAggregatorRunning", err)
	}
}
