package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// BackfillConfig configures Backfill.
type BackfillConfig struct {
	Namespace string
	// RecentDays is the recent topic's window (0: DefaultRecentDays).
	RecentDays int
	// DryRun counts what would be written and writes nothing.
	DryRun bool
	// Now is the clock of the window. Default time.Now.
	Now func() time.Time
	// Progress, when set, is called after each partition.
	Progress func(partition int32, read, written int64)
}

// BackfillResult is what Backfill read and wrote.
type BackfillResult struct {
	Partitions int
	Read       int64 // table records read
	Written    int64 // user-days written to the recent topic
}

// ErrAggregatorRunning is returned by Backfill while the aggregator group
// has members.
var ErrAggregatorRunning = errors.New("aggregator running")

// Backfill copies the user-days of the recent window from the aggregator
// table to the recent topic: the latest value of each, read up to the
// table's end. An installation upgraded from a version without the recent
// topic needs it once, or the api's views miss the recent days until they
// are written again. It refuses while any aggregator copy runs: a copy
// writing a newer value of a user-day between the read and the write
// would be overwritten by the older one.
func Backfill(ctx context.Context, s processors.Settings, cfg BackfillConfig) (BackfillResult, error) {
	var res BackfillResult
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	sc := kafka.NewSaramaConfig("topk-recent-backfill")
	client, err := sarama.NewClient(s.Brokers, sc)
	if err != nil {
		return res, fmt.Errorf("kafka %v: %w", s.Brokers, err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return res, err
	}
	group := string(Group(cfg.Namespace))
	state, n, clients, err := processors.GroupMembers(admin, group)
	if err != nil {
		return res, err
	}
	if n > 0 {
		return res, fmt.Errorf("%w: group %s is %s with %d member(s) (%s): stop every aggregator copy, then run the backfill",
			ErrAggregatorRunning, group, state, n, strings.Join(clients, ", "))
	}
	if !cfg.DryRun {
		if err := EnsureRecent(ctx, s, cfg.Namespace, cfg.RecentDays); err != nil {
			return res, err
		}
	}
	table, recent := string(Table(cfg.Namespace)), string(listen.NewTopics(cfg.Namespace).Recent)
	parts, err := client.Partitions(table)
	if err != nil {
		return res, fmt.Errorf("table %s: %w", table, err)
	}
	c := newCounter(Config{Namespace: cfg.Namespace, RecentDays: cfg.RecentDays, Now: cfg.Now})
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return res, err
	}
	defer consumer.Close()
	var producer sarama.SyncProducer
	if !cfg.DryRun {
		pc := kafka.NewSaramaConfig("topk-recent-backfill")
		pc.Producer.Return.Successes = true
		pc.Producer.Partitioner = sarama.NewManualPartitioner
		pc.Producer.MaxMessageBytes = kafka.ProducerMaxMessageBytes(s.MaxMessageBytes)
		if producer, err = sarama.NewSyncProducer(s.Brokers, pc); err != nil {
			return res, err
		}
		defer producer.Close()
	}
	for _, p := range parts {
		read, latest, err := readRecent(ctx, client, consumer, table, p, c)
		if err != nil {
			return res, err
		}
		res.Partitions++
		res.Read += read
		var batch []*sarama.ProducerMessage
		for k, v := range latest {
			batch = append(batch, &sarama.ProducerMessage{Topic: recent, Partition: p, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)})
		}
		if producer != nil && len(batch) > 0 {
			if err := producer.SendMessages(batch); err != nil {
				return res, fmt.Errorf("write %s/%d: %w", recent, p, err)
			}
		}
		res.Written += int64(len(batch))
		if cfg.Progress != nil {
			cfg.Progress(p, res.Read, res.Written)
		}
		log.Debug("backfilled partition", "partition", p, "read", read, "recent", len(batch))
	}
	return res, nil
}

// readRecent reads table partition p from its start to its end at the
// time of the call and returns the latest value of each recent key.
func readRecent(ctx context.Context, client sarama.Client, consumer sarama.Consumer, table string, p int32, c *counter) (int64, map[string][]byte, error) {
	latest := map[string][]byte{}
	oldest, err := client.GetOffset(table, p, sarama.OffsetOldest)
	if err != nil {
		return 0, nil, err
	}
	end, err := client.GetOffset(table, p, sarama.OffsetNewest)
	if err != nil || end <= oldest {
		return 0, latest, err
	}
	pc, err := consumer.ConsumePartition(table, p, oldest)
	if err != nil {
		return 0, nil, err
	}
	defer pc.Close()
	var read int64
	for {
		select {
		case <-ctx.Done():
			return read, nil, ctx.Err()
		case err := <-pc.Errors():
			return read, nil, err
		case m := <-pc.Messages():
			read++
			if k := string(m.Key); c.recent(k) {
				if m.Value == nil {
					delete(latest, k)
				} else {
					latest[k] = m.Value
				}
			}
			if m.Offset >= end-1 {
				return read, latest, nil
			}
		}
	}
}
