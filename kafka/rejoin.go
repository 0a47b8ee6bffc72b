package kafka

import (
	"context"
	"time"

	"github.com/IBM/sarama"
)

// RejoinAtOnce wraps a consumer group so that Consume, when a session ends
// for a rebalance (sarama returns nil while ctx is live), joins the next
// one at once instead of returning. Goka 1.1.14's processor waits a fixed
// 5 s after Consume returns before it calls it again (processor.go,
// rebalanceLoop), and a group's rebalance waits for every member to
// rejoin, so every copy joining or leaving stopped all counting for 5–7 s
// (measured by make bench-scaleout). Errors still return at once, so Goka
// and the supervisor see them as before. A session that ended within
// minSession of its start is followed by a pause of minSession, so a
// group that cannot hold a session does not spin.
func RejoinAtOnce(g sarama.ConsumerGroup) sarama.ConsumerGroup { return rejoinGroup{g} }

type rejoinGroup struct{ sarama.ConsumerGroup }

const minSession = time.Second

func (g rejoinGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	for {
		start := time.Now()
		if err := g.ConsumerGroup.Consume(ctx, topics, h); err != nil || ctx.Err() != nil {
			return err
		}
		if d := time.Since(start); d < minSession {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(minSession - d):
			}
		}
	}
}
