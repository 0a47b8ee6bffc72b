package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Version is the Kafka protocol version topk speaks. Kafka 4 rejects
// protocols older than 2.1; sarama's default is older than that.
var Version = sarama.V3_9_0_0

// NewSaramaConfig returns the settings every topk client starts from:
//   - Version ≥ 2.1 (Kafka 4 rejects older request versions);
//   - consumers start at the oldest offset, so a new group (or one whose
//     offsets expired) reads the backlog instead of skipping it;
//   - producers are idempotent, wait for all in-sync replicas and keep one
//     request in flight, so a retried batch can never overtake a later one
//     (compaction would otherwise keep an older value);
//   - producers retry for about half a minute (backoff doubling from 100 ms,
//     capped at 2 s), so a broker restart or a leader election is ridden out
//     without an error; past that the caller sees the error (a Goka
//     processor then restarts, see processors.Supervisor).
func NewSaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.Version = Version
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 20
	c.Producer.Retry.BackoffFunc = CappedBackoff(100*time.Millisecond, 2*time.Second)
	c.Net.MaxOpenRequests = 1
	c.Metadata.Retry.Max = 5
	return c
}

// CappedBackoff is a sarama retry backoff: first doubling from first,
// at most max.
func CappedBackoff(first, max time.Duration) func(retries, maxRetries int) time.Duration {
	return func(retries, _ int) time.Duration {
		d := first
		for i := 0; i < retries && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// Ping sends a metadata request to the brokers and returns the number of
// brokers in the cluster: the readiness check of the local stack.
func Ping(ctx context.Context, brokers []string) (int, error) {
	cfg := NewSaramaConfig("topk-ping")
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Metadata.Retry.Max = 0
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			done <- result{0, err}
			return
		}
		defer admin.Close()
		bs, _, err := admin.DescribeCluster()
		done <- result{len(bs), err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, fmt.Errorf("kafka metadata request to %v: %w", brokers, r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("kafka metadata request to %v: %w", brokers, ctx.Err())
	}
}
