package crawler

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
)

// Publisher sends a batch of listens and returns once Kafka acknowledged
// every one of them (or the first failure).
type Publisher interface {
	Publish(ctx context.Context, batch []listen.Listen) error
}

// KafkaPublisher produces listens to the raw topic keyed by user id, with
// the idempotent, acks=all producer of kafka.NewSaramaConfig.
type KafkaPublisher struct {
	topic    string
	producer sarama.SyncProducer
}

// NewKafkaPublisher connects a producer for topic.
func NewKafkaPublisher(brokers []string, topic string) (*KafkaPublisher, error) {
	cfg := kafka.NewSaramaConfig("topk-crawler")
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer %v: %w", brokers, err)
	}
	return &KafkaPublisher{topic: topic, producer: p}, nil
}

// Publish sends batch and waits for every acknowledgement. On error some
// listens may be in Kafka already: the caller does not move its cursor and
// the retry sends them again (the pipeline dedups).
func (p *KafkaPublisher) Publish(ctx context.Context, batch []listen.Listen) error {
	if len(batch) == 0 {
		return nil
	}
	msgs := make([]*sarama.ProducerMessage, len(batch))
	for i, l := range batch {
		v, err := json.Marshal(l)
		if err != nil {
			return err
		}
		msgs[i] = &sarama.ProducerMessage{Topic: p.topic, Key: sarama.StringEncoder(l.UserID), Value: sarama.ByteEncoder(v)}
	}
	// SendMessages has no context: it returns when the producer's own
	// retries end (kafka.NewSaramaConfig bounds them).
	if err := p.producer.SendMessages(msgs); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
			return fmt.Errorf("kafka: %d of %d listens not acknowledged: %w", len(errs), len(batch), errs[0].Err)
		}
		return fmt.Errorf("kafka: %w", err)
	}
	return ctx.Err()
}

// Close flushes and closes the producer.
func (p *KafkaPublisher) Close() error { return p.producer.Close() }
