// Command listenbrainz is `make bench-lb`: the ListenBrainz api's
// submit-to-chart latency (issue 13) at a fixed rate of submissions,
// beside Kafka's own EndToEndLatency tool on the same broker in the same
// run.
//
// Everything is the benchmark's own: a namespace (topics), a keyspace and
// a PostgreSQL database, dropped at the end. The pipeline runs as
// `topk ingest`, `aggregator`, `raw-writer` and `flusher`, each its own
// process (bin/topk); the api runs in this process, wired as `topk api`
// wires its charts and ListenBrainz routes (api.go: Goka view, Cassandra
// reader, Redis cache, lag monitor; PostgreSQL tokens, a Kafka publisher
// answering after acks=all, Redis playing now), with the configuration's
// rate limit and timeouts, loopback clients exempt as with TOPK_DEV_MODE=1.
// Not mounted: the admin endpoints and the Goka monitor, which no
// submission or chart read passes through.
//
// Each of -users users gets a token (Store.CreateToken) and, in a
// warm-up, one listen, counted and flushed to Cassandra before the
// measured run: they are users with listens, whose first day the api has
// cached, as a scrobbler's user is (a user without any makes every
// listen-count a Cassandra read until the flusher writes its day).
// Submissions, one `single` listen each, then leave at -rate per second in
// total for -duration, open loop: submission i is due at start + i/rate
// and goes out in its own goroutine (a real HTTP client, keep-alive
// connections), so slow answers do not lower the rate, and every latency
// counts from the due time (a late sender's delay included). Users take
// turns, so each submits every users/rate seconds; every listen of a user
// has its own listened_at, so each submission counts once.
//
// Submit-to-chart latency: from a submission's 200 on, while the user has
// submissions answered and not yet counted, a poller reads its
// GET /1/user/{user}/listen-count every -poll (the first read one -poll
// after the 200); when the count reaches k, the time that answer arrived
// ends the latency of the user's first k submissions (counts only grow).
// That is an upper bound: the listen became countable after its 200
// (Kafka had it) and after the user's previous read started, so each
// figure is late by at most the time from the later of those to the
// answer — printed as the resolution. The poller's reads load the api
// too: their rate is printed.
//
// Printed: submissions and the rate achieved, the POSTs' answers by
// status (anything but 200 is said loudly), p50/p90/p99/max of the POST's
// answer and of submit-to-chart, Kafka EndToEndLatency's p50/p99 (one
// message at a time, acks=all, whole milliseconds), the ratio of the p99s,
// the poll's resolution and load, and the CPU of this process (api, load
// and poller), of each pipeline process and of Cassandra. Progress goes to
// stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
)

type options struct {
	rate     int
	dur      time.Duration
	users    int
	poll     time.Duration
	refN     int
	drainMax time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 500, "submissions per second, all users together")
	flag.DurationVar(&o.dur, "duration", 30*time.Second, "how long to submit")
	flag.IntVar(&o.users, "users", 200, "users, each with its own token; they take turns")
	flag.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often a user with uncounted submissions has its listen-count read: the resolution, and the poller's load")
	flag.IntVar(&o.refN, "ref-n", 2000, "messages of Kafka's EndToEndLatency run")
	flag.DurationVar(&o.drainMax, "drain", 30*time.Second, "how long to wait, after the last submission, for the uncounted ones")
	flag.Parse()
	if o.rate <= 0 || o.dur <= 0 || o.users <= 0 || o.poll <= 0 || o.refN <= 0 {
		fmt.Fprintln(os.Stderr, "bench-lb: -rate, -duration, -users, -poll and -ref-n must be positive")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-lb:", err)
		os.Exit(1)
	}
}

// pipeline is the services the benchmark runs as processes, in start order.
var pipeline = []string{"ingest", "aggregator", "raw-writer", "flusher"}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := benchkit.Setup(ctx, "lb")
	if err != nil {
		return err
	}
	e.Config.Cassandra.Keyspace = "topk_" + e.Config.Namespace
	e.Config.Postgres.Database = "topk_" + e.Config.Namespace
	pgc := wiring.Postgres(e.Config.Postgres)

	// Interrupted or done, the processes stop and the benchmark's topics,
	// keyspace, database and work directory go.
	var (
		mu        sync.Mutex // procs, removeDir
		procs     []*benchkit.Process
		removeDir func()
		once      sync.Once
	)
	cleanup := func() {
		once.Do(func() {
			mu.Lock()
			for _, p := range procs {
				p.Stop()
			}
			if removeDir != nil {
				removeDir()
			}
			mu.Unlock()
			if err := postgres.DropDatabase(context.Background(), pgc, pgc.Database); err != nil {
				e.Log.Warn("dropping the benchmark's database", "err", err)
			}
			if err := cassandra.DropKeyspace(context.Background(), wiring.Cassandra(e.Config.Cassandra), e.Config.Cassandra.Keyspace); err != nil {
				e.Log.Warn("dropping the benchmark's keyspace", "err", err)
			}
			e.Close()
		})
	}
	defer cleanup()
	benchkit.OnInterrupt("\nbench-lb: interrupted, removing topics, keyspace and database", func() { cancel(); cleanup() })
	dir, remove, err := e.WorkDir("lb")
	if err != nil {
		return err
	}
	mu.Lock()
	removeDir = remove
	mu.Unlock()
	fmt.Fprintf(os.Stderr, "bench-lb: namespace %s, logs in %s\n", e.Config.Namespace, dir)

	// The reference first, on a broker nothing else of ours loads.
	ref, err := e.EndToEndLatency(ctx, o.refN)
	if err != nil {
		return fmt.Errorf("EndToEndLatency: %w", err)
	}

	if err := cassandra.Migrate(ctx, wiring.Cassandra(e.Config.Cassandra), e.Log); err != nil {
		return err
	}
	if err := postgres.CreateDatabase(ctx, pgc, pgc.Database); err != nil {
		return fmt.Errorf("create database %s: %w", pgc.Database, err)
	}
	pool, err := postgres.Connect(ctx, pgc)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, e.Log); err != nil {
		return err
	}

	started := map[string]*benchkit.Process{}
	for _, name := range pipeline {
		p, err := e.Start(filepath.Join(dir, name+".log"), name)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		started[name] = p
	}

	actx, stopAPI := context.WithCancel(ctx)
	a, err := startAPI(actx, e.Config, pool, e.Log)
	if err != nil {
		stopAPI()
		return err
	}
	defer func() { stopAPI(); a.wait() }()
	if err := a.waitRecovered(actx, 2*time.Minute); err != nil {
		return err
	}

	tokens := postgres.NewStore(pool, nil)
	users, err := createUsers(ctx, tokens, userNames(o.users))
	if err != nil {
		return err
	}
	probe, err := createUsers(ctx, tokens, []string{probeUser})
	if err != nil {
		return err
	}
	c := newClients()
	defer c.close()
	fmt.Fprintln(os.Stderr, "bench-lb: waiting for the pipeline to count a first submission …")
	if err := waitFirstCount(ctx, c, a.url, probe[0], started, dir); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // the processors' first commits and rebalances are over

	cass := e.CassandraPID()
	flushed := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return kafka.WaitCaughtUp(ctx, e.Client, e.Admin, flusher.Group(e.Config.Namespace), string(aggregator.Table(e.Config.Namespace)), nil)
	}
	m, err := measure(ctx, c, a.url, users, o, flushed, func() cpuSample { return cpuNow(started, cass) })
	if err != nil {
		return err
	}
	report(o, m, ref, started)
	if err := a.failed(); err != nil {
		return fmt.Errorf("the api stopped during the run: %w", err)
	}
	for name, p := range started {
		if p.Exited() {
			return fmt.Errorf("%s ended during the run (%v): see its log %s", name, p.ExitError(), filepath.Join(dir, name+".log"))
		}
	}
	return nil
}

// cpuSample is the CPU time used so far by this process, each pipeline
// process and Cassandra, and the machine's.
type cpuSample struct {
	at          time.Time
	self        time.Duration
	procs       map[string]time.Duration
	cassandra   time.Duration
	cassOK      bool
	busy, total time.Duration
}

func cpuNow(procs map[string]*benchkit.Process, cassPID int) cpuSample {
	s := cpuSample{at: time.Now(), procs: map[string]time.Duration{}}
	s.self, _ = benchkit.CPUTimeOf(os.Getpid())
	for name, p := range procs {
		s.procs[name] = p.CPUTime()
	}
	if cassPID != 0 {
		s.cassandra, s.cassOK = benchkit.CPUTimeOf(cassPID)
	}
	s.busy, s.total = benchkit.SystemCPU()
	return s
}

func report(o options, m *result, ref benchkit.EndToEnd, procs map[string]*benchkit.Process) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	row := func(name string, d []time.Duration) []string {
		benchkit.SortDurations(d)
		return []string{name, strconv.Itoa(len(d)), ms(benchkit.Percentile(d, 50)), ms(benchkit.Percentile(d, 90)),
			ms(benchkit.Percentile(d, 99)), ms(benchkit.Percentile(d, 100))}
	}
	wholeMS := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

	fmt.Printf("\nbench-lb: %d submissions (single, one listen each) of %d users at %.0f/s (target %d/s) over %v, %s; %d CPUs\n\n",
		m.n, o.users, m.achieved, o.rate, m.sendTime.Round(time.Millisecond), time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	benchkit.Table(os.Stdout, []string{"path", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"}, [][]string{
		row("POST /1/submit-listens → 200 (after Kafka's acks=all)", m.post),
		row("submit → counted in GET /1/user/{user}/listen-count", m.chart),
		{"kafka EndToEndLatency (produce → consume, acks=all, 1 hop)", strconv.Itoa(ref.N), wholeMS(ref.P50), "", wholeMS(ref.P99), wholeMS(ref.P999) + " (p99.9)"},
	})
	fmt.Println()

	p99 := benchkit.Percentile(m.chart, 99)
	refP99 := time.Duration(ref.P99 * float64(time.Millisecond))
	if refP99 > 0 {
		fmt.Printf("submit→chart p99 / kafka EndToEndLatency p99: %.0f×\n", float64(p99)/float64(refP99))
	} else {
		fmt.Printf("submit→chart p99 / kafka EndToEndLatency p99: > %.0f× (the tool's p99 is under 1 ms; taken as 1 ms)\n", float64(p99)/float64(time.Millisecond))
	}
	benchkit.SortDurations(m.resolution)
	benchkit.SortDurations(m.pollLat)
	fmt.Printf("resolution: listen-count read every %v per user with answered, uncounted submissions; each latency may be late by\n"+
		"  the time from the later of its 200 and the user's previous read to the answer that counted it: p50 %s ms, p99 %s ms\n",
		o.poll, ms(benchkit.Percentile(m.resolution, 50)), ms(benchkit.Percentile(m.resolution, 99)))
	fmt.Printf("poller: %d reads of listen-count (%.0f/s beside the submissions), p50 %s ms, p99 %s ms each; %s\n",
		m.polls, float64(m.polls)/m.measureTime.Seconds(), ms(benchkit.Percentile(m.pollLat, 50)), ms(benchkit.Percentile(m.pollLat, 99)), m.pollErrors())
	benchkit.SortDurations(m.late)
	fmt.Printf("sender: due → sent p99 %s ms, max %s ms (open loop: latencies count from the due time)\n",
		ms(benchkit.Percentile(m.late, 99)), ms(benchkit.Percentile(m.late, 100)))
	fmt.Println()

	if bad := m.notOK(); bad > 0 {
		fmt.Printf("!!! %d of %d submissions were NOT answered 200: %s — the figures above leave them out\n", bad, m.n, m.codeList())
	} else {
		fmt.Printf("answers: all %d submissions 200\n", m.n)
	}
	if m.uncounted > 0 {
		fmt.Printf("!!! %d submissions answered 200 were never counted within %v of the last one\n", m.uncounted, o.drainMax)
	}
	if m.extra > 0 {
		fmt.Printf("!!! the counts went %d past the submissions answered 200 (a refused submission counted anyway, or a listen counted twice)\n", m.extra)
	}
	fmt.Println()

	cpu0, cpu1 := m.cpu0, m.cpu1
	wall := cpu1.at.Sub(cpu0.at)
	cores := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/wall.Seconds()) }
	rows := [][]string{{"this process (api, load, poller)", fmt.Sprintf("%.1f", (cpu1.self - cpu0.self).Seconds()), cores(cpu1.self - cpu0.self)}}
	for _, name := range pipeline {
		if procs[name] == nil {
			continue
		}
		d := cpu1.procs[name] - cpu0.procs[name]
		rows = append(rows, []string{"topk " + name, fmt.Sprintf("%.1f", d.Seconds()), cores(d)})
	}
	if cpu0.cassOK && cpu1.cassOK {
		d := cpu1.cassandra - cpu0.cassandra
		rows = append(rows, []string{"cassandra", fmt.Sprintf("%.1f", d.Seconds()), cores(d)})
	} else {
		rows = append(rows, []string{"cassandra", "?", "? (no pid file: not the local stack)"})
	}
	busy := cpu1.busy - cpu0.busy
	rows = append(rows, []string{"machine (everything, busy)", fmt.Sprintf("%.1f", busy.Seconds()), cores(busy)})
	fmt.Printf("CPU over the %v of submitting and draining:\n\n", wall.Round(time.Millisecond))
	benchkit.Table(os.Stdout, []string{"process", "CPU s", "cores"}, rows)
	fmt.Println()
	fmt.Println("topk's path: HTTP → token lookup (PostgreSQL) → produce, acks=all → ingest → aggregator → changelog → api's view → listen-count;")
	fmt.Println("the tool's path is one Kafka hop. Kafka, Cassandra, PostgreSQL, Redis, the pipeline, the api and its clients share this machine.")
}
