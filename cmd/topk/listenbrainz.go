package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/redis"
)

// mountListenBrainz adds the ListenBrainz routes (/1/…) to the api:
// users' tokens from cp's PostgreSQL, submissions and deletes to
// user.listen.raw through a producer that connects on the first submission (the api
// starts while Kafka is down; a submission then is a 503 and the next one
// tries again), playing now in cp's Redis (the main database). The
// returned producer is theirs, for the uploads' imports too (mountImports).
func mountListenBrainz(env *Env, p *apiParts, cp *controlPlane) *lazyPublisher {
	c := env.Config
	pub := &lazyPublisher{brokers: c.Kafka.Brokers, topic: string(listen.NewTopics(c.Namespace).Raw)}
	p.srv.MountListenBrainz(api.ListenBrainzConfig{
		Charts:     p.charts,
		Tokens:     cp.store,
		Publisher:  pub,
		NowPlaying: redis.NowPlaying{Client: cp.rdb, Prefix: redisPrefix(c.Namespace)},
		Limits:     listen.Limits{MaxNameChars: c.Pipeline.MaxNameChars},
	})
	return pub
}

// redisPrefix starts the api's own Redis keys: "topk:", or
// "<namespace>.topk:" in a namespace (tests).
func redisPrefix(ns string) string {
	if ns == "" {
		return "topk:"
	}
	return ns + ".topk:"
}

// lazyPublisher is a crawler.KafkaPublisher made on the first Publish
// (and again after a failed connect), so that building the api needs no
// Kafka.
type lazyPublisher struct {
	brokers []string
	topic   string

	mu  sync.Mutex
	pub *crawler.KafkaPublisher
}

// connectTimeout bounds how long a submission waits for the producer's
// first connection.
const connectTimeout = 10 * time.Second

// producer is the producer, connected now if it is not yet.
func (l *lazyPublisher) producer(ctx context.Context) (*crawler.KafkaPublisher, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pub == nil {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		pub, err := crawler.NewKafkaPublisher(cctx, l.brokers, l.topic)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connect the producer: %w", err)
		}
		l.pub = pub
	}
	return l.pub, nil
}

func (l *lazyPublisher) Publish(ctx context.Context, batch []listen.Listen) error {
	pub, err := l.producer(ctx)
	if err != nil {
		return err
	}
	return pub.Publish(ctx, batch)
}

func (l *lazyPublisher) Send(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	pub, err := l.producer(ctx)
	if err != nil {
		return err
	}
	return pub.Send(ctx, msgs)
}

func (l *lazyPublisher) PublishDelete(ctx context.Context, d listen.Delete, source string) error {
	pub, err := l.producer(ctx)
	if err != nil {
		return err
	}
	return pub.PublishDelete(ctx, d, source)
}

func (l *lazyPublisher) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pub != nil {
		_ = l.pub.Close()
		l.pub = nil
	}
}
