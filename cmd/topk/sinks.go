package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/stored"
	"github.com/topk-charts/topk/store/cassandra"
)

// session connects to Cassandra, retrying with backoff until it answers,
// ctx ends, or Cassandra has been down for longer than the outage limit
// (an *outage.LimitError naming it): a writer started while Cassandra is
// down waits for it instead of failing (Cassandra down ≠ product down).
func session(ctx context.Context, env *Env, tr *outage.Tracker) (*gocql.Session, error) {
	var s *gocql.Session
	err := waitFor(ctx, tr, func(ctx context.Context) error {
		var err error
		s, err = cassandra.Connect(ctx, wiring.Cassandra(env.Config.Cassandra))
		return err
	})
	return s, err
}

// cassandraSink is what the raw writer and the flusher have in common.
type cassandraSink interface {
	Run(ctx context.Context) error
	Check(ctx context.Context) error
}

// addCassandraSink adds a sink writing to Cassandra: its component first
// waits for a Cassandra session (up to the outage limit), then builds the
// sink on it and runs it (which rides out Kafka and Cassandra outages up
// to the same limit). Its readiness check fails while it waits, while
// Kafka is unreachable and while a partition's writes keep failing.
func addCassandraSink(env *Env, s *service, name string, build func(*gocql.Session) (cassandraSink, error)) {
	log := logWith(env.Log, name)
	cass := tracker(env, "cassandra", log)
	var (
		mu      sync.Mutex
		running cassandraSink
	)
	run := func(ctx context.Context) error {
		sess, err := session(ctx, env, cass)
		if err != nil {
			return ended(ctx, err)
		}
		defer sess.Close()
		sk, err := build(sess)
		if err != nil {
			return err
		}
		mu.Lock()
		running = sk
		mu.Unlock()
		return sk.Run(ctx)
	}
	check := func(ctx context.Context) error {
		mu.Lock()
		sk := running
		mu.Unlock()
		if sk != nil {
			return sk.Check(ctx)
		}
		if err := cass.Err(); err != nil {
			return fmt.Errorf("waiting for a session: %w", err)
		}
		return errors.New("connecting to cassandra")
	}
	s.comps = append(s.comps, component{name, run})
	s.checks = append(s.checks, ops.Check{Name: name, Required: true, Fn: check})
}

func addRawWriter(_ context.Context, env *Env, s *service) error {
	c := env.Config
	addCassandraSink(env, s, "raw-writer", func(sess *gocql.Session) (cassandraSink, error) {
		w, err := rawwriter.New(rawwriter.Config{
			Namespace: c.Namespace, Brokers: c.Kafka.Brokers, Log: logWith(env.Log, "raw-writer"),
			Stored:      storedPublisher(env, "raw-writer"),
			OutageLimit: outageLimit(env), MaxBatchBytes: c.Pipeline.SinkBatchBytes,
		}, sess)
		if err != nil {
			return nil, fmt.Errorf("raw writer: %w", err)
		}
		return w, nil
	})
	return nil
}

func addFlusher(_ context.Context, env *Env, s *service) error {
	c := env.Config
	addCassandraSink(env, s, "flusher", func(sess *gocql.Session) (cassandraSink, error) {
		f, err := flusher.New(flusher.Config{
			Namespace: c.Namespace, Brokers: c.Kafka.Brokers, Log: logWith(env.Log, "flusher"),
			Stored:        storedPublisher(env, "flusher"),
			FlushInterval: c.Pipeline.FlushInterval,
			MaxBatchBytes: c.Pipeline.SinkBatchBytes,
			CacheBytes:    cacheBytes(c.Pipeline.FlushCacheMB),
			OutageLimit:   outageLimit(env),
		}, sess)
		if err != nil {
			return nil, fmt.Errorf("flusher: %w", err)
		}
		return f, nil
	})
	return nil
}

// storedPublisher tells the api's caches about the writer's changes to
// older days (processors/stored); it connects on its first notice.
func storedPublisher(env *Env, writer string) *stored.Publisher {
	return storedPublisherOf(env.Config, logWith(env.Log, writer), writer)
}

// storedPublisherOf is storedPublisher for a configuration and a log.
func storedPublisherOf(c config.Config, log *slog.Logger, writer string) *stored.Publisher {
	p, err := stored.NewPublisher(stored.PublisherConfig{
		Brokers:     c.Kafka.Brokers,
		Topic:       kafka.StoredTopic(string(listen.NewTopics(c.Namespace).Stored), int32(c.Kafka.RawPartitions), c.Kafka.MinInsyncReplicas),
		Replication: int16(c.Kafka.ReplicationFactor),
		Writer:      writer,
		Registerer:  prometheus.DefaultRegisterer,
		Log:         log,
	})
	if err != nil { // only a metrics registration conflict
		log.Error("stored notices off", "err", err)
		return nil
	}
	return p
}

// cacheBytes is a cache bound in bytes for a *_CACHE_MB setting, whose 0
// turns the cache off (the flusher's and the aggregator's 0 mean their
// defaults, a negative bound no cache).
func cacheBytes(mb int) int {
	if mb <= 0 {
		return -1
	}
	return mb << 20
}

func runRawWriter(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "raw-writer").Parse(args); err != nil {
		return err
	}
	s := &service{name: "raw-writer", opsPort: env.Config.Ops.RawWriter}
	if err := addRawWriter(ctx, env, s); err != nil {
		return err
	}
	return s.run(ctx, env)
}

func runFlusher(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "flusher").Parse(args); err != nil {
		return err
	}
	s := &service{name: "flusher", opsPort: env.Config.Ops.Flusher}
	if err := addFlusher(ctx, env, s); err != nil {
		return err
	}
	return s.run(ctx, env)
}
