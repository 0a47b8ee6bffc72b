// Command crawl is `make bench-crawl`: a simulated population of N users
// (10k by default) served by a local HTTP server in Last.fm's JSON shape is
// crawled by topk's real crawler (Asynq tasks on Redis, the Last.fm client,
// PostgreSQL claims and cursors, the idempotent acks=all producer); then a
// bare sarama producer with the same settings publishes the same listens in
// the same run. It prints users/s and listens/s of both and the ratio: the
// crawler's overhead over Kafka's own speed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
	"github.com/topk-charts/topk/crawler/provider/simulated"
	"github.com/topk-charts/topk/crawler/tokens"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
)

func main() {
	users := flag.Int("users", 10_000, "simulated users to crawl")
	history := flag.Duration("history", 24*time.Hour, "history of each user (the first crawl imports it all)")
	concurrency := flag.Int("concurrency", 32, "crawls at once")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the crawl phase to this file")
	flag.Parse()
	profile = *cpuProfile
	if err := run(*users, *history, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "bench-crawl:", err)
		os.Exit(1)
	}
}

var profile string

func run(users int, history time.Duration, concurrency int) error {
	ctx := context.Background()
	e, err := benchkit.Setup(ctx, "crawl")
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := e.Config
	log := ops.NewLogger(os.Stderr, "warn", "text")

	// A database and an Asynq queue of the run's own.
	cfg.Postgres.Database = "topk_" + cfg.Namespace
	if err := postgres.CreateDatabase(ctx, wiring.Postgres(cfg.Postgres), cfg.Postgres.Database); err != nil {
		return err
	}
	defer postgres.DropDatabase(context.WithoutCancel(ctx), wiring.Postgres(cfg.Postgres), cfg.Postgres.Database) //nolint:errcheck
	pool, err := postgres.Connect(ctx, wiring.Postgres(cfg.Postgres))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, log); err != nil {
		return err
	}
	ro := redis.Options(wiring.Redis(cfg.Redis))
	redisOpt := asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB}
	client, insp, rdb := asynq.NewClient(redisOpt), asynq.NewInspector(redisOpt), redis.New(wiring.Redis(cfg.Redis))
	defer rdb.Close()
	defer client.Close()
	defer insp.Close()
	queue := crawler.Queue(cfg.Namespace)
	defer insp.DeleteQueue(queue, true) //nolint:errcheck

	// The provider: the population behind a local Last.fm-shaped server.
	now := time.Now().UTC()
	pop := simulated.New(simulated.Config{History: history})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: simulated.LastfmHandler(pop, func() time.Time { return now }), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Close()
	lf, err := lastfm.New(lastfm.Config{BaseURL: "http://" + ln.Addr().String() + "/2.0/", APIKey: "bench",
		RequestsPerSecond: -1, Now: func() time.Time { return now },
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}})
	if err != nil {
		return err
	}
	key := make([]byte, tokens.KeySize)
	cipher, _ := tokens.New(key)
	store := postgres.NewStore(pool, cipher)
	ccfg := crawler.Config{Queue: queue, MaxRetry: 3, RetryBase: time.Second,
		Providers: map[string]crawler.ProviderEntry{"lastfm": {Provider: lf, Interval: 24 * time.Hour}}}
	ctl, err := crawler.NewControl(ccfg, store, rdb, client, insp, nil, log)
	if err != nil {
		return err
	}

	// Register the users in bulk, then let the reconciler create their tasks.
	fmt.Fprintf(os.Stderr, "registering %d users in %s …\n", users, cfg.Postgres.Database)
	names := make([]string, users)
	for i := range names {
		names[i] = "user-" + strconv.Itoa(i)
	}
	if err := register(ctx, pool, names, now); err != nil {
		return err
	}
	t0 := time.Now()
	n, err := ctl.Reconcile(ctx)
	if err != nil {
		return err
	}
	scheduleTook := time.Since(t0)
	fmt.Fprintf(os.Stderr, "%d crawl tasks enqueued by the reconciler in %v\n", n, scheduleTook.Round(time.Millisecond))

	// Crawl.
	pub, err := crawler.NewKafkaPublisher(ctx, cfg.Kafka.Brokers, string(e.Topics.Raw))
	if err != nil {
		return err
	}
	w, err := crawler.NewWorker(ccfg, store, pub, client, nil, log)
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- crawler.NewServer(redisOpt, crawler.ServerConfig{Concurrency: concurrency,
			DelayedTaskCheck: 100 * time.Millisecond, TaskCheck: 20 * time.Millisecond}, w, log).Run(wctx)
	}()
	bar := benchkit.Bar(int64(users), "crawling users")
	var ok, failed int
	var listens int64
	for {
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE last_status = 'ok'), count(*) FILTER (WHERE last_status = 'failed'),
			COALESCE(sum(listens_total), 0) FROM schedules`).Scan(&ok, &failed, &listens); err != nil {
			stop()
			return err
		}
		_ = bar.Set(ok + failed)
		if ok+failed >= users {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	crawlTook := time.Since(start)
	if profile != "" {
		pprof.StopCPUProfile()
	}
	_ = bar.Finish()
	stop()
	if err := <-done; err != nil {
		return err
	}
	pub.Close()
	if failed > 0 {
		return fmt.Errorf("%d users failed to crawl", failed)
	}

	// The reference: the same listens, the same producer settings, no crawler.
	fmt.Fprintln(os.Stderr, "rendering the same listens for the bare producer …")
	type rec struct {
		key   string
		value []byte
	}
	var recs []rec
	for _, u := range names {
		for _, p := range pop.Plays(u, time.Unix(1, 0), now, now) {
			v, err := json.Marshal(toListen(u, p))
			if err != nil {
				return err
			}
			recs = append(recs, rec{u, v})
		}
	}
	if int64(len(recs)) != listens {
		return fmt.Errorf("the crawler published %d listens, the population has %d", listens, len(recs))
	}
	bareTopic := string(listen.NewTopics(cfg.Namespace + "_bare").Raw)
	if err := kafka.EnsureTopics(ctx, e.Admin, int16(cfg.Kafka.ReplicationFactor),
		kafka.ListenTopics(wiring.Kafka(cfg.Kafka), listen.NewTopics(cfg.Namespace+"_bare"))[:1], log); err != nil {
		return err
	}
	defer kafka.DeleteTopics(e.Admin, bareTopic) //nolint:errcheck
	bareTook, err := bare(cfg.Kafka.Brokers, bareTopic, len(recs), func(i int) (string, []byte) { return recs[i].key, recs[i].value })
	if err != nil {
		return err
	}

	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
	rate := func(n int64, d time.Duration) string { return fmt.Sprintf("%.0f", float64(n)/d.Seconds()) }
	fmt.Printf("\nbench-crawl: %d simulated users, %s of history each, %d listens, concurrency %d, GOMAXPROCS %d\n\n",
		users, history, listens, concurrency, goMaxProcs())
	benchkit.Table(os.Stdout, []string{"", "seconds", "users/s", "listens/s"}, [][]string{
		{"topk crawler (Asynq → Last.fm client → local server → Kafka, cursor in PostgreSQL)", secs(crawlTook), rate(int64(users), crawlTook), rate(listens, crawlTook)},
		{"bare sarama producer (same listens, same idempotent acks=all settings)", secs(bareTook), "", rate(listens, bareTook)},
	})
	fmt.Printf("\ncrawler listens/s ÷ bare producer listens/s = %.2f\n", bareTook.Seconds()/crawlTook.Seconds())
	fmt.Printf("reconciler: %d tasks created in %s (%s tasks/s)\n", n, secs(scheduleTook), rate(int64(n), scheduleTook))
	return nil
}

// register inserts users, Last.fm accounts and schedules due now with COPY.
func register(ctx context.Context, pool interface {
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
}, names []string, now time.Time) error {
	rows := func(f func(string) []any) pgx.CopyFromSource {
		return pgx.CopyFromSlice(len(names), func(i int) ([]any, error) { return f(names[i]), nil })
	}
	slot := now.Truncate(time.Second)
	for _, t := range []struct {
		table string
		cols  []string
		row   func(string) []any
	}{
		{"users", []string{"id"}, func(u string) []any { return []any{u} }},
		{"provider_accounts", []string{"user_id", "provider", "external_id"}, func(u string) []any { return []any{u, "lastfm", u} }},
		{"schedules", []string{"user_id", "interval_seconds", "next_run_at"}, func(u string) []any { return []any{u, 86400, slot} }},
	} {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, rows(t.row)); err != nil {
			return fmt.Errorf("copy %s: %w", t.table, err)
		}
	}
	return nil
}

// toListen is the crawler's mapping (crawler.Worker.listens) for a Last.fm play.
func toListen(user string, p provider.Play) listen.Listen {
	return listen.Listen{UserID: user, PlayedAt: p.PlayedAt.UTC(), ArtistName: p.Artist, TrackName: p.Track, AlbumName: p.Album,
		TrackID: p.TrackID, ArtistID: p.ArtistID, AlbumID: p.AlbumID, Source: "lastfm"}
}

// bare publishes n records with an async producer on kafka.NewSaramaConfig
// and returns the time until the last acknowledgement.
func bare(brokers []string, topic string, n int, rec func(int) (string, []byte)) (time.Duration, error) {
	cfg := kafka.NewSaramaConfig("topk-bench-bare")
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return 0, err
	}
	bar := benchkit.Bar(int64(n), "bare producer")
	start := time.Now()
	errc := make(chan error, 1)
	acked := make(chan struct{})
	go func() {
		i := 0
		for range p.Successes() {
			if i++; i%5000 == 0 {
				_ = bar.Set(i)
			}
		}
		close(acked)
	}()
	go func() {
		for err := range p.Errors() {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	for i := range n {
		k, v := rec(i)
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)}
	}
	p.AsyncClose()
	<-acked
	took := time.Since(start)
	_ = bar.Finish()
	select {
	case err := <-errc:
		return took, errors.Join(errors.New("bare producer"), err)
	default:
	}
	return took, nil
}

func goMaxProcs() int { return runtime.GOMAXPROCS(0) }
