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

// SourceHeader is the Kafka record header naming where a listen came from
// (its source field: a provider, "listenbrainz"), for whoever reads the
// raw topic; the pipeline trusts only the record's value.
const SourceHeader = "source"

// KafkaPublisher produces listens to the raw topic keyed by user id (so
// a user's listens keep their order), with the idempotent, acks=all
// producer of kafka.NewSaramaConfig, and a SourceHeader.
type KafkaPublisher struct {
	topic    string
	producer sarama.SyncProducer
}

// NewKafkaPublisher connects a producer for topic. Sarama's connect takes
// no context: when ctx ends first, NewKafkaPublisher returns ctx's error
// at once and the producer, should it still connect, is closed.
func NewKafkaPublisher(ctx context.Context, brokers []string, topic string) (*KafkaPublisher, error) {
	type connected struct {
		p   sarama.SyncProducer
		err error
	}
	done := make(chan connected, 1)
	go func() {
		p, err := sarama.NewSyncProducer(brokers, kafka.NewSaramaConfig("topk-crawler"))
		done <- connected{p, err}
	}()
	select {
	case c := <-done:
		if c.err != nil {
			return nil, fmt.Errorf("kafka producer %v: %w", brokers, c.err)
		}
		return &KafkaPublisher{topic: topic, producer: c.p}, nil
	case <-ctx.Done():
		go func() {
			if c := <-done; c.err == nil {
				c.p.Close()
			}
		}()
		return nil, fmt.Errorf("kafka producer %v: %w", brokers, ctx.Err())
	}
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
		if l.Source != "" {
			msgs[i].Headers = []sarama.RecordHeader{{Key: []byte(SourceHeader), Value: []byte(l.Source)}}
		}
	}
	if err := p.Send(ctx, msgs); err != nil {
		return fmt.Errorf("kafka: %d listens: %w", len(batch), err)
	}
	return nil
}

// Send produces msgs as they are (any topic) and waits for every
// acknowledgement; its error says how many were not acknowledged.
func (p *KafkaPublisher) Send(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	if len(msgs) == 0 {
		return ctx.Err()
	}
	// SendMessages has no context: it returns when the producer's own
	// retries end (kafka.NewSaramaConfig bounds them).
	if err := p.producer.SendMessages(msgs); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
			return fmt.Errorf("%d of %d records not acknowledged: %w", len(errs), len(msgs), errs[0].Err)
		}
		return err
	}
	return ctx.Err()
}

// PublishDelete sends the delete record of d (listen.Delete.Encode) keyed
// by its user id, so that it follows the user's listens, with a
// SourceHeader of source when not empty, and waits for its
// acknowledgement. Sending it again is harmless: deleting a listen twice
// deletes it once.
func (p *KafkaPublisher) PublishDelete(ctx context.Context, d listen.Delete, source string) error {
	msg := &sarama.ProducerMessage{Topic: p.topic, Key: sarama.StringEncoder(d.UserID), Value: sarama.ByteEncoder(d.Encode())}
	if source != "" {
		msg.Headers = []sarama.RecordHeader{{Key: []byte(SourceHeader), Value: []byte(source)}}
	}
	if _, _, err := p.producer.SendMessage(msg); err != nil {
		return fmt.Errorf("kafka: delete not acknowledged: %w", err)
	}
	return ctx.Err()
}

// Close flushes and closes the producer.
func (p *KafkaPublisher) Close() error { return p.producer.Close() }
