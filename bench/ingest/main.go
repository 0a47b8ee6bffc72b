// Command ingest is `make bench-ingest`: it produces N listens into
// user.listen.raw, then measures each stage on its own backlog beside
// references reading the same topic in the same run: Kafka's
// kafka-consumer-perf-test (the machine's limit) and a minimal Goka
// processor (decode, emit, count); the aggregator also beside a minimal
// stateful Goka processor (one int64 per user|day key, with the aggregator's
// Settings: consumer group, LevelDB storage, producer), run as its own
// process like the aggregator. First topk ingest (raw → valid), then the
// aggregator (valid → table), each as its own process, timed from its first
// record to its N-th and run until its committed lag is zero. It prints the
// rates and ratios, the changelog bytes per listen, the peak RSS and the
// processor time per listen.
//
// With -sitewide (the default) the sitewide charts' cost follows: `topk
// sitewide` (fan-out, sitewide group, sitewide flusher; its own process,
// its own Cassandra keyspace) on the table the aggregator just wrote, timed
// from its first state read until the fan-out has read every record of the
// table and the sitewide group every Count (the fan-out's and the spills'
// re-emitted ones, from the process's metrics); printed as listens/s, as a
// fraction of the aggregator's listens/s, and as CPU per listen.
//
// TOPK_BENCH_PROFILE=dir saves a CPU profile of each process (topk ingest,
// topk aggregator, the stateful reference, topk sitewide) taken from its
// first record for -profile-seconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

func main() {
	n := flag.Int("n", 1_000_000, "listens to produce")
	users := flag.Int("users", 20_000, "distinct users")
	flag.DurationVar(&profileFor, "profile-seconds", 5*time.Second, "length of each CPU profile (TOPK_BENCH_PROFILE=dir)")
	reference := flag.String("reference", "", "run as the reference process named (stateful); the benchmark starts it")
	flag.BoolVar(&withSitewide, "sitewide", true, "then time topk sitewide (fan-out, sitewide group) on the aggregator's table")
	flag.Parse()
	var err error
	if *reference == "stateful" {
		err = runStatefulReference()
	} else {
		err = run(*n, *users)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

// profileFor is how long each CPU profile lasts.
var profileFor time.Duration

// withSitewide: time topk sitewide after the aggregator (-sitewide).
var withSitewide bool

func run(n, users int) error {
	e, err := benchkit.Setup(context.Background(), "ingest")
	if err != nil {
		return err
	}
	defer e.Close()
	raw, valid := string(e.Topics.Raw), string(e.Topics.Valid)
	gen := benchkit.NewGenerator(1, users)
	rawBytes, err := e.Produce(raw, n, gen.Next)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d listens (%s) in %s\n", n, benchkit.MiB(rawBytes), raw)
	dir, remove, err := e.WorkDir("ingest")
	if err != nil {
		return err
	}
	defer remove()

	// Each stage beside its references, all reading the same topic.
	var rows [][]string
	var aggRatio, statefulRatio float64
	results := map[string]result{}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
	for _, st := range []struct{ cmd, topic, metric string }{
		{"ingest", raw, "topk_ingest_records_total"},
		{"aggregator", valid, "topk_aggregator_listens_total"},
	} {
		perf, err := perfTool(e, st.topic, n)
		if err != nil {
			return fmt.Errorf("kafka-consumer-perf-test on %s: %w", st.topic, err)
		}
		minimal, err := minimalGoka(e, st.topic, n)
		if err != nil {
			return fmt.Errorf("minimal goka processor on %s: %w", st.topic, err)
		}
		stateful, ratio := "—", "—"
		if st.cmd == "aggregator" {
			ref, err := statefulReference(e, dir, n)
			if err != nil {
				return fmt.Errorf("stateful goka reference on %s: %w", st.topic, err)
			}
			results["stateful"] = ref
			stateful = f(ref.rate)
		}
		p, err := e.Start(filepath.Join(dir, st.cmd+".log"), st.cmd)
		if err != nil {
			return fmt.Errorf("topk %s: %w", st.cmd, err)
		}
		group := map[string]string{"ingest": string(ingest.Group(e.Config.Namespace)), "aggregator": string(aggregator.Group(e.Config.Namespace))}[st.cmd]
		r, err := stage(e, p, "topk "+st.cmd, filepath.Join(dir, st.cmd+".log"), group, st.topic, st.metric, n)
		if err != nil {
			return fmt.Errorf("topk %s: %w", st.cmd, err)
		}
		results[st.cmd] = r
		if st.cmd == "aggregator" {
			aggRatio = r.rate / minimal
			statefulRatio = r.rate / results["stateful"].rate
			ratio = fmt.Sprintf("%.2f", statefulRatio)
		}
		rows = append(rows, []string{"topk " + st.cmd, st.topic[len(e.Config.Namespace)+1:], f(r.rate), f(minimal), fmt.Sprintf("%.2f", r.rate/minimal), f(perf), fmt.Sprintf("%.2f", r.rate/perf), stateful, ratio})
	}
	var site result
	if withSitewide {
		if site, err = sitewideStage(e, dir, n); err != nil {
			return fmt.Errorf("topk sitewide: %w", err)
		}
		rows = append(rows, []string{"topk sitewide", "table", f(site.rate), "—", "—", "—", "—", "—", "—"})
	}
	changelog, _ := e.TopicBytes(string(aggregator.Table(e.Config.Namespace)))
	recent, _ := e.TopicBytes(string(e.Topics.Recent))
	refChangelog, _ := e.TopicBytes(string(goka.GroupTable(statefulGroup(e.Config.Namespace))))

	fmt.Printf("\nbench-ingest: %d listens, %d users, raw topic %d partitions, valid %d (%s)\n\n",
		n, users, e.Config.Kafka.RawPartitions, e.Config.Kafka.ValidPartitions, time.Now().UTC().Format(time.RFC3339))
	benchkit.Table(os.Stdout, []string{"stage", "reads", "listens/s", "minimal Goka", "÷ minimal", "perf tool", "÷ perf tool", "stateful Goka", "÷ stateful"}, rows)
	fmt.Println()
	verdict := "met"
	if aggRatio < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("goal aggregator ÷ minimal Goka processor ≥ 0.5: %s (%.2f)\n", verdict, aggRatio)
	verdict = "met"
	if statefulRatio < 0.7 {
		verdict = "NOT met"
	}
	fmt.Printf("goal aggregator ÷ stateful Goka reference ≥ 0.7: %s (%.2f)\n", verdict, statefulRatio)
	fmt.Printf("changelog bytes per listen: %.0f (aggregator table on disk %s, LZ4, before compaction); raw bytes per listen: %.0f\n",
		float64(changelog)/float64(n), benchkit.MiB(changelog), float64(rawBytes)/float64(n))
	if m := results["aggregator"].metrics; m["topk_aggregator_state_bytes_count"] > 0 {
		fmt.Printf("user-day values the aggregator wrote: %.0f for %d listens, %.0f bytes each on average before compression (changelog and recent topic each)\n",
			m["topk_aggregator_state_bytes_count"], n, m["topk_aggregator_state_bytes_sum"]/m["topk_aggregator_state_bytes_count"])
	}
	fmt.Printf("recent topic bytes per listen: %.0f (the aggregator's copy of recent user-days, on disk %s, LZ4, before compaction)\n",
		float64(recent)/float64(n), benchkit.MiB(recent))
	fmt.Printf("changelog bytes per listen of the stateful reference: %.0f (its table on disk %s, LZ4, before compaction)\n",
		float64(refChangelog)/float64(n), benchkit.MiB(refChangelog))
	fmt.Printf("peak RSS: topk ingest %s, topk aggregator %s, bench process (producer, minimal processor) %s\n",
		benchkit.MiB(results["ingest"].peak), benchkit.MiB(results["aggregator"].peak), benchkit.MiB(benchkit.SelfPeakRSS()))
	fmt.Printf("peak RSS of the stateful reference: %s\n", benchkit.MiB(results["stateful"].peak))
	us := func(r result) string { return fmt.Sprintf("%.1f µs", float64(r.cpu.Microseconds())/float64(n)) }
	fmt.Printf("CPU per listen (user+system, first record to the N-th): topk ingest %s, topk aggregator %s, stateful reference %s\n",
		us(results["ingest"]), us(results["aggregator"]), us(results["stateful"]))
	fmt.Println("minimal Goka = decode the JSON, emit it, count; perf tool = kafka-consumer-perf-test fetch rate (no processing)")
	fmt.Println("stateful Goka = no decode, one int64 per user|day (goka.Persist, Goka's int64 codec), the aggregator's Settings and LevelDB storage, its own process")
	if withSitewide {
		agg := results["aggregator"]
		fmt.Printf("sitewide cost: topk sitewide %.0f listens/s = %.2f × the aggregator's %.0f; CPU per listen %s (aggregator %s); "+
			"%.0f table records read, %.0f Counts emitted, %.0f Counts applied (%.0f read in all, spills included); peak RSS %s\n",
			site.rate, site.rate/agg.rate, agg.rate, us(site), us(agg),
			family(site.metrics, "topk_fanout_states_total"), family(site.metrics, "topk_fanout_counts_total"),
			site.metrics[`topk_sitewide_counts_total{outcome="applied"}`], family(site.metrics, "topk_sitewide_counts_total"), benchkit.MiB(site.peak))
		fmt.Println("topk sitewide = the fan-out (the aggregator's table → Counts), the sitewide group (Counts → table and recent topic) and the")
		fmt.Println("sitewide flusher (→ Cassandra, own keyspace) in one process, from its first table record until both groups have read everything")
	}
	if prof := os.Getenv("TOPK_BENCH_PROFILE"); prof != "" {
		fmt.Printf("CPU profiles (%s from each process's first record) in %s\n", profileFor, prof)
	}
	return nil
}

// result is one process's run over the backlog.
type result struct {
	rate float64       // listens/s from its first record to its n-th
	peak int64         // peak RSS, bytes
	cpu  time.Duration // processor time from its first record to its n-th
	// metrics is the process's /metrics at the end.
	metrics map[string]float64
}

// perfTool runs kafka-consumer-perf-test and returns its fetch rate
// (messages/s excluding the group join).
func perfTool(e *benchkit.Env, topic string, n int) (float64, error) {
	fmt.Fprintln(os.Stderr, "kafka-consumer-perf-test …")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := e.Tool(ctx, "kafka-consumer-perf-test", "--bootstrap-server", strings.Join(e.Config.Kafka.Brokers, ","),
		"--topic", topic, "--messages", strconv.Itoa(n), "--group", e.Config.Namespace+".perf", "--timeout", "120000")
	if err != nil {
		return 0, err
	}
	// header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	if len(f) < 10 {
		return 0, fmt.Errorf("unexpected output:\n%s", out)
	}
	return strconv.ParseFloat(strings.TrimSpace(f[9]), 64)
}

// minimalGoka is the reference Goka processor: decode the JSON, emit it,
// count. Timed from its first record to its n-th.
func minimalGoka(e *benchkit.Env, raw string, n int) (float64, error) {
	out := e.Config.Namespace + ".bench-minimal-out"
	if err := kafka.EnsureTopics(context.Background(), e.Admin, 1, []kafka.TopicSpec{{Name: out, Partitions: int32(e.Config.Kafka.RawPartitions)}}, e.Log); err != nil {
		return 0, err
	}
	var count atomic.Int64
	var first atomic.Int64
	done := make(chan time.Time, 1)
	type rec struct {
		UserID     string `json:"user_id"`
		PlayedAt   string `json:"played_at"`
		ArtistName string `json:"artist_name"`
		TrackName  string `json:"track_name"`
	}
	g := goka.DefineGroup(goka.Group(e.Config.Namespace+".bench-minimal"),
		goka.Input(goka.Stream(raw), processors.RawCodec{}, func(ctx goka.Context, msg any) {
			var r rec
			if err := json.Unmarshal(msg.([]byte), &r); err != nil {
				ctx.Fail(err)
			}
			first.CompareAndSwap(0, time.Now().UnixNano())
			ctx.Emit(goka.Stream(out), r.UserID, msg)
			if count.Add(1) == int64(n) {
				done <- time.Now()
			}
		}),
		goka.Output(goka.Stream(out), processors.RawCodec{}),
	)
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor, Log: e.Log}
	p, err := goka.NewProcessor(e.Config.Kafka.Brokers, g, s.Options("topk-bench-minimal", "")...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	bar := benchkit.Bar(int64(n), "minimal Goka processor")
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case end := <-done:
			_ = bar.Finish()
			cancel()
			<-errc
			return float64(n) / end.Sub(time.Unix(0, first.Load())).Seconds(), nil
		case err := <-errc:
			cancel()
			return 0, fmt.Errorf("stopped early: %v", err)
		case <-tick.C:
			_ = bar.Set64(count.Load())
		case <-time.After(10 * time.Minute):
			cancel()
			return 0, fmt.Errorf("timed out at %d of %d", count.Load(), n)
		}
	}
}

// stage times process p (a topk service or the stateful reference) on the
// backlog of topic from its first record to its n-th (from its metric),
// then waits until its group's committed lag is zero. It returns the rate,
// the process's peak RSS and its processor time over those records, and
// stops it. With TOPK_BENCH_PROFILE=dir it saves a CPU profile of the
// process from its first record, as <name>.pprof.
func stage(e *benchkit.Env, p *benchkit.Process, label, logPath, group, topic, metric string, n int) (result, error) {
	defer p.Stop()
	bar := benchkit.Bar(int64(n), label)
	var start time.Time
	var cpu0 time.Duration
	var res result
	profiled := make(chan struct{})
	close(profiled)
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("timed out; log in %s", logPath)
		}
		if p.Exited() {
			out, _ := os.ReadFile(logPath)
			return result{}, fmt.Errorf("ended early (%v):\n%s", p.ExitError(), out)
		}
		got := familyOf(p, metric)
		if start.IsZero() && got > 0 {
			start, cpu0 = time.Now(), p.CPUTime()
			if prof := os.Getenv("TOPK_BENCH_PROFILE"); prof != "" {
				profiled = make(chan struct{})
				go func() {
					defer close(profiled)
					p.Profile(filepath.Join(prof, p.Name+".pprof"), 0, profileFor)
				}()
			}
		}
		_ = bar.Set64(int64(got))
		if got >= float64(n) {
			res.rate = float64(n) / time.Since(start).Seconds()
			res.cpu = p.CPUTime() - cpu0
			break
		}
		// A scrape of topk's /metrics costs the process CPU (every 20 ms
		// throughout, gzipped, was 2 µs per listen of the aggregator's 40):
		// every 50 ms near the first and the n-th record, which time the
		// rate, up to 500 ms between.
		wait := 50 * time.Millisecond
		if el := time.Since(start); !start.IsZero() && el > time.Second && got > 0 {
			left := time.Duration((0.95*float64(n) - got) / got * float64(el))
			wait = min(max(left/2, wait), 500*time.Millisecond)
		}
		time.Sleep(wait)
	}
	_ = bar.Finish()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.WaitCaughtUp(ctx, e.Client, e.Admin, group, topic, nil); err != nil {
		return result{}, err
	}
	<-profiled
	res.peak = p.PeakRSS()
	res.metrics, _ = p.Metrics()
	return res, nil
}

// familyOf sums the series of one metric family on p's /metrics (0 when
// it does not answer yet). Process.Metrics asks without gzip, which would
// cost the measured process CPU on every poll.
func familyOf(p *benchkit.Process, name string) float64 {
	m, _ := p.Metrics()
	return family(m, name)
}

// family sums the series of one metric family in m (Process.Metrics).
func family(m map[string]float64, name string) float64 {
	var sum float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

// statefulGroup is the stateful reference's group in the bench namespace;
// its table is goka.GroupTable of it.
func statefulGroup(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, "bench-stateful"))
}

// statefulMetric is the listens the stateful reference has counted, on its
// /metrics.
const statefulMetric = "bench_stateful_listens_total"

// statefulReference runs the stateful reference as its own process (this
// program again, -reference stateful) on the valid topic's backlog, timed
// and caught up like the aggregator.
func statefulReference(e *benchkit.Env, dir string, n int) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	logPath := filepath.Join(dir, "stateful.log")
	p, err := e.StartProgram(logPath, e.Config, self, "-reference", "stateful")
	if err != nil {
		return result{}, err
	}
	p.Name = "stateful"
	return stage(e, p, "stateful Goka reference", logPath, string(statefulGroup(e.Config.Namespace)), string(e.Topics.Valid), statefulMetric, n)
}

// runStatefulReference is the reference process: one int64 counter per
// user|day key of user.listen.valid, built like the aggregator (the same
// processors.Settings as cmd/topk fills them, its table topic created the
// same way, its storage directory claimed the same way, so the same
// consumer group builder, LevelDB storage and producer), without decoding
// the listen. It serves /metrics and /debug/pprof/ on the aggregator's ops
// port and runs until SIGTERM.
func runStatefulReference() error {
	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	log := ops.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	s := processors.Settings{
		Brokers:         cfg.Kafka.Brokers,
		Replication:     cfg.Kafka.ReplicationFactor,
		MinInsync:       cfg.Kafka.MinInsyncReplicas,
		StateDir:        cfg.Pipeline.StateDir,
		MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Log:             log,
	}
	valid := listen.NewTopics(cfg.Namespace).Valid
	group := statefulGroup(cfg.Namespace)
	if _, err := s.EnsureTable(context.Background(), goka.GroupTable(group), valid); err != nil {
		return err
	}
	dir, release, err := processors.StorageDir(cfg.Pipeline.StateDir, string(group))
	if err != nil {
		return err
	}
	defer release()

	var count atomic.Int64
	g := goka.DefineGroup(group,
		goka.Input(valid, processors.RawCodec{}, func(ctx goka.Context, _ any) {
			n, _ := ctx.Value().(int64)
			ctx.SetValue(n + 1)
			count.Add(1)
		}),
		goka.Persist(new(codec.Int64)),
	)
	p, err := goka.NewProcessor(s.Brokers, g, s.Options(string(group), dir)...)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s %d\n", statefulMetric, count.Load())
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Ops.Aggregator)), Handler: mux}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops listener", "err", err)
		}
	}()
	defer srv.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return p.Run(ctx)
}

// sitewideStage runs topk sitewide on the aggregator's table (n listens'
// user-day states), in a keyspace of its own for the sitewide flusher,
// and times it from its first table record until the fan-out has read
// every record of the table and the sitewide group every Count emitted
// (the fan-out's, and the group's own re-emits to spill children), both
// from one scrape of the process's /metrics. The rate is n listens over
// that time; cpu the process's CPU over it. The groups' commits are then
// awaited (not timed).
func sitewideStage(e *benchkit.Env, dir string, n int) (result, error) {
	ctx := context.Background()
	table := string(aggregator.Table(e.Config.Namespace))
	records, err := topicRecords(e, table)
	if err != nil {
		return result{}, err
	}
	cfg := e.Config
	cfg.Cassandra.Keyspace = "topk_" + cfg.Namespace
	cc := wiring.Cassandra(cfg.Cassandra)
	if err := cassandra.Migrate(ctx, cc, e.Log); err != nil {
		return result{}, fmt.Errorf("cassandra keyspace for the sitewide flusher: %w", err)
	}
	defer func() { _ = cassandra.DropKeyspace(context.Background(), cc, cfg.Cassandra.Keyspace) }()
	// The counts topic before the process: its sitewide group would
	// otherwise wait out a backoff until the fan-out has made it.
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor, Log: e.Log}
	if err := fanout.EnsureCounts(ctx, set, cfg.Namespace); err != nil {
		return result{}, err
	}
	logPath := filepath.Join(dir, "sitewide.log")
	p, err := e.StartConfig(logPath, cfg, "sitewide")
	if err != nil {
		return result{}, err
	}
	defer p.Stop()
	bar := benchkit.Bar(records, "topk sitewide (table records)")
	profiled := make(chan struct{})
	close(profiled)
	var start time.Time
	var cpu0 time.Duration
	var res result
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("timed out; log in %s", logPath)
		}
		if p.Exited() {
			out, _ := os.ReadFile(logPath)
			return result{}, fmt.Errorf("ended early (%v):\n%s", p.ExitError(), out)
		}
		m, _ := p.Metrics()
		states := family(m, "topk_fanout_states_total")
		if start.IsZero() && states > 0 {
			start, cpu0 = time.Now(), p.CPUTime()
			if prof := os.Getenv("TOPK_BENCH_PROFILE"); prof != "" {
				profiled = make(chan struct{})
				go func() {
					defer close(profiled)
					p.Profile(filepath.Join(prof, "sitewide.pprof"), 0, profileFor)
				}()
			}
		}
		_ = bar.Set64(int64(states))
		emitted := family(m, "topk_fanout_counts_total") + m[`topk_sitewide_counts_total{outcome="forwarded"}`] + m[`topk_sitewide_counts_total{outcome="moved"}`]
		if states >= float64(records) && family(m, "topk_sitewide_counts_total") >= emitted {
			res.rate = float64(n) / time.Since(start).Seconds()
			res.cpu = p.CPUTime() - cpu0
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = bar.Finish()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := kafka.WaitCaughtUp(wctx, e.Client, e.Admin, string(fanout.Group(e.Config.Namespace)), table, nil); err != nil {
		return result{}, err
	}
	if err := kafka.WaitCaughtUp(wctx, e.Client, e.Admin, string(sitewide.Group(e.Config.Namespace)), string(e.Topics.Counts), nil); err != nil {
		return result{}, err
	}
	<-profiled
	res.peak = p.PeakRSS()
	res.metrics, _ = p.Metrics()
	return res, nil
}

// topicRecords is the number of records in topic (newest minus oldest
// offset, summed over its partitions).
func topicRecords(e *benchkit.Env, topic string) (int64, error) {
	parts, err := e.Client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range parts {
		hi, err := e.Client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		lo, err := e.Client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, err
		}
		sum += hi - lo
	}
	return sum, nil
}
