// Command api is `make bench-api`: the Top-K api at a fixed request rate
// (vegeta as a library), beside a trivial echo handler at the same rate in
// the same run.
//
// Data goes through the real pipeline (ingest, aggregator, raw writer and
// flusher, run in this process on the benchmark's own topics and
// keyspace): many users with a few weeks of listens and some old ones,
// and one heavy user with three years, 100k listens and 20k distinct
// tracks. The pipeline is stopped before the requests start. The api is
// built as `topk api` builds it (Goka view, Cassandra reader, Redis
// cache) and served on loopback; so is the trivial handler. Load
// generator and servers share this machine's cores: the trivial handler
// shows what that costs.
//
// Targets: a 30-day Top-K of the heavy user (the view), its 365-day and
// all-time Top-K (view + cached Cassandra rollups), an old range of the
// heavy user (Cassandra only, cached), and old ranges of many users on a
// server without cache (Cassandra only, every request a query). With
// -sitewide (the default) `topk sitewide` also runs during the load and the
// api serves the sitewide chart (GET /v1/charts/top/{entity}) as `topk api`
// does, from the sitewide view and Cassandra's sitewide_days; its range
// classes are targets too: 7d and 30d (the view), 365d and all (view +
// Cassandra) and a from/to older than the view's window (Cassandra only),
// each checked to answer from that source with items. Printed:
// p50 and p99 of each at the base rate, each p99 over the trivial
// handler's, and the highest rate each sustains with p99 under 10 ms.
//
// Under attack (attack.go): ordinary view-served requests at the base
// rate from many client addresses while an attacker sends -attack req/s
// of Cassandra-only ranges, each with other from/to, from one address
// (and then from many), against the api with `topk api`'s limits and,
// for comparison, without them: the ordinary requests' p50/p99 and the
// attacker's answers by status. There the ordinary clients and the
// attacker are each a process of their own (load.go), so that the api's
// scheduler and garbage collector are its own.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/charts"
	chartsw "github.com/topk-charts/topk/charts/sitewide"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/redis"
	"github.com/topk-charts/topk/views"
	viewsw "github.com/topk-charts/topk/views/sitewide"
)

// attackView is a diagnostic: the attacker asks for one view-served chart
// instead of Cassandra ranges, to tell what the flood and its 429s cost
// alone from what its Cassandra reads cost.
var attackView = flag.Bool("attack-view", false, "diagnostic: the attacker asks for one view-served chart instead of Cassandra ranges (what the flood and its 429s cost alone)")

func main() {
	rate := flag.Int("rate", 1000, "requests per second of the fixed-rate runs")
	dur := flag.Duration("duration", 10*time.Second, "length of each fixed-rate run")
	users := flag.Int("users", 2000, "ordinary users")
	heavy := flag.Int("heavy", 100_000, "listens of the heavy user (three years)")
	tracks := flag.Int("tracks", 20_000, "distinct tracks of the heavy user")
	search := flag.Bool("search", true, "search the highest rate with p99 under 10 ms")
	attackRate := flag.Int("attack", 2000, "requests per second of the attacker (0: no attack runs)")
	load := flag.String("load", "", "internal: run as a load generator of the attack runs (a JSON loadSpec) and print its result")
	profileDir := flag.String("profile", "", "write a CPU profile of this process (api and load generator) per attack scenario to this folder")
	flag.BoolVar(&withSitewide, "sitewide", true, "run topk sitewide during the load and measure the sitewide chart's range classes")
	flag.Parse()
	if *load != "" {
		if err := runLoad(*load); err != nil {
			fmt.Fprintln(os.Stderr, "bench-api load generator:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*rate, *dur, *users, *heavy, *tracks, *search, *attackRate, *profileDir); err != nil {
		fmt.Fprintln(os.Stderr, "bench-api:", err)
		os.Exit(1)
	}
}

const heavyUser = "heavy"

// withSitewide: the sitewide pipeline loads too and the sitewide route's
// range classes are measured (-sitewide).
var withSitewide bool

func run(rate int, dur time.Duration, users, heavyN, tracks int, search bool, attackRate int, profileDir string) error {
	e, err := benchkit.Setup(context.Background(), "api")
	if err != nil {
		return err
	}
	cfg := e.Config
	cfg.Cassandra.Keyspace = "topk_" + cfg.Namespace
	// Interrupted or done, the benchmark's topics and keyspace go.
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			_ = cassandra.DropKeyspace(context.Background(), wiring.Cassandra(cfg.Cassandra), cfg.Cassandra.Keyspace)
			e.Close()
		})
	}
	defer cleanup()
	benchkit.OnInterrupt("bench-api: interrupted, removing topics and keyspace", cleanup)
	dir, err := os.MkdirTemp("", "topk-bench-api-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if err := cassandra.Migrate(ctx, wiring.Cassandra(cfg.Cassandra), e.Log); err != nil {
		return err
	}

	// Data, through the real pipeline.
	now := time.Now().UTC()
	gen := newGen(now, users, heavyN, tracks)
	total := gen.total()
	fmt.Fprintf(os.Stderr, "bench-api: %d listens (%d of the heavy user, %d distinct tracks; %d users), namespace %s\n",
		total, heavyN, tracks, users, cfg.Namespace)
	if _, err := e.Produce(string(e.Topics.Raw), total, gen.next); err != nil {
		return err
	}
	start := time.Now()
	if err := loadPipeline(ctx, e, cfg, dir, withSitewide); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-api: pipeline done in %v\n", time.Since(start).Round(time.Second))

	// The api as `topk api` builds it, and a trivial echo handler.
	quiet := slog.New(slog.DiscardHandler)
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor, Log: quiet}
	view, err := views.New(set, views.Config{Namespace: cfg.Namespace, Days: cfg.Charts.ViewDays, Log: quiet, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	reader := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer reader.Close()
	// The sitewide chart as `topk api` serves it: its view of the group's
	// recent topic and Cassandra's sitewide_days (one service for every
	// api built below, so without the per-user service's read bounds that
	// `topk api` shares with it: chartsw.Config.Bounds).
	var siteView *viewsw.View
	var site api.SitewideCharts
	if withSitewide {
		if siteView, err = viewsw.New(set, viewsw.Config{Namespace: cfg.Namespace, Days: cfg.Charts.ViewDays, Log: quiet, Registerer: prometheus.NewRegistry()}); err != nil {
			return err
		}
		if site, err = chartsw.New(chartsw.Config{View: siteView, Store: reader, CacheTTL: cfg.Charts.CacheTTL, Log: quiet, Registerer: prometheus.NewRegistry()}); err != nil {
			return err
		}
	}
	ro := redis.Options(wiring.Redis(cfg.Redis))
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	rc := goredis.NewClient(ro)
	defer rc.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	serve := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() { defer wg.Done(); _ = ops.Serve(sctx, srv, ln, nil) }()
		return "http://" + ln.Addr().String(), nil
	}
	var services []*charts.Service
	var limitedReg *prometheus.Registry
	defer func() {
		for _, svc := range services {
			svc.Close()
		}
	}()
	// newAPI builds the charts api; limited: with the limits `topk api`
	// has (rate limit per client, Cassandra reads at once, entry size cap,
	// server timeouts: the configuration's defaults), served by the api's
	// own server; otherwise without them, as the table's reference runs.
	newAPI := func(ttl time.Duration, limited bool) (string, error) {
		reg := prometheus.NewRegistry()
		ac := api.Config{Addr: "127.0.0.1:0", Registerer: reg, Gatherer: reg, Sitewide: site}
		sc := charts.Config{View: view, Store: reader, Cache: charts.RedisCache{Client: rc}, CacheTTL: ttl, NamesTTL: cfg.Charts.NamesTTL,
			LocalCacheBytes: int64(cfg.Charts.CacheLocalMB) << 20, CachePrefix: cfg.Cassandra.Keyspace + ":", Registerer: reg}
		if limited {
			ac.RateLimit = api.RateLimit{PerSecond: float64(cfg.API.RateLimit), Burst: cfg.API.RateBurst, ReadBurst: cfg.API.RateReadBurst, InFlight: cfg.API.RateInFlight}
			ac.Timeouts = api.Timeouts{ReadHeader: cfg.API.ReadHeaderTimeout, Read: cfg.API.ReadTimeout, Write: cfg.API.WriteTimeout, Idle: cfg.API.IdleTimeout}
			sc.MaxCassandra, sc.CacheMaxEntryBytes = cfg.Charts.CassandraConcurrency, int64(cfg.Charts.CacheMaxEntryBytes)
			sc.MaxReads = cfg.Charts.CassandraReads
		}
		srv, err := api.New(ac, quiet)
		if err != nil {
			return "", err
		}
		svc, err := charts.New(sc, quiet)
		if err != nil {
			return "", err
		}
		services = append(services, svc)
		srv.MountCharts(svc)
		if !limited {
			return serve(srv.Echo())
		}
		limitedReg = reg
		if err := srv.Listen(); err != nil {
			return "", err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Run(sctx) }()
		return "http://" + srv.Addr(), nil
	}
	cachedURL, err := newAPI(cfg.Charts.CacheTTL, false)
	if err != nil {
		return err
	}
	uncachedURL, err := newAPI(0, false)
	if err != nil {
		return err
	}
	limitedURL, err := newAPI(cfg.Charts.CacheTTL, true)
	if err != nil {
		return err
	}
	limited := services[len(services)-1]
	triv := echo.New()
	triv.HideBanner, triv.HidePort = true, true
	triv.GET("/ping", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	trivURL, err := serve(triv)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = view.Run(sctx) }()
	if siteView != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = siteView.Run(sctx) }()
	}
	for !view.Recovered() || (siteView != nil && !siteView.Recovered()) {
		time.Sleep(50 * time.Millisecond)
	}
	defer func() { stop(); wg.Wait() }()

	day := func(t time.Time) string { return t.Format("2006-01-02") }
	today := now.Truncate(24 * time.Hour)
	oldFrom, oldTo := day(today.AddDate(-2, -3, 0)), day(today.AddDate(-1, -1, 0))
	var manyOld []vegeta.Target
	for u := range users {
		manyOld = append(manyOld, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/v1/users/user-%d/top/artists?from=%s&to=%s", uncachedURL, u, day(today.AddDate(0, 0, -400)), day(today.AddDate(0, 0, -100)))})
	}
	top := func(base, q string) []vegeta.Target {
		return []vegeta.Target{{Method: "GET", URL: base + "/v1/users/" + heavyUser + "/top/tracks?" + q}}
	}
	targets := []struct {
		name    string
		targets []vegeta.Target
	}{
		{"trivial echo handler", []vegeta.Target{{Method: "GET", URL: trivURL + "/ping"}}},
		{"heavy 30d (view)", top(cachedURL, "range=30d")},
		{"heavy 365d (view + cached rollups)", top(cachedURL, "range=365d")},
		{"heavy all (view + cached rollups)", top(cachedURL, "range=all")},
		{"heavy old range (cassandra, cached)", top(cachedURL, "from="+oldFrom+"&to="+oldTo)},
		{"many users, old range (cassandra, uncached)", manyOld},
	}
	if withSitewide {
		// The sitewide route's range classes; each answers from its source
		// with items (checked before the runs).
		sw := func(q string) []vegeta.Target {
			return []vegeta.Target{{Method: "GET", URL: cachedURL + "/v1/charts/top/tracks?" + q}}
		}
		swOld := "from=" + day(today.AddDate(0, 0, -400)) + "&to=" + day(today.AddDate(0, 0, -(cfg.Charts.ViewDays+30)))
		for _, c := range []struct{ name, q, source string }{
			{"sitewide 7d (view)", "range=7d", charts.SourceView},
			{"sitewide 30d (view)", "range=30d", charts.SourceView},
			{"sitewide 365d (view + cassandra)", "range=365d", charts.SourceMixed},
			{"sitewide all (view + cassandra)", "range=all", charts.SourceMixed},
			{"sitewide old range (cassandra)", swOld, charts.SourceCassandra},
		} {
			if n, src, err := checkSitewide(cachedURL, c.q); err != nil || n == 0 || src != c.source {
				return fmt.Errorf("sitewide chart %s: %d tracks from %q, want some from %q: %v", c.q, n, src, c.source, err)
			}
			targets = append(targets, struct {
				name    string
				targets []vegeta.Target
			}{c.name, sw(c.q)})
		}
	}
	// Sanity: the heavy user's all-time chart has every track.
	if n, src, err := checkAll(cachedURL); err != nil || n != tracks {
		return fmt.Errorf("heavy user's all-time chart: %d tracks (source %s), want %d: %v", n, src, tracks, err)
	}

	fmt.Printf("\nbench-api: %d req/s for %v each; heavy user %d listens / %d tracks over three years, %d other users\n",
		rate, dur, heavyN, tracks, users)
	fmt.Printf("data through the real pipeline; view R = %d days; cache TTL %v (Redis + in process); %d CPUs shared by load and servers\n\n",
		cfg.Charts.ViewDays, cfg.Charts.CacheTTL, runtime.GOMAXPROCS(0))
	results := make([]result, len(targets))
	for i, t := range targets {
		attack(t.targets, rate, 2*time.Second) // warm up: caches, connections
		results[i] = attack(t.targets, rate, dur)
	}
	ref := results[0].p99
	var rows [][]string
	for i, t := range targets {
		r := results[i]
		rows = append(rows, []string{t.name, strconv.Itoa(rate), fmtD(r.p50), fmtD(r.p99), fmt.Sprintf("%.1f×", float64(r.p99)/float64(ref)),
			fmt.Sprintf("%.2f%%", 100*r.success), strconv.Itoa(r.n)})
	}
	benchkit.Table(os.Stdout, []string{"target", "req/s", "p50", "p99", "p99/trivial", "ok", "requests"}, rows)
	// The attack runs come last: the one without limits overloads
	// Cassandra, which would weigh on the rate search.
	attackRuns := func() error {
		if attackRate <= 0 {
			return nil
		}
		return underAttack(attackSetup{
			limitedURL: limitedURL, unlimitedURL: cachedURL, rate: rate, attackRate: attackRate, dur: dur,
			users: users, today: today, viewDays: cfg.Charts.ViewDays, ref: ref, cfg: cfg, cassPID: e.CassandraPID(), settle: limited.Settle, profileDir: profileDir, metrics: limitedReg, viewAttack: *attackView,
		})
	}
	if !search {
		return attackRuns()
	}
	fmt.Printf("\nhighest rate with p99 < 10 ms (3 s probes, doubling from %d req/s, then bisecting):\n\n", rate)
	rows = nil
	for _, t := range targets {
		best, at := maxRate(t.targets, rate)
		rows = append(rows, []string{t.name, strconv.Itoa(best), fmtD(at.p99)})
	}
	benchkit.Table(os.Stdout, []string{"target", "max req/s", "p99 there"}, rows)
	return attackRuns()
}

type result struct {
	p50, p99 time.Duration
	success  float64
	n        int
	codes    map[uint16]int // by status; 0: no answer (timeout, refused)
	// slow counts the requests over 10 ms by the second of the run they
	// were sent in: one stall or a steady tail.
	slow map[int]int
}

// slowSeconds renders r.slow: "second:count" of the seconds that had
// requests over 10 ms.
func (r result) slowSeconds() string {
	if len(r.slow) == 0 {
		return "none"
	}
	secs := make([]int, 0, len(r.slow))
	for s := range r.slow {
		secs = append(secs, s)
	}
	sort.Ints(secs)
	parts := make([]string, len(secs))
	for i, s := range secs {
		parts[i] = fmt.Sprintf("%d:%d", s, r.slow[s])
	}
	return strings.Join(parts, " ")
}

func attack(targets []vegeta.Target, rate int, dur time.Duration) result {
	// A transport per attack, its connections closed after: vegeta's
	// default keeps up to 10000 idle connections per host, and the probes
	// of the rate search would run out of file descriptors.
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512}
	defer tr.CloseIdleConnections()
	return hit(tr, vegeta.NewStaticTargeter(targets...), rate, dur)
}

// hit sends the targets at rate for dur through rt and measures.
func hit(rt http.RoundTripper, targeter vegeta.Targeter, rate int, dur time.Duration) result {
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: rt, Timeout: 5 * time.Second}), vegeta.Workers(32), vegeta.MaxWorkers(512))
	var lat []time.Duration
	codes, slow := map[uint16]int{}, map[int]int{}
	start := time.Now()
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, dur, "bench") {
		lat = append(lat, res.Latency)
		codes[res.Code]++
		if res.Latency > 10*time.Millisecond {
			slow[int(res.Timestamp.Sub(start)/time.Second)]++
		}
	}
	atk.Stop()
	benchkit.SortDurations(lat)
	if len(lat) == 0 {
		return result{}
	}
	return result{p50: benchkit.Percentile(lat, 50), p99: benchkit.Percentile(lat, 99), success: float64(codes[http.StatusOK]) / float64(len(lat)),
		n: len(lat), codes: codes, slow: slow}
}

// maxRate doubles the rate from base while p99 stays under 10 ms and every
// answer is a 200, then bisects twice between the last good and the first
// bad rate.
func maxRate(targets []vegeta.Target, base int) (int, result) {
	good := func(r result) bool { return r.p99 < 10*time.Millisecond && r.success == 1 }
	probe := func(rate int) result {
		attack(targets, rate, time.Second)
		return attack(targets, rate, 3*time.Second)
	}
	lo, hi := 0, base
	var loRes result
	for {
		r := probe(hi)
		if !good(r) {
			break
		}
		lo, loRes = hi, r
		if hi >= 64_000 {
			return lo, loRes
		}
		hi *= 2
	}
	for lo == 0 && hi > 25 { // even the base rate is too much: halve
		if r := probe(hi / 2); good(r) {
			lo, loRes = hi/2, r
		} else {
			hi /= 2
		}
	}
	for range 3 {
		mid := (lo + hi) / 2
		if mid <= lo || mid == 0 {
			break
		}
		if r := probe(mid); good(r) {
			lo, loRes = mid, r
		} else {
			hi = mid
		}
	}
	return lo, loRes
}

func checkAll(base string) (int, string, error) {
	resp, err := http.Get(base + "/v1/users/" + heavyUser + "/top/tracks?range=all&k=1")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	var a struct {
		Total  int    `json:"total"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, "", err
	}
	return a.Total, a.Source, nil
}

// checkSitewide asks the sitewide chart of tracks for q and returns its
// total and source.
func checkSitewide(base, q string) (int, string, error) {
	resp, err := http.Get(base + "/v1/charts/top/tracks?k=1&" + q)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	var a chartsw.Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, "", err
	}
	return a.Total, a.Source, nil
}

func fmtD(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
