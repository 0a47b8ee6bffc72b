package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/sitewide"
)

// supervised runs a Goka processor under processors.Supervisor: rebuilt
// and restarted in-process when it stops on an error (Kafka away), the
// service exiting only past the outage limit.
func supervised(env *Env, s *service, name string, build func(context.Context) (*goka.Processor, error)) {
	sup := &processors.Supervisor{
		Name:  name,
		Build: build,
		Limit: outageLimit(env),
		Log:   logWith(env.Log, name),
		Ping: func(ctx context.Context) error {
			_, err := kafka.Ping(ctx, env.Config.Kafka.Brokers)
			return err
		},
	}
	s.procs = append(s.procs, sup.Processor)
	s.comps = append(s.comps, component{name, sup.Run})
	s.checks = append(s.checks, ops.Check{Name: name, Required: true, Fn: sup.Check})
}

func addIngest(_ context.Context, env *Env, s *service) error {
	c := env.Config
	cfg := ingest.Config{Namespace: c.Namespace, MaxNameChars: c.Pipeline.MaxNameChars}
	supervised(env, s, "ingest", func(context.Context) (*goka.Processor, error) {
		return ingest.New(settings(env, "ingest"), cfg)
	})
	return addLag(env, s, "ingest", string(ingest.Group(c.Namespace)), string(listen.NewTopics(c.Namespace).Raw))
}

func addAggregator(_ context.Context, env *Env, s *service) error {
	c := env.Config
	group := string(aggregator.Group(c.Namespace))
	dir, release, err := processors.StorageDir(c.Pipeline.StateDir, group)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, release)
	logWith(env.Log, "aggregator").Info("local storage", "dir", dir)
	cfg := aggregator.Config{
		Namespace: c.Namespace, MaxPlaysPerDay: c.Pipeline.MaxPlaysPerDay, MaxStateBytes: c.Pipeline.MaxStateBytes,
		RecentDays: c.Charts.ViewDays, CacheBytes: cacheBytes(c.Pipeline.AggregatorCacheMB),
		Log: logWith(env.Log, "aggregator"),
	}
	supervised(env, s, "aggregator", func(ctx context.Context) (*goka.Processor, error) {
		set := settings(env, "aggregator")
		cfg, err := aggregator.Setup(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		return aggregator.New(set, cfg, dir)
	})
	return addLag(env, s, "aggregator", group, string(listen.NewTopics(c.Namespace).Valid))
}

// addLag exports the records of topic that group has not committed
// (topk_consumer_lag{component}, measured when gathered: /metrics and the
// status line); Goka's processors export no lag of their own.
func addLag(env *Env, s *service, component, group, topic string) error {
	lc := kafka.NewLagCollector(env.Config.Kafka.Brokers, component, group, topic)
	if err := metrics.Register(nil, lc); err != nil {
		_ = lc.Close()
		return err
	}
	s.closers = append(s.closers, func() {
		prometheus.Unregister(lc)
		_ = lc.Close()
	})
	return nil
}

func runIngest(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "ingest").Parse(args); err != nil {
		return err
	}
	s := &service{name: "ingest", opsPort: env.Config.Ops.Ingest}
	if err := addIngest(ctx, env, s); err != nil {
		return err
	}
	return s.run(ctx, env)
}

func runAggregator(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "aggregator").Parse(args); err != nil {
		return err
	}
	s := &service{name: "aggregator", opsPort: env.Config.Ops.Aggregator}
	if err := addAggregator(ctx, env, s); err != nil {
		return err
	}
	return s.run(ctx, env)
}

// runAll runs the whole product in one process: the pipeline, the api, the
// scheduler and a crawler, the ops listener on the ingest ops port. It
// creates the topics first, waiting for Kafka (retried with backoff, said
// once in the log) up to the outage limit.
func runAll(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "all").Parse(args); err != nil {
		return err
	}
	var refused error // not an outage: a partition count that differs, …
	err := waitFor(ctx, tracker(env, "kafka", logWith(env.Log, "topics")), func(ctx context.Context) error {
		err := ensureTopics(ctx, env)
		if err != nil && !kafkaUnreachable(err) {
			refused = err
			return nil
		}
		return err
	})
	switch {
	case refused != nil:
		return refused
	case err != nil && ctx.Err() != nil:
		return nil // stopped while waiting
	case err != nil:
		return fmt.Errorf("topics: %w", err)
	}
	s := &service{name: "all", opsPort: env.Config.Ops.Ingest}
	for _, add := range pipelineParts {
		if err := add(ctx, env, s); err != nil {
			s.close()
			return err
		}
	}
	return s.run(ctx, env)
}

// pipelineParts are what `topk all` runs.
var pipelineParts = []func(context.Context, *Env, *service) error{addIngest, addRawWriter, addAggregator, addFlusher, addSitewide, addAPI, addControlPlane}

// ensureTopics creates or reconciles the listen topics (`topk topics`).
func ensureTopics(ctx context.Context, env *Env) error {
	c := env.Config
	admin, err := sarama.NewClusterAdmin(c.Kafka.Brokers, kafka.NewSaramaConfig("topk-topics"))
	if err != nil {
		return fmt.Errorf("kafka %v: %w", c.Kafka.Brokers, errUnreachable{err})
	}
	defer admin.Close()
	t := listen.NewTopics(c.Namespace)
	n := int32(c.Kafka.ValidPartitions)
	// The sitewide charts' topics have the partitions of user.listen.valid
	// too (their groups create them as well, so either may come first).
	set := settings(env, "topics")
	specs := append(kafka.ListenTopics(wiring.Kafka(c.Kafka), t),
		kafka.RecentTopic(string(t.Recent), n, c.Kafka.MinInsyncReplicas, c.Charts.ViewDays).WithMaxMessageBytes(c.Kafka.MaxMessageBytes),
		fanout.CountsSpec(set, c.Namespace)(n), sitewide.RecentSpec(set, c.Namespace, c.Charts.ViewDays)(n))
	return kafka.EnsureTopics(ctx, admin, int16(c.Kafka.ReplicationFactor), specs, logWith(env.Log, "topics"))
}

// errUnreachable marks an error reaching Kafka at all.
type errUnreachable struct{ error }

func (e errUnreachable) Unwrap() error { return e.error }

// kafkaUnreachable tells an outage (no broker answers, a connection
// failed) from an answer that refuses (worth waiting for the one, not the
// other).
func kafkaUnreachable(err error) bool {
	var u errUnreachable
	var ne net.Error
	return errors.As(err, &u) || errors.Is(err, sarama.ErrOutOfBrokers) || errors.As(err, &ne)
}
