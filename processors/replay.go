package processors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/kafka"
)

// ReplayConfig configures a dead-letter replay.
type ReplayConfig struct {
	Brokers []string
	DLQ     string // dead-letter topic
	Raw     string // where letters go back to: the raw topic, so ingest judges them again
	// Group keeps the replay's progress: each letter is re-injected once
	// per group, so running the replay again does not loop over letters
	// that failed again (those are new letters, past this run's end).
	Group string
	// Reason, when set, replays only letters with that reason header; the
	// others are passed over and stay for a replay of their own reason
	// (which uses its own group).
	Reason string
	DryRun bool
	Log    *slog.Logger
	// Progress is called after each partition with counts so far.
	Progress func(ReplayStats)
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	Read, Replayed, Skipped int
	ByReason                map[string]int
}

// Replay re-injects dead letters written before it started into the raw
// topic with their original key and bytes, and a replayed_from header.
// Letters of an import (StageImport) are passed over: their bytes are a
// history file's records, which ingest cannot read; so are the sitewide
// groups' (StageFanout, StageSitewide: states and Counts). It
// returns when it reached the end offsets it saw at the start.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	st := ReplayStats{ByReason: map[string]int{}}
	sc := kafka.NewSaramaConfig("topk-dlq-replay")
	// Autocommit stays on: sarama's offset manager releases partitions on
	// its commit ticker (without it, closing a partition blocks forever).
	sc.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return st, err
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(cfg.Group, client)
	if err != nil {
		return st, err
	}
	defer om.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return st, err
	}
	defer consumer.Close()
	var producer sarama.SyncProducer
	if !cfg.DryRun {
		if producer, err = sarama.NewSyncProducerFromClient(client); err != nil {
			return st, err
		}
		defer producer.Close()
	}
	parts, err := client.Partitions(cfg.DLQ)
	if err != nil {
		return st, fmt.Errorf("dlq %s: %w", cfg.DLQ, err)
	}
	for _, p := range parts {
		end, err := client.GetOffset(cfg.DLQ, p, sarama.OffsetNewest)
		if err != nil {
			return st, err
		}
		pom, err := om.ManagePartition(cfg.DLQ, p)
		if err != nil {
			return st, err
		}
		oldest, err := client.GetOffset(cfg.DLQ, p, sarama.OffsetOldest)
		if err != nil {
			pom.AsyncClose()
			return st, err
		}
		next, _ := pom.NextOffset()
		if next < oldest { // no progress yet, or letters expired by retention
			next = oldest
		}
		err = replayPartition(ctx, cfg, consumer, producer, pom, p, next, end, &st)
		om.Commit()
		pom.AsyncClose()
		if err != nil {
			return st, err
		}
		if cfg.Progress != nil {
			cfg.Progress(st)
		}
	}
	return st, nil
}

func replayPartition(ctx context.Context, cfg ReplayConfig, consumer sarama.Consumer, producer sarama.SyncProducer,
	pom sarama.PartitionOffsetManager, p int32, from, end int64, st *ReplayStats) error {
	if from >= end {
		return nil
	}
	first, err := consumer.ConsumePartition(cfg.DLQ, p, from)
	if err != nil {
		return err
	}
	defer first.Close()
	idle := time.NewTimer(30 * time.Second)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			return fmt.Errorf("dlq partition %d: no record for 30s before offset %d", p, end)
		case m := <-first.Messages():
			idle.Reset(30 * time.Second)
			st.Read++
			h := map[string][]byte{}
			for _, r := range m.Headers {
				h[string(r.Key)] = r.Value
			}
			reason := string(h[HeaderReason])
			if (cfg.Reason != "" && reason != cfg.Reason) || !replayable(string(h[HeaderStage])) {
				st.Skipped++
			} else {
				if producer != nil {
					msg := &sarama.ProducerMessage{
						Topic:   cfg.Raw,
						Value:   sarama.ByteEncoder(m.Value),
						Headers: []sarama.RecordHeader{{Key: []byte("replayed_from"), Value: m.Key}},
					}
					if k := h[HeaderKey]; len(k) > 0 {
						msg.Key = sarama.ByteEncoder(k)
					}
					if _, _, err := producer.SendMessage(msg); err != nil {
						return fmt.Errorf("re-inject %s: %w", m.Key, err)
					}
				}
				st.Replayed++
				st.ByReason[reason]++
			}
			if !cfg.DryRun {
				pom.MarkOffset(m.Offset+1, "")
			}
			if m.Offset+1 >= end {
				return nil
			}
		}
	}
}
