// The Kafka requests of Quarantine: the record's existence and bytes, the
// group's committed offset and members (waiting for none), and the offset
// commit made from outside the group.

package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// checkRecordExists checks that the partition exists and the offset lies
// between its oldest and newest offsets.
func checkRecordExists(client sarama.Client, cfg QuarantineConfig) error {
	parts, err := client.Partitions(cfg.Topic)
	if err != nil {
		return fmt.Errorf("%w: topic %s: %w", ErrNoRecord, cfg.Topic, err)
	}
	if !slices.Contains(parts, cfg.Partition) {
		return fmt.Errorf("%w: topic %s has no partition %d (it has %d)", ErrNoRecord, cfg.Topic, cfg.Partition, len(parts))
	}
	oldest, err := client.GetOffset(cfg.Topic, cfg.Partition, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	newest, err := client.GetOffset(cfg.Topic, cfg.Partition, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	if cfg.Offset < oldest || cfg.Offset >= newest {
		return fmt.Errorf("%w: %s/%d holds offsets %d to %d, not %d", ErrNoRecord, cfg.Topic, cfg.Partition, oldest, newest-1, cfg.Offset)
	}
	return nil
}

// committedOffset is group's committed offset on (topic, partition), -1
// when it has none.
func committedOffset(admin sarama.ClusterAdmin, group, topic string, partition int32) (int64, error) {
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		return -1, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return -1, fmt.Errorf("offsets of group %s: %w", group, resp.Err)
	}
	b := resp.GetBlock(topic, partition)
	if b == nil {
		return -1, nil
	}
	if !errors.Is(b.Err, sarama.ErrNoError) {
		return -1, fmt.Errorf("offset of group %s on %s/%d: %w", group, topic, partition, b.Err)
	}
	return b.Offset, nil
}

// GroupMembers describes a consumer group: its state, how many members it
// has and which (client id@host).
func GroupMembers(admin sarama.ClusterAdmin, group string) (state string, n int, clients []string, err error) {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return "", 0, nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	for _, d := range ds {
		if d.GroupId != group {
			continue
		}
		if !errors.Is(d.Err, sarama.ErrNoError) {
			return "", 0, nil, fmt.Errorf("describe group %s: %w", group, d.Err)
		}
		for _, m := range d.Members {
			clients = append(clients, m.ClientId+"@"+strings.TrimPrefix(m.ClientHost, "/"))
		}
		slices.Sort(clients)
		return d.State, len(d.Members), clients, nil
	}
	return "", 0, nil, nil
}

// waitEmpty polls until group has no members, cfg.Wait passes or ctx ends.
func waitEmpty(ctx context.Context, admin sarama.ClusterAdmin, cfg QuarantineConfig, log *slog.Logger) (string, error) {
	deadline := time.Now().Add(cfg.Wait)
	last := -1
	for {
		state, n, clients, err := GroupMembers(admin, cfg.Group)
		if err != nil {
			return state, err
		}
		if n == 0 {
			log.Info("group has no members", "state", state)
			return state, nil
		}
		if time.Now().After(deadline) {
			return state, &GroupActiveError{Group: cfg.Group, Members: n, Clients: clients, Waited: cfg.Wait}
		}
		if n != last {
			log.Info("waiting for the group to have no members: stop its services", "members", n, "clients", clients,
				"wait_left", time.Until(deadline).Round(time.Second))
			last = n
		}
		select {
		case <-ctx.Done():
			return state, fmt.Errorf("waiting for group %s to have no members (%d left): %w", cfg.Group, n, ctx.Err())
		case <-time.After(min(cfg.Poll, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// readRecord reads the record at (cfg.Topic, cfg.Partition, cfg.Offset).
func readRecord(ctx context.Context, client sarama.Client, cfg QuarantineConfig) (*sarama.ConsumerMessage, error) {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(cfg.Topic, cfg.Partition, cfg.Offset)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d at %d: %w", cfg.Topic, cfg.Partition, cfg.Offset, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout.C:
		return nil, fmt.Errorf("read %s/%d at %d: no record within 30s", cfg.Topic, cfg.Partition, cfg.Offset)
	case err := <-pc.Errors():
		return nil, fmt.Errorf("read %s/%d at %d: %w", cfg.Topic, cfg.Partition, cfg.Offset, err)
	case m := <-pc.Messages():
		if m.Offset != cfg.Offset {
			return nil, fmt.Errorf("%w: the first record of %s/%d from %d is at %d (%d was compacted away or is a transaction marker)",
				ErrNoRecord, cfg.Topic, cfg.Partition, cfg.Offset, m.Offset, cfg.Offset)
		}
		return m, nil
	}
}

// commitOffset commits offset for group on (topic, partition) as a client
// outside the group (generation -1), which Kafka accepts only while the
// group has no members.
func commitOffset(client sarama.Client, sc *sarama.Config, group, topic string, partition int32, offset int64) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if attempt > 1 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			_ = client.RefreshCoordinator(group)
		}
		var coordinator *sarama.Broker
		if coordinator, err = client.Coordinator(group); err != nil {
			continue
		}
		req := sarama.NewOffsetCommitRequest(sc, group)
		req.AddBlockWithLeaderEpoch(topic, partition, offset, -1, 0, "topk dlq quarantine")
		var resp *sarama.OffsetCommitResponse
		if resp, err = coordinator.CommitOffset(req); err != nil {
			continue
		}
		kerr, ok := resp.Errors[topic][partition]
		if !ok {
			return fmt.Errorf("no answer for %s/%d in the commit response", topic, partition)
		}
		if errors.Is(kerr, sarama.ErrNoError) {
			return nil
		}
		err = kerr
		if !errors.Is(kerr, sarama.ErrNotCoordinatorForConsumer) && !errors.Is(kerr, sarama.ErrConsumerCoordinatorNotAvailable) &&
			!errors.Is(kerr, sarama.ErrOffsetsLoadInProgress) {
			if errors.Is(kerr, sarama.ErrUnknownMemberId) || errors.Is(kerr, sarama.ErrIllegalGeneration) || errors.Is(kerr, sarama.ErrRebalanceInProgress) {
				return fmt.Errorf("%w (a member joined the group meanwhile: stop its services)", kerr)
			}
			return kerr
		}
	}
	return err
}
