package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/store/cassandra"
)

func init() {
	commands["raw-writer"] = command{"run the raw writer: user.listen.valid → Cassandra raw listens", runRawWriter}
	commands["flusher"] = command{"run the flusher: aggregator changelog → Cassandra day values and rollups", runFlusher}
}

// session connects to Cassandra, retrying with backoff until it answers or
// ctx ends: a writer started while Cassandra is down waits for it instead
// of failing (Cassandra down ≠ product down).
func session(ctx context.Context, env *Env, who string) (*gocql.Session, error) {
	log := logWith(env.Log, who)
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		s, err := cassandra.Connect(env.Config.Cassandra)
		if err == nil {
			return s, nil
		}
		log.Warn("cassandra not reachable, retrying", "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 15*time.Second)
	}
}

func addRawWriter(ctx context.Context, env *Env, s *service) error {
	sess, err := session(ctx, env, "raw-writer")
	if err != nil {
		return err
	}
	s.closers = append(s.closers, sess.Close)
	w, err := rawwriter.New(rawwriter.Config{
		Namespace: env.Config.Namespace, Brokers: env.Config.Kafka.Brokers, Log: logWith(env.Log, "raw-writer"),
	}, sess)
	if err != nil {
		return fmt.Errorf("raw writer: %w", err)
	}
	s.comps = append(s.comps, component{"raw-writer", w.Run})
	s.checks = append(s.checks, ops.Check{Name: "raw-writer", Fn: w.Check})
	return nil
}

func addFlusher(ctx context.Context, env *Env, s *service) error {
	sess, err := session(ctx, env, "flusher")
	if err != nil {
		return err
	}
	s.closers = append(s.closers, sess.Close)
	f, err := flusher.New(flusher.Config{
		Namespace: env.Config.Namespace, Brokers: env.Config.Kafka.Brokers, Log: logWith(env.Log, "flusher"),
		FlushInterval: time.Duration(env.Config.Pipeline.FlushIntervalMS) * time.Millisecond,
	}, sess)
	if err != nil {
		return fmt.Errorf("flusher: %w", err)
	}
	s.comps = append(s.comps, component{"flusher", f.Run})
	s.checks = append(s.checks, ops.Check{Name: "flusher", Fn: f.Check})
	return nil
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
