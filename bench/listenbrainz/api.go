// The api under measurement: the charts and the ListenBrainz routes wired
// as cmd/topk's newFullAPI wires them (api.go, listenbrainz.go), served on
// a loopback port of its own.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
	"github.com/topk-charts/topk/views"
)

// servedAPI is the running api.
type servedAPI struct {
	url  string
	view *views.View
	wg   sync.WaitGroup
	errs chan error
	stop func() // closes what startAPI opened, once the components returned
}

// startAPI builds the api from c as `topk api` does and runs it (server,
// view, lag monitor) until ctx ends; pool holds the users' tokens. The
// limits are the configuration's, with loopback clients exempt (the
// benchmark's clients are all on loopback; TOPK_DEV_MODE=1 does the same).
func startAPI(ctx context.Context, c config.Config, pool *pgxpool.Pool, log *slog.Logger) (*servedAPI, error) {
	reg := prometheus.NewRegistry()
	set := processors.Settings{
		Brokers: c.Kafka.Brokers, Replication: c.Kafka.ReplicationFactor, MinInsync: c.Kafka.MinInsyncReplicas,
		StateDir: c.Pipeline.StateDir, MaxMessageBytes: c.Kafka.MaxMessageBytes, StorePendingBytes: c.Pipeline.StorePendingBytes, Log: log,
	}
	view, err := views.New(set, views.Config{Namespace: c.Namespace, Days: c.Charts.ViewDays, Log: log,
		MaxBytes: int64(c.Charts.ViewMaxMB) << 20, Registerer: reg})
	if err != nil {
		return nil, err
	}
	ac := api.Config{Addr: "127.0.0.1:0", AccessLog: false, Registerer: reg, Gatherer: reg,
		RateLimit: api.RateLimit{PerSecond: float64(c.API.RateLimit), Burst: c.API.RateBurst, ReadBurst: c.API.RateReadBurst,
			InFlight: c.API.RateInFlight, ExemptLoopback: true},
		Timeouts: api.Timeouts{ReadHeader: c.API.ReadHeaderTimeout, Read: c.API.ReadTimeout, Write: c.API.WriteTimeout, Idle: c.API.IdleTimeout},
	}
	srv, err := api.New(ac, log)
	if err != nil {
		return nil, err
	}

	reader := cassandra.NewReader(wiring.Cassandra(c.Cassandra))
	ro := redis.Options(wiring.RedisCache(c.Redis)) // the answer cache's own database
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	ro.MaxRetries = -1
	rc := goredis.NewClient(ro)
	meter := kafka.NewTimeLagMeter(c.Kafka.Brokers, nil, flusher.Group(c.Namespace), string(aggregator.Table(c.Namespace)))
	rdb := redis.New(wiring.Redis(c.Redis))
	closeStores := func() { reader.Close(); _ = rc.Close(); _ = meter.Close(); _ = rdb.Close() }
	lag, err := charts.NewLagMonitor(charts.LagConfig{Measure: meter.Measure, Registerer: reg}, log)
	if err != nil {
		closeStores()
		return nil, err
	}
	localBytes := int64(c.Charts.CacheLocalMB) << 20
	if localBytes == 0 {
		localBytes = -1 // TOPK_CACHE_LOCAL_MB=0: no local tier
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
		Registerer:         reg,
	}, log)
	if err != nil {
		closeStores()
		return nil, err
	}
	srv.MountCharts(svc)

	// The ListenBrainz routes as mountListenBrainz mounts them, with the
	// producer connected now rather than on the first submission.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	pub, err := crawler.NewKafkaPublisher(cctx, c.Kafka.Brokers, string(listen.NewTopics(c.Namespace).Raw))
	cancel()
	if err != nil {
		svc.Close()
		closeStores()
		return nil, err
	}
	srv.MountListenBrainz(api.ListenBrainzConfig{
		Charts:     svc,
		Tokens:     postgres.NewStore(pool, nil),
		Publisher:  pub,
		NowPlaying: redis.NowPlaying{Client: rdb, Prefix: c.Namespace + ".topk:"},
		Limits:     listen.Limits{MaxNameChars: c.Pipeline.MaxNameChars},
	})
	if err := srv.Listen(); err != nil {
		_ = pub.Close()
		svc.Close()
		closeStores()
		return nil, err
	}

	a := &servedAPI{url: "http://" + srv.Addr(), view: view, errs: make(chan error, 3)}
	a.stop = func() { _ = pub.Close(); svc.Close(); closeStores() }
	for name, run := range map[string]func(context.Context) error{"api": srv.Run, "view": view.Run, "lag monitor": lag.Run} {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				a.errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	return a, nil
}

// waitRecovered waits until the view has caught up with the aggregator's
// table (empty: at once) or max has passed.
func (a *servedAPI) waitRecovered(ctx context.Context, max time.Duration) error {
	deadline := time.Now().Add(max)
	for !a.view.Recovered() {
		select {
		case err := <-a.errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the api's view did not recover in %v", max)
		}
	}
	return nil
}

// failed is the error of a component that stopped early, if any.
func (a *servedAPI) failed() error {
	select {
	case err := <-a.errs:
		return err
	default:
		return nil
	}
}

// wait waits for the components to return (their context ended) and
// closes the stores.
func (a *servedAPI) wait() {
	a.wg.Wait()
	a.stop()
}
