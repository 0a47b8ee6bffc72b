//go:build integration

package sitewide_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sitewide"
	swview "github.com/topk-charts/topk/views/sitewide"
)

// partitionOf is the partition Goka gives key with sitewide.Hasher.
func partitionOf(key string, n int32) int32 {
	h := sitewide.Hasher()
	h.Write([]byte(key))
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

// TestIntegrationViewOnKafka: the view sets its topic up on the real
// Kafka (the api first, no sitewide group yet), reads the group's values
// of several days, buckets and child keys, partitioned by sitewide.Hasher,
// and answers Range and Listeners as an independent count says; its Goka
// view finds a key in the partition the hasher gives; a second view
// recovering from the topic answers the same.
func TestIntegrationViewOnKafka(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor,
		MinInsync: cfg.Kafka.MinInsyncReplicas, Log: testenv.Logger(t)}
	ctx := testenv.Context(t, 3*time.Minute)
	today := time.Now().UTC().Truncate(24 * time.Hour)

	start := func() *swview.View {
		v, err := swview.New(set, swview.Config{Namespace: cfg.Namespace, Days: 7, Registerer: prometheus.NewRegistry(),
			Maintain: time.Hour, Log: testenv.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		vctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- v.Run(vctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		for !v.Recovered() {
			if ctx.Err() != nil {
				t.Fatal("view did not recover")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return v
	}
	v := start()

	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(string(topics.SitewideRecent))
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := client.Partitions(string(topics.Valid))
	if len(parts) != len(valid) {
		t.Fatalf("the recent topic has %d partitions, user.listen.valid %d", len(parts), len(valid))
	}

	// The group's values: 80 users' plays of 25 albums over 9 days (two
	// before the window), each user in the key of their bucket, or a
	// child of it for users whose number ends in 7 (a full bucket); the
	// latest value of some keys written twice.
	rng := rand.New(rand.NewPCG(3, 5))
	type cell struct {
		item uint64
		day  time.Time
	}
	plays := map[cell]map[string]uint32{}
	for range 3000 {
		c := cell{uint64(1 + rng.IntN(25)), today.AddDate(0, 0, -rng.IntN(9))}
		if plays[c] == nil {
			plays[c] = map[string]uint32{}
		}
		plays[c][fmt.Sprintf("user%02d", rng.IntN(80))] = uint32(rng.IntN(3))
	}
	values := map[string]*sitewide.Value{}
	for c, us := range plays {
		for u, p := range us {
			b := sitewide.BucketOf(u)
			if u[len(u)-1] == '7' {
				b = 1024 + b
			}
			k := sitewide.Key{Entity: topk.Albums, Item: c.item, Day: c.day, Bucket: b}.String()
			if values[k] == nil {
				values[k] = &sitewide.Value{Spellings: []sitewide.Spelling{{Name: fmt.Sprintf("Album %d", c.item), Artist: "Band"}}}
			}
			values[k].Listeners = append(values[k].Listeners, sitewide.Listener{User: u, Plays: p, Version: 1})
		}
	}
	var msgs []*sarama.ProducerMessage
	for k, val := range values {
		slices.SortFunc(val.Listeners, func(a, b sitewide.Listener) int { return cmpString(a.User, b.User) })
		stale := &sitewide.Value{Spellings: val.Spellings, Listeners: []sitewide.Listener{{User: "ghost", Plays: 50}}}
		for _, x := range []*sitewide.Value{stale, val} { // the stale one first: compaction's order
			msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.SitewideRecent), Key: sarama.StringEncoder(k),
				Value: sarama.ByteEncoder(sitewide.AppendValue(nil, x)), Partition: partitionOf(k, int32(len(parts)))})
		}
	}
	pc := kafka.NewSaramaConfig("topk-test")
	pc.Producer.Return.Successes = true
	pc.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(cfg.Kafka.Brokers, pc)
	if err != nil {
		t.Fatal(err)
	}
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	producer.Close()

	from, to := today.AddDate(0, 0, -6), today
	check := func(v *swview.View, what string) {
		t.Helper()
		wantPlays, wantUsers := map[uint64]int64{}, map[uint64]map[string]bool{}
		for c, us := range plays {
			if c.day.Before(from) {
				continue
			}
			for u, p := range us {
				if p > 0 {
					wantPlays[c.item] += int64(p)
					if wantUsers[c.item] == nil {
						wantUsers[c.item] = map[string]bool{}
					}
					wantUsers[c.item][u] = true
				}
			}
		}
		var got []swview.Tally
		for ctx.Err() == nil {
			got = v.Range(topk.Albums, from, to)
			var sum, want int64
			for _, g := range got {
				sum += g.Plays
			}
			for _, p := range wantPlays {
				want += p
			}
			if sum == want {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(got) != len(wantPlays) {
			t.Fatalf("%s: %d albums, want %d", what, len(got), len(wantPlays))
		}
		items := make([]uint64, len(got))
		for i, g := range got {
			items[i] = g.Item
			if g.Plays != wantPlays[g.Item] || g.Name != fmt.Sprintf("Album %d", g.Item) {
				t.Fatalf("%s: %+v, want %d plays", what, g, wantPlays[g.Item])
			}
		}
		ls := v.Listeners(topk.Albums, items, from, to)
		for i, item := range items {
			if ls[i] != int64(len(wantUsers[item])) {
				t.Fatalf("%s: album %d has %d listeners, want %d", what, item, ls[i], len(wantUsers[item]))
			}
		}
	}
	check(v, "live")
	// Goka finds every key of the window where sitewide.Hasher put it,
	// with its latest value.
	n := 0
	for k, val := range values {
		key, _ := sitewide.ParseKey(k)
		if key.Day.Before(from) {
			continue
		}
		got, err := v.Goka().Get(k)
		if b, ok := got.([]byte); err != nil || !ok || string(b) != string(sitewide.AppendValue(nil, val)) {
			t.Fatalf("Goka view Get(%s) = %v, %v: not the latest value", k, got, err)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d keys in the window", n)
	}
	check(start(), "recovered")
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
