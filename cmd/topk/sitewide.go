package main

import (
	"context"
	"fmt"

	"github.com/gocql/gocql"
	"github.com/lovoo/goka"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
)

// runSitewide is `topk sitewide`: the sitewide charts' Kafka side in one
// process (ops port TOPK_OPS_PORT_SITEWIDE).
func runSitewide(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "sitewide").Parse(args); err != nil {
		return err
	}
	s := &service{name: "sitewide", opsPort: env.Config.Ops.Sitewide}
	if err := addSitewide(ctx, env, s); err != nil {
		s.close()
		return err
	}
	return s.run(ctx, env)
}

// addSitewide adds the sitewide charts' three parts (issue 15): the
// fan-out (the aggregator's table → sitewide Counts), the sitewide group
// (Counts → exact per item-day-bucket values, and the recent topic of the
// api's sitewide view) and the sitewide flusher (the group's table →
// Cassandra). Each group keeps its local storage in a directory of its
// own under TOPK_STATE_DIR.
func addSitewide(_ context.Context, env *Env, s *service) error {
	c := env.Config
	for _, part := range []struct {
		name  string
		group goka.Group
		input string
		build func(ctx context.Context, set processors.Settings, dir string) (*goka.Processor, error)
	}{
		{"fanout", fanout.Group(c.Namespace), string(fanout.Input(c.Namespace)), func(ctx context.Context, set processors.Settings, dir string) (*goka.Processor, error) {
			cfg := fanout.Config{Namespace: c.Namespace}
			if err := fanout.Setup(ctx, set, cfg); err != nil {
				return nil, err
			}
			return fanout.New(set, cfg, dir)
		}},
		{"sitewide", sitewide.Group(c.Namespace), string(listen.NewTopics(c.Namespace).Counts), func(ctx context.Context, set processors.Settings, dir string) (*goka.Processor, error) {
			cfg, err := sitewide.Setup(ctx, set, sitewide.Config{Namespace: c.Namespace, MaxStateBytes: c.Pipeline.MaxStateBytes, RecentDays: c.Charts.ViewDays})
			if err != nil {
				return nil, err
			}
			return sitewide.New(set, cfg, dir)
		}},
	} {
		dir, release, err := processors.StorageDir(c.Pipeline.StateDir, string(part.group))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, release)
		logWith(env.Log, part.name).Info("local storage", "dir", dir)
		supervised(env, s, part.name, func(ctx context.Context) (*goka.Processor, error) {
			return part.build(ctx, settings(env, part.name), dir)
		})
		if err := addLag(env, s, part.name, string(part.group), part.input); err != nil {
			return err
		}
	}
	addCassandraSink(env, s, "sitewide-flusher", func(sess *gocql.Session) (cassandraSink, error) {
		f, err := sitewideflusher.New(sitewideflusher.Config{
			Namespace: c.Namespace, Brokers: c.Kafka.Brokers, Log: logWith(env.Log, sitewideflusher.Name),
			FlushInterval: c.Pipeline.SitewideFlushInterval,
			RecentDays:    c.Charts.ViewDays,
			MaxBatchBytes: c.Pipeline.SinkBatchBytes,
			OutageLimit:   outageLimit(env),
		}, sess)
		if err != nil {
			return nil, fmt.Errorf("sitewide flusher: %w", err)
		}
		return f, nil
	})
	return nil
}
