package aggregator

import (
	"context"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sitewide"
)

// CountsRetention is how long the counts topic (listen.Topics.Counts)
// keeps Counts: as long as user.listen.valid keeps listens
// (kafka.ListenTopics), the time the sitewide group may be down and still
// catch up.
const CountsRetention = 14 * 24 * time.Hour

var countsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "topk_aggregator_sitewide_counts_total",
	Help: "sitewide.Counts the aggregator sent to the counts topic, by why: changed (the items a counted listen or a deletion touched) or all (every item of a day whose state was written again unchanged: a duplicate or a replay after a crash).",
}, []string{"why"})

var (
	countsChanged = countsSent.WithLabelValues("changed")
	countsAll     = countsSent.WithLabelValues("all")
)

// emitCounts sends the sitewide Counts of state d of the user-day in
// process (ctx.Key()): one per item d's change touched (Day.Changed), or
// one per item of the day when Changed is empty (a state written again
// unchanged, see rewrite). A Count is the user's absolute plays of the
// item that day with the state's Version, keyed sitewide.Key{entity,
// item, day, sitewide.BucketOf(user)}; the sitewide group keeps each
// user's latest Count by Version, so a Count sent again changes nothing,
// while one never sent would lose plays. The emits are part of the same
// Goka callback as the table write: the input offset is committed only
// once both are acknowledged, and a listen redelivered after a crash
// finds its change in the state (a duplicate) and rewrites it, sending
// every item again.
func (c *counter) emitCounts(ctx goka.Context, d *Day) {
	user, day, ok := listen.SplitKey(ctx.Key())
	if !ok { // process checked the key's partition, not its form; the listen's key matched
		return
	}
	all := d.Changed.Empty()
	key := sitewide.Key{Day: day, Bucket: sitewide.BucketOf(user)}
	cnt := sitewide.Count{User: user, Version: d.Version}
	n := 0
	send := func(e topk.Entity, it *Item) {
		key.Entity, key.Item = e, it.Key
		cnt.Plays, cnt.Name, cnt.Artist = it.Plays, it.Name, it.Artist
		ctx.Emit(c.t.Counts, key.String(), sitewide.AppendCount(nil, &cnt))
		n++
	}
	for _, e := range topk.Entities {
		items := d.Items(e)
		if all {
			for i := range items {
				send(e, &items[i])
			}
		} else if i, ok := d.Changed.Index(e); ok {
			send(e, &items[i])
		}
	}
	if all {
		countsAll.Add(float64(n))
	} else {
		countsChanged.Add(float64(n))
	}
}

// EnsureCounts creates or reconciles the counts topic of namespace (the
// partitions of user.listen.valid, fixed; deleted by age after
// CountsRetention). The aggregator (Setup) and the sitewide group both
// set it up, so either may start first. It gives up when ctx ends.
func EnsureCounts(ctx context.Context, s processors.Settings, namespace string) error {
	_, err := s.EnsureCopartitioned(ctx, listen.NewTopics(namespace).Valid, countsSpec(s, namespace))
	return err
}

// countsSpec is the counts topic's spec under s. s.MinInsync 0 leaves
// min.insync.replicas to the brokers.
func countsSpec(s processors.Settings, namespace string) func(int32) kafka.TopicSpec {
	return func(n int32) kafka.TopicSpec {
		spec := kafka.TopicSpec{Name: string(listen.NewTopics(namespace).Counts), Partitions: n, FixedPartitions: true,
			Config: map[string]string{
				"cleanup.policy": "delete",
				"retention.ms":   strconv.FormatInt(CountsRetention.Milliseconds(), 10),
			}}
		if s.MinInsync > 0 {
			spec.Config["min.insync.replicas"] = strconv.Itoa(s.MinInsync)
		}
		return spec.WithMaxMessageBytes(s.MaxMessageBytes)
	}
}
