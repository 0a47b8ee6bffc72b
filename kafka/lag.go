package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// GroupLag is how many records of topic the consumer group has not yet
// committed: the sum over partitions of high-water mark minus committed
// offset (a partition without a commit counts from its oldest offset).
// sarama's calls take no context: ctx is checked before each of them.
func GroupLag(ctx context.Context, client sarama.Client, admin sarama.ClusterAdmin, group, topic string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("lag of group %s on %s: %w", group, topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("lag of group %s on %s: %w", group, topic, err)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	committed := make(map[int32]int64, len(parts))
	for _, p := range parts {
		committed[p] = -1
		if b := resp.GetBlock(topic, p); b != nil {
			committed[p] = b.Offset
		}
	}
	return recordLag(ctx, client, group, topic, parts, committed)
}

// recordLag sums high-water mark minus committed offset over parts (-1:
// no commit, counted from the partition's oldest offset).
func recordLag(ctx context.Context, client sarama.Client, group, topic string, parts []int32, committed map[int32]int64) (int64, error) {
	var lag int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("lag of group %s on %s: %w", group, topic, err)
		}
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		c := committed[p]
		if c < 0 {
			if c, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return 0, err
			}
		}
		if hwm > c {
			lag += hwm - c
		}
	}
	return lag, nil
}

// WaitCaughtUp polls until the group has committed everything in topic, or
// ctx ends. progress, when set, sees the lag after each poll.
func WaitCaughtUp(ctx context.Context, client sarama.Client, admin sarama.ClusterAdmin, group, topic string, progress func(lag int64)) error {
	for {
		lag, err := GroupLag(ctx, client, admin, group, topic)
		if err == nil && progress != nil {
			progress(lag)
		}
		if err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s on %s: lag %d: %w (last error: %v)", group, topic, lag, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
