package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/processors/sink"
)

// watchEvery is how often a running component pings the servers it needs
// but would not otherwise notice losing.
const watchEvery = 5 * time.Second

// setupBackoff spaces the attempts of a component's set-up (a Cassandra
// session, a Kafka producer, the topics) while a server is down.
var setupBackoff = sink.Backoff{Min: 500 * time.Millisecond, Max: 15 * time.Second}

// outageLimit is TOPK_OUTAGE_LIMIT_MS: how long a server may be down
// before the service exits non-zero.
func outageLimit(env *Env) time.Duration {
	return env.Config.Pipeline.OutageLimit
}

// tracker follows one server ("kafka", "cassandra", "postgres", "redis")
// for a component that logs to log.
func tracker(env *Env, name string, log *slog.Logger) *outage.Tracker {
	return &outage.Tracker{Name: name, Limit: outageLimit(env), Log: log}
}

// waitFor runs a set-up step until it works, ctx ends (ctx.Err()) or the
// server it needs has been down for longer than the outage limit (an
// *outage.LimitError naming it).
func waitFor(ctx context.Context, tr *outage.Tracker, try func(ctx context.Context) error) error {
	return outage.Retry(ctx, tr, setupBackoff, try)
}

// watchServers pings each named server (pingers) every watchEvery until
// ctx ends (nil) or one has been down for longer than the outage limit
// (an *outage.LimitError naming it). trackers may hold the trackers some
// servers already have (shared with a set-up step); the others get one.
func watchServers(ctx context.Context, env *Env, log *slog.Logger, trackers map[string]*outage.Tracker, names ...string) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range names {
		tr := trackers[name]
		if tr == nil {
			tr = tracker(env, name, log)
		}
		ping := pingers[name]
		g.Go(func() error {
			return outage.Watch(gctx, tr, watchEvery, func(ctx context.Context) error {
				_, err := ping(ctx, env.Config)
				return err
			})
		})
	}
	return g.Wait()
}

// ended is nil when err only says that ctx ended (a component stopping on
// shutdown), else err.
func ended(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
