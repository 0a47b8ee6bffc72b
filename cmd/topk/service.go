package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors"
)

// component is one long-running part of a service.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// service is what a pipeline command runs: components, the Goka processors
// and views to show in the monitor (each asked for the one running now:
// supervised processors and the api's view are rebuilt after a restart),
// and the readiness checks of its ops port.
type service struct {
	name    string
	opsPort int
	comps   []component
	procs   []func() *goka.Processor
	views   []func() *goka.View
	checks  []ops.Check
	closers []func()
}

func (s *service) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// run serves the ops port and runs every component until ctx ends or one
// fails; then it cancels the others and waits for them.
func (s *service) run(ctx context.Context, env *Env) error {
	defer s.close()
	log := logWith(env.Log, s.name)
	mounts := map[string]http.Handler{}
	if len(s.procs)+len(s.views) > 0 {
		mounts[ops.GokaPrefix+"/"] = ops.LiveGokaMonitor(s.processors, s.gokaViews)
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.opsPort != 0 { // the api serves its own /metrics and health
		olog := log.With("listener", "ops")
		srv := &ops.Server{
			Addr:    net.JoinHostPort(env.Config.Ops.Host, strconv.Itoa(s.opsPort)),
			Checker: &ops.Checker{Checks: s.checks, Log: olog},
			Mounts:  mounts,
			Pprof:   env.Config.Ops.Pprof,
			Log:     olog,
		}
		if err := srv.Listen(); err != nil {
			return err
		}
		g.Go(func() error { return srv.Run(gctx) })
	}
	if env.Config.LogFile != "" {
		log.Log(ctx, ops.LevelStatus, "the whole log goes to the file; here: status lines, warnings and errors", "file", env.Config.LogFile)
	}
	if env.Config.StatusInterval > 0 {
		r := &ops.StatusReporter{Interval: env.Config.StatusInterval, Parts: s.parts(), Log: log}
		g.Go(func() error { return r.Run(gctx) })
	}
	for _, c := range s.comps {
		g.Go(func() error {
			log.Info("starting", "part", c.name)
			if err := c.run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			log.Info("stopped", "part", c.name)
			return nil
		})
	}
	return g.Wait()
}

// parts are the parts the service runs, for its status line
// (ops.StatusReporter): its components' names, those without figures of
// their own (api-view, api-lag, scheduler) left out.
func (s *service) parts() []string {
	var out []string
	for _, c := range s.comps {
		switch c.name {
		case "ingest", "aggregator", "raw-writer", "flusher", "fanout", "sitewide", "sitewide-flusher", "api", "crawler":
			out = append(out, c.name)
		}
	}
	return out
}

// processors are the Goka processors running now (nil before a first
// build: the monitor leaves those out).
func (s *service) processors() []*goka.Processor { return current(s.procs) }

// gokaViews are the Goka views running now.
func (s *service) gokaViews() []*goka.View { return current(s.views) }

func current[T any](fs []func() *T) []*T {
	out := make([]*T, len(fs))
	for i, f := range fs {
		out[i] = f()
	}
	return out
}

// settings are the processor settings from the configuration.
func settings(env *Env, name string) processors.Settings {
	c := env.Config
	return processors.Settings{
		Brokers:           c.Kafka.Brokers,
		Replication:       c.Kafka.ReplicationFactor,
		MinInsync:         c.Kafka.MinInsyncReplicas,
		StateDir:          c.Pipeline.StateDir,
		MaxMessageBytes:   c.Kafka.MaxMessageBytes,
		StorePendingBytes: c.Pipeline.StorePendingBytes,
		Log:               logWith(env.Log, name),
	}
}
