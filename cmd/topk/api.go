package main

import (
	"context"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/charts"
	chartsw "github.com/topk-charts/topk/charts/sitewide"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
	"github.com/topk-charts/topk/processors/stored"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/redis"
	"github.com/topk-charts/topk/views"
	viewsw "github.com/topk-charts/topk/views/sitewide"
)

func runAPI(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "api").Parse(args); err != nil {
		return err
	}
	s := &service{name: "api", opsPort: 0}
	if err := addAPI(ctx, env, s); err != nil {
		s.close()
		return err
	}
	return s.run(ctx, env)
}

// addAPI adds the HTTP api (its own listener, TOPK_API_ADDR): the charts
// on the view and Cassandra, the admin endpoints, the Asynq dashboard and
// the Goka monitor.
func addAPI(ctx context.Context, env *Env, s *service) error {
	p, err := newFullAPI(ctx, env, nil)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, p.close)
	if err := p.srv.Listen(); err != nil {
		return err
	}
	s.views = append(s.views, p.view.Goka, p.siteView.Goka)
	s.comps = append(s.comps, component{"api-view", p.view.Run}, component{"api-sitewide-view", p.siteView.Run}, component{"api-sitewide-lag", p.siteLag.Run},
		component{"api-lag", p.lag.Run}, component{"api-stored", p.gens.Run}, component{"api", p.srv.Run})
	return nil
}

// newFullAPI is every route `topk api` serves: newAPI's, plus the admin
// endpoints and asynqmon (mountAdmin) and the ListenBrainz routes
// (mountListenBrainz) and the history uploads (mountImports). Tests of the whole HTTP surface
// build it here, so they cannot drift from what runs.
func newFullAPI(ctx context.Context, env *Env, reg *prometheus.Registry) (*apiParts, error) {
	p, err := newAPI(env, reg)
	if err != nil {
		return nil, err
	}
	// One control plane (PostgreSQL, Redis) serves both.
	cp, err := openControlPlane(ctx, env, nil, logWith(env.Log, "admin"))
	if err != nil {
		p.close()
		return nil, err
	}
	closeAdmin, err := mountAdminOn(cp, env, p.srv)
	if err != nil {
		cp.Close()
		p.close()
		return nil, err
	}
	pub := mountListenBrainz(env, p, cp)
	closeImports, err := mountImports(ctx, env, p, cp, pub)
	if err != nil {
		pub.Close()
		closeAdmin()
		cp.Close()
		p.close()
		return nil, err
	}
	closeCharts := p.close
	p.close = func() { closeImports(); pub.Close(); closeAdmin(); cp.Close(); closeCharts() }
	return p, nil
}

// apiParts is the api (with or without the admin endpoints): the server,
// the view it reads and the Cassandra lag monitor (to run) and what to
// close.
type apiParts struct {
	srv  *api.Server
	view *views.View
	// siteView is the sitewide charts' view (recent days of everyone's
	// counts).
	siteView *viewsw.View
	siteLag  *charts.LagMonitor
	lag      *charts.LagMonitor
	gens     *stored.Generations
	// charts is the query service (tests settle its background fills).
	charts *charts.Service
	close  func()
}

// newAPI wires the charts: the Goka view of recent days (it needs Kafka
// only once it runs, and waits Kafka out up to the outage limit, so the
// api starts and serves /healthz while Kafka is down), Cassandra through a
// lazily connecting reader (the api starts and serves the view while
// Cassandra is down), Redis as the answer cache in its own database
// (TOPK_CACHE_REDIS_DB) with short timeouts (Redis down is served
// uncached), the limits of the public routes (rate limit per client —
// loopback clients exempt in dev mode —, Cassandra reads at once, server
// timeouts), the readiness checks (only the view's
// recovery is required) and the Goka monitor behind basic auth. reg takes
// the metrics (nil: Prometheus's default registry; tests run several).
func newAPI(env *Env, reg *prometheus.Registry) (*apiParts, error) {
	c := env.Config
	log := logWith(env.Log, "api")
	vc := views.Config{Namespace: c.Namespace, Days: c.Charts.ViewDays, Log: log, OutageLimit: outageLimit(env), MaxBytes: int64(c.Charts.ViewMaxMB) << 20}
	ac := api.Config{Addr: c.API.Addr, AccessLog: c.Charts.AccessLog,
		RateLimit:      api.RateLimit{PerSecond: float64(c.API.RateLimit), Burst: c.API.RateBurst, ReadBurst: c.API.RateReadBurst, InFlight: c.API.RateInFlight, ExemptLoopback: c.Crawler.DevMode},
		TrustedProxies: c.API.TrustedProxies,
		Timeouts:       api.Timeouts{ReadHeader: c.API.ReadHeaderTimeout, Read: c.API.ReadTimeout, Write: c.API.WriteTimeout, Idle: c.API.IdleTimeout},
	}
	if reg != nil {
		vc.Registerer, ac.Registerer, ac.Gatherer = reg, reg, reg
	}
	view, err := views.New(settings(env, "api"), vc)
	if err != nil {
		return nil, err
	}
	siteView, err := viewsw.New(settings(env, "api"), viewsw.Config{Namespace: c.Namespace, Days: c.Charts.ViewDays, Log: log,
		OutageLimit: outageLimit(env), MaxBytes: int64(c.Charts.ViewMaxMB) << 20, Registerer: vc.Registerer})
	if err != nil {
		return nil, err
	}
	reader := cassandra.NewReader(wiring.Cassandra(c.Cassandra))
	ro := redis.Options(wiring.RedisCache(c.Redis)) // the answer cache's own database
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	ro.MaxRetries = -1
	rc := goredis.NewClient(ro)
	// How far the flusher (Cassandra) is behind the changelog the view follows.
	meter := kafka.NewTimeLagMeter(c.Kafka.Brokers, nil, flusher.Group(c.Namespace), string(aggregator.Table(c.Namespace)))
	// And the sitewide flusher behind the sitewide group's table.
	siteMeter := kafka.NewTimeLagMeter(c.Kafka.Brokers, nil, sitewideflusher.Group(c.Namespace), string(sitewide.Table(c.Namespace)))
	closeAll := func() { reader.Close(); _ = rc.Close(); _ = meter.Close(); _ = siteMeter.Close() }
	// Notices that Cassandra holds a change to a user's older days: part
	// of that user's cache keys, kept as long as any answer is cached.
	gens := stored.NewGenerations(stored.GenerationsConfig{
		Brokers: c.Kafka.Brokers, Topic: string(listen.NewTopics(c.Namespace).Stored), Log: log,
		Horizon: c.Charts.CacheTTL + time.Minute,
	})

	checks := []ops.Check{
		{Name: "view", Required: true, Fn: view.Check},
		{Name: "sitewide-view", Fn: siteView.Check},
		{Name: "cassandra", Fn: reader.Ping},
		{Name: "stored", Fn: gens.Check},
		{Name: "redis", Fn: func(ctx context.Context) error { return rc.Ping(ctx).Err() }},
	}
	for _, name := range []string{"kafka", "postgres"} {
		ping := pingers[name]
		checks = append(checks, ops.Check{Name: name, Fn: func(ctx context.Context) error {
			_, err := ping(ctx, c)
			return err
		}})
	}
	localBytes := int64(c.Charts.CacheLocalMB) << 20
	if localBytes == 0 {
		localBytes = -1 // TOPK_CACHE_LOCAL_MB=0: no local tier
	}
	ac.Checker = &ops.Checker{Checks: checks, Log: log}
	lag, err := charts.NewLagMonitor(charts.LagConfig{Measure: meter.Measure, Registerer: ac.Registerer}, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	svc, err := charts.New(charts.Config{
		View:               view,
		Store:              reader,
		Cache:              charts.RedisCache{Client: rc},
		CacheTTL:           c.Charts.CacheTTL,
		NamesTTL:           c.Charts.NamesTTL,
		LocalCacheBytes:    localBytes,
		CachePrefix:        c.Cassandra.Keyspace + ":",
		CacheMaxEntryBytes: int64(c.Charts.CacheMaxEntryBytes),
		MaxCassandra:       c.Charts.CassandraConcurrency,
		MaxReads:           c.Charts.CassandraReads,
		Lag:                lag,
		Generations:        gens,
		Registerer:         ac.Registerer,
	}, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	siteLag, err := charts.NewLagMonitor(charts.LagConfig{Measure: siteMeter.Measure, Registerer: ac.Registerer,
		Metric: "topk_api_sitewide_cassandra_lag", What: "the sitewide flusher"}, log)
	if err != nil {
		svc.Close()
		closeAll()
		return nil, err
	}
	// The sitewide charts' Cassandra reads count against the per-user
	// charts' bounds (svc: TOPK_API_CASSANDRA_CONCURRENCY, _READS).
	site, err := chartsw.New(chartsw.Config{View: siteView, Store: reader, Bounds: svc, CacheTTL: c.Charts.CacheTTL,
		Lag: siteLag, Log: log, Registerer: ac.Registerer})
	if err != nil {
		svc.Close()
		closeAll()
		return nil, err
	}
	ac.Sitewide = site
	srv, err := api.New(ac, log)
	if err != nil {
		svc.Close()
		closeAll()
		return nil, err
	}
	srv.MountCharts(svc)
	srv.MountMonitor(ops.LiveGokaMonitor(nil, func() []*goka.View { return []*goka.View{view.Goka(), siteView.Goka()} }), c.API.AdminToken)
	// The cache's background refreshes read through reader and rc: stop
	// them first.
	return &apiParts{srv: srv, view: view, siteView: siteView, siteLag: siteLag, lag: lag, gens: gens, charts: svc, close: func() { svc.Close(); closeAll() }}, nil
}
