package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
	"github.com/topk-charts/topk/crawler/provider/simulated"
	"github.com/topk-charts/topk/crawler/provider/spotify"
	"github.com/topk-charts/topk/crawler/tokens"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
)

// controlPlane is what `topk crawler`, `topk scheduler`, `topk enqueue`
// and the api's admin endpoints share: PostgreSQL with the token cipher,
// Asynq on Redis, the providers.
type controlPlane struct {
	cfg     crawler.Config
	pool    *pgxpool.Pool
	store   *postgres.Store
	redis   asynq.RedisClientOpt
	rdb     *goredis.Client
	client  *asynq.Client
	insp    *asynq.Inspector
	metrics *crawler.Metrics
}

func (cp *controlPlane) Close() {
	cp.insp.Close()
	cp.client.Close()
	cp.rdb.Close()
	cp.pool.Close()
}

// providers builds the configured providers and their intervals.
func providers(c config.Crawler) (map[string]crawler.ProviderEntry, error) {
	lf, err := lastfm.New(lastfm.Config{BaseURL: c.LastfmURL, APIKey: c.LastfmAPIKey, RequestsPerSecond: float64(c.LastfmRate)})
	if err != nil {
		return nil, err
	}
	sp, err := spotify.New(spotify.Config{APIURL: c.SpotifyAPIURL, TokenURL: c.SpotifyTokenURL,
		ClientID: c.SpotifyClientID, ClientSecret: c.SpotifyClientSecret})
	if err != nil {
		return nil, err
	}
	pop := simulated.New(simulated.Config{Seed: uint64(c.SimulatedSeed), History: c.SimulatedHistory})
	return map[string]crawler.ProviderEntry{
		"lastfm":    {Provider: lf, Interval: c.LastfmInterval},
		"spotify":   {Provider: sp, Interval: c.SpotifyInterval},
		"simulated": {Provider: &simulated.Provider{Population: pop}, Interval: c.SimulatedInterval},
	}, nil
}

// openControlPlane builds the clients of PostgreSQL and Redis without
// reaching either: they connect on first use, so the api (admin
// endpoints), the crawler and the scheduler start while a store is down
// (the crawler and the scheduler then wait for it, up to the outage
// limit). Without a token key (TOPK_TOKEN_KEY) it refuses, unless
// TOPK_DEV_MODE=1 makes one. Metrics go to reg (nil: not registered); the
// ops listener serves the default registry.
func openControlPlane(ctx context.Context, env *Env, reg prometheus.Registerer, log *slog.Logger) (*controlPlane, error) {
	c := env.Config
	key, err := tokens.LoadKey(c.Crawler.TokenKey, c.Crawler.DevMode, filepath.Join(c.RuntimeDir, "dev-token.key"), log)
	if err != nil {
		return nil, err
	}
	previous, err := tokens.ParseKeys(c.Crawler.TokenKeyPrevious)
	if err != nil {
		return nil, err
	}
	cipher, err := tokens.New(key, previous...)
	if err != nil {
		return nil, err
	}
	provs, err := providers(c.Crawler)
	if err != nil {
		return nil, err
	}
	pool, err := postgres.Open(ctx, wiring.Postgres(c.Postgres))
	if err != nil {
		return nil, err
	}
	ro := redis.Options(wiring.Redis(c.Redis))
	cp := &controlPlane{
		cfg: crawler.Config{
			Queue: crawler.Queue(c.Namespace), MaxRetry: c.Crawler.MaxRetry,
			RetryBase: c.Crawler.RetryBase, Providers: provs,
			OutageLimit: outageLimit(env),
		},
		pool:  pool,
		store: postgres.NewStore(pool, cipher),
		redis: asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB},
		rdb:   redis.New(wiring.Redis(c.Redis)),
	}
	cp.client = asynq.NewClient(cp.redis)
	cp.insp = asynq.NewInspector(cp.redis)
	if cp.metrics, err = crawler.NewMetrics(reg); err != nil {
		cp.Close()
		return nil, err
	}
	return cp, nil
}

func (cp *controlPlane) control(log *slog.Logger) (*crawler.Control, error) {
	return crawler.NewControl(cp.cfg, cp.store, cp.rdb, cp.client, cp.insp, cp.metrics, log)
}

// checks are the ops readiness checks of the control plane.
func checks(c config.Config, names ...string) *ops.Checker {
	var cs []ops.Check
	for _, name := range names {
		p := pingers[name]
		cs = append(cs, ops.Check{Name: name, Required: true, Fn: func(ctx context.Context) error {
			_, err := p(ctx, c)
			return err
		}})
	}
	return &ops.Checker{Checks: cs}
}

// runCrawler runs crawl tasks: `topk crawler`.
func runCrawler(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "crawler")
	concurrency := fs.Int("concurrency", env.Config.Crawler.Concurrency, "crawls at once (TOPK_CRAWLER_CONCURRENCY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &service{name: "crawler", opsPort: env.Config.Ops.Crawler}
	cp, err := openControlPlane(ctx, env, prometheus.DefaultRegisterer, logWith(env.Log, "crawler"))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, cp.Close)
	if err := addCrawler(env, s, cp, *concurrency); err != nil {
		s.close()
		return err
	}
	s.checks = append(s.checks, checks(env.Config, "kafka", "redis", "postgres").Checks...)
	return s.run(ctx, env)
}

// addCrawler adds an Asynq crawl worker publishing to user.listen.raw.
func addCrawler(env *Env, s *service, cp *controlPlane, concurrency int) error {
	log := logWith(env.Log, "crawler")
	if env.Config.Crawler.LastfmAPIKey == "" {
		log.Warn("TOPK_LASTFM_API_KEY is not set: crawls of Last.fm users will fail")
	}
	if _, err := crawler.NewWorker(cp.cfg, cp.store, nil, cp.client, cp.metrics, log); err != nil {
		return err // the configuration, checked before anything runs
	}
	s.comps = append(s.comps, component{"crawler", func(ctx context.Context) error {
		return runCrawlWorker(ctx, env, cp, concurrency, log)
	}})
	return nil
}

// runCrawlWorker waits for PostgreSQL and Kafka (up to the outage limit;
// the readiness checks fail meanwhile) before it takes any task, then runs
// the Asynq server, which rides out Redis by itself, and watches
// PostgreSQL and Kafka. Any of the three down for longer than the outage
// limit ends it with an error naming the server.
func runCrawlWorker(ctx context.Context, env *Env, cp *controlPlane, concurrency int, log *slog.Logger) error {
	pg, kt := tracker(env, "postgres", log), tracker(env, "kafka", log)
	if err := waitFor(ctx, pg, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cp.pool.Ping(cctx)
	}); err != nil {
		return ended(ctx, err)
	}
	var pub *crawler.KafkaPublisher
	if err := waitFor(ctx, kt, func(ctx context.Context) error {
		var err error
		pub, err = crawler.NewKafkaPublisher(ctx, env.Config.Kafka.Brokers, string(listen.NewTopics(env.Config.Namespace).Raw))
		return err
	}); err != nil {
		return ended(ctx, err)
	}
	defer pub.Close()
	w, err := crawler.NewWorker(cp.cfg, cp.store, pub, cp.client, cp.metrics, log)
	if err != nil {
		return err
	}
	srv := crawler.NewServer(cp.redis, crawler.ServerConfig{Concurrency: concurrency, OutageLimit: outageLimit(env)}, w, log)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		return watchServers(gctx, env, log, map[string]*outage.Tracker{"postgres": pg, "kafka": kt}, "postgres", "kafka")
	})
	return g.Wait()
}

// runScheduler keeps Redis in line with PostgreSQL: `topk scheduler`.
func runScheduler(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "scheduler")
	every := fs.Duration("every", env.Config.Crawler.ReconcileEvery, "reconcile interval (TOPK_SCHEDULER_RECONCILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &service{name: "scheduler", opsPort: env.Config.Ops.Scheduler}
	cp, err := openControlPlane(ctx, env, prometheus.DefaultRegisterer, logWith(env.Log, "scheduler"))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, cp.Close)
	if err := addScheduler(env, s, cp, *every); err != nil {
		s.close()
		return err
	}
	s.checks = append(s.checks, checks(env.Config, "redis", "postgres").Checks...)
	return s.run(ctx, env)
}

// addScheduler adds the reconciler that gives every active user its
// pending crawl task. It starts without PostgreSQL or Redis: a failing
// round is retried with backoff up to the outage limit (the readiness
// checks fail meanwhile).
func addScheduler(env *Env, s *service, cp *controlPlane, every time.Duration) error {
	if every <= 0 {
		return errors.New("--every must be positive")
	}
	log := logWith(env.Log, "scheduler")
	ctl, err := cp.control(log)
	if err != nil {
		return err
	}
	rec := crawler.NewReconciler(ctl, every)
	s.comps = append(s.comps, component{"scheduler", func(ctx context.Context) error {
		log.Info("scheduler running", "queue", cp.cfg.Queue, "reconcile_every", every)
		return rec.Run(ctx)
	}})
	return nil
}

// addControlPlane adds the scheduler and a crawler sharing one control
// plane: what `topk all` runs.
func addControlPlane(ctx context.Context, env *Env, s *service) error {
	cp, err := openControlPlane(ctx, env, prometheus.DefaultRegisterer, logWith(env.Log, "crawler"))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, cp.Close)
	if err := addScheduler(env, s, cp, env.Config.Crawler.ReconcileEvery); err != nil {
		return err
	}
	return addCrawler(env, s, cp, env.Config.Crawler.Concurrency)
}

// runEnqueue crawls one user now: `topk enqueue --user alice`
// (with --provider, a user that does not exist yet is registered first).
func runEnqueue(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "enqueue")
	user := fs.String("user", "", "user id (required)")
	prov := fs.String("provider", "", "register the user with this provider if missing (simulated, lastfm, spotify)")
	external := fs.String("external-id", "", "the user at the provider (default: the user id)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		fs.Usage()
		return errors.New("--user is required")
	}
	log := logWith(env.Log, "enqueue")
	cp, err := openControlPlane(ctx, env, nil, log)
	if err != nil {
		return err
	}
	defer cp.Close()
	ctl, err := cp.control(log)
	if err != nil {
		return err
	}
	st, err := ctl.CrawlNow(ctx, *user)
	if errors.Is(err, crawler.ErrNotFound) && *prov != "" {
		st, err = ctl.Register(ctx, crawler.Registration{UserID: *user, Provider: *prov, ExternalID: *external})
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", *user, err)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// mountAdminOn adds the admin endpoints and asynqmon on cp; the returned
// func stops asynqmon (cp stays open).
func mountAdminOn(cp *controlPlane, env *Env, srv *api.Server) (func(), error) {
	log := logWith(env.Log, "admin")
	ctl, err := cp.control(log)
	if err != nil {
		return nil, err
	}
	mon := asynqmon.New(asynqmon.Options{RootPath: "/asynq", RedisConnOpt: cp.redis})
	srv.MountAdmin(api.AdminConfig{Token: env.Config.API.AdminToken, Control: ctl, Tokens: cp.store, Monitor: mon})
	if env.Config.API.AdminToken == "" {
		log.Warn("TOPK_ADMIN_TOKEN is not set: the admin endpoints, /goka/ and /asynq/ refuse every request; to use them, set a random token: export TOPK_ADMIN_TOKEN=$(" + config.GenerateAdminToken + ")")
	}
	return func() { _ = mon.Close() }, nil
}
