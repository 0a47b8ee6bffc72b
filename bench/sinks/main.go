// Command sinks is `make bench-sinks`: how fast the two Cassandra sinks
// write an import, beside a bare gocql writer of the same rows on the same
// node in the same run.
//
// The import (-users × -days user-days over the last three years, -n
// listens spread evenly over them, user by user, each user's history
// oldest first) goes the real way: produced to user.listen.raw of the
// benchmark's namespace, then `topk ingest` and `topk aggregator` run as
// processes until their groups have committed everything, so
// user.listen.valid and the aggregator's table topic are what production
// would hold. They are stopped; then, each on its own backlog and as its
// own process started after the backlog exists:
//
//   - `topk raw-writer` (user.listen.valid → raw_listens), timed from its
//     first written CQL batch (topk_raw_writer_rows_total > 0) until its
//     sink has written and marked every record of the topic
//     (topk_sink_messages_written_total);
//   - `topk flusher` (the table topic → day_items, user_days, month_items,
//     year_items), timed from its first day written
//     (topk_flusher_rows_written_total{table="day_items"} > 0) until its
//     sink has marked every record, which it does only after the rollup
//     round serving the record's flush is done.
//
// Both are then run until their committed lag is zero.
//
// The reference is a plain gocql writer in this process, on a keyspace of
// its own on the same node, writing the same rows with the sinks'
// statements, batching and concurrency (bare.go), computed from the same
// generated listens (data.go): raw_listens grouped per Cassandra partition
// as unlogged batches, 8 groups at a time per Kafka partition's batch of
// 1000; day_items per user-day in one batch USING TIMESTAMP plus user_days
// per user of a flush, 4 requests in flight; then every month and year
// rollup written once in its final state. What the reference does not do:
// consume Kafka, decode, coalesce, read anything back (the flusher reads
// user_days once per user and rollup round, and sometimes day_items and
// month_items, to recompute rollups), recompute a rollup more than once
// (the flusher does when a user's days fall into two waves of flushes), or
// wait between writes (a flusher round waits, up to the flush interval,
// for the partitions about to submit, so that it serves a whole wave).
// The flusher's user-days/s is compared with the reference's day plus
// rollup writes; the ratio against day writes alone is printed too.
//
// The order is bare raw_listens, topk raw-writer, topk flusher, bare day
// writes, bare rollup writes. Between stages the benchmark waits for
// Cassandra to go quiet (memtable flushes, compactions of the previous
// stage), up to -settle. Cassandra's CPU (from
// .runtime/cassandra/cassandra.pid), the writer's CPU and the whole
// machine's are sampled over each timed stage: on a machine shared with
// other work the figures move, the machine-busy column says how much.
//
// At the end both keyspaces are scanned and every table compared with what
// the generated listens must give (row count, partitions, and a digest of
// every row's content), so a fast wrong write shows.
//
// -diagnose then runs the flusher once more, in this process on a third
// keyspace with gocql observers, and prints its CQL requests by kind (count,
// mean latency, share of request time) and how many it kept in flight,
// beside the same for the bare day and rollup writes; -diagnose-log FILE
// keeps that flusher's debug log (one line per rollup round: users,
// partitions served, how long it waited for them and took). -profile DIR (or
// TOPK_BENCH_PROFILE) saves a CPU profile of each topk stage from its first
// write.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/store/cassandra"
)

type options struct {
	users, days, n int
	verify         bool
	settle         time.Duration
	profile        string
	profileFor     time.Duration
	diagnose       bool
	diagnoseLog    string
}

func main() {
	var o options
	flag.IntVar(&o.users, "users", 10_000, "users")
	flag.IntVar(&o.days, "days", 100, "distinct days of each user, within the last three years")
	flag.IntVar(&o.n, "n", 1_000_000, "listens, spread evenly over the users' days")
	flag.BoolVar(&o.verify, "verify", true, "scan both keyspaces at the end and compare every table with the input")
	flag.DurationVar(&o.settle, "settle", time.Minute, "longest wait for Cassandra to go quiet between stages")
	flag.StringVar(&o.profile, "profile", os.Getenv("TOPK_BENCH_PROFILE"), "directory for CPU profiles of the two topk stages (default $TOPK_BENCH_PROFILE)")
	flag.DurationVar(&o.profileFor, "profile-for", 10*time.Second, "length of each CPU profile, from the stage's first write")
	flag.BoolVar(&o.diagnose, "diagnose", false, "then run the flusher again in this process with every CQL request observed, and print where its time goes beside the bare writer's")
	flag.StringVar(&o.diagnoseLog, "diagnose-log", "", "with -diagnose: write that flusher's debug log (its rollup rounds among others) to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sinks:", err)
		os.Exit(1)
	}
}

// bench is one run: the environment, the two keyspaces, the processes.
type bench struct {
	o       options
	e       *benchkit.Env
	dir     string
	refKS   string
	diagKS  string
	cassPID int

	mu    sync.Mutex
	procs []*benchkit.Process
}

func (b *bench) start(name string, args ...string) (*benchkit.Process, error) {
	p, err := b.e.Start(filepath.Join(b.dir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// stop stops p and forgets it.
func (b *bench) stop(p *benchkit.Process) {
	b.mu.Lock()
	i := slices.Index(b.procs, p)
	if i >= 0 {
		b.procs = slices.Delete(b.procs, i, i+1)
	}
	b.mu.Unlock()
	if i >= 0 {
		p.Stop()
	}
}

// stopAll stops the processes still running (an interrupted run).
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := slices.Clone(b.procs)
	b.mu.Unlock()
	for _, p := range procs {
		b.stop(p)
	}
}

func run(o options) error {
	if o.users <= 0 || o.n <= 0 || o.days <= 0 || o.days > span {
		return fmt.Errorf("need -users > 0, -n > 0 and 0 < -days ≤ %d", span)
	}
	if o.n < o.users*o.days {
		fmt.Fprintf(os.Stderr, "bench-sinks: -n %d < -users × -days = %d: each user gets n/users = %d days of one listen (lower -users to keep the shape)\n",
			o.n, o.users*o.days, o.n/o.users)
	}
	e, err := benchkit.Setup(context.Background(), "sinks")
	if err != nil {
		return err
	}
	ns := e.Config.Namespace
	e.Config.Cassandra.Keyspace = "topk_" + ns
	b := &bench{o: o, e: e, refKS: "topk_" + ns + "_ref", diagKS: "topk_" + ns + "_diag"}
	dir, remove, err := e.WorkDir("sinks")
	if err != nil {
		e.Close()
		return err
	}
	b.dir = dir
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			b.stopAll()
			for _, ks := range []string{e.Config.Cassandra.Keyspace, b.refKS, b.diagKS} {
				if err := cassandra.DropKeyspace(context.Background(), wiring.Cassandra(e.Config.Cassandra), ks); err != nil {
					fmt.Fprintf(os.Stderr, "bench-sinks: dropping keyspace %s: %v\n", ks, err)
				}
			}
			e.Close()
			remove()
		})
	}
	defer cleanup()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigc
		fmt.Fprintln(os.Stderr, "bench-sinks: interrupted, stopping processes, removing topics and keyspaces")
		cleanup()
		os.Exit(1)
	}()
	b.cassPID = cassandraPID(e)

	ctx := context.Background()
	refCfg := wiring.Cassandra(e.Config.Cassandra)
	refCfg.Keyspace = b.refKS
	if err := cassandra.Migrate(ctx, wiring.Cassandra(e.Config.Cassandra), e.Log); err != nil {
		return err
	}
	if err := cassandra.Migrate(ctx, refCfg, e.Log); err != nil {
		return err
	}

	// The import, the real way.
	gen := newGenerator(o.users, o.days, o.n, e.Config.Kafka.ValidPartitions)
	ds := gen.ds
	fmt.Fprintf(os.Stderr, "bench-sinks: namespace %s, keyspaces %s and %s\n", ns, e.Config.Cassandra.Keyspace, b.refKS)
	if _, err := e.Produce(string(e.Topics.Raw), o.n, gen.next); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-sinks: %d listens, %d user-days, %d user-months, %d user-years, %d plays counted\n",
		ds.listens, ds.userDays, len(ds.months), len(ds.years), ds.counted)
	if err := b.upstream(); err != nil {
		return err
	}
	validRecords, err := records(e.Client, string(e.Topics.Valid))
	if err != nil {
		return err
	}
	tableRecords, err := records(e.Client, string(aggregator.Table(ns)))
	if err != nil {
		return err
	}
	dlq, err := records(e.Client, string(e.Topics.DLQ))
	if err != nil {
		return err
	}
	if validRecords != int64(ds.listens) || dlq != 0 {
		return fmt.Errorf("upstream: %d valid records (want %d), %d dead letters (want 0); logs in %s", validRecords, ds.listens, dlq, b.dir)
	}
	if tableRecords != ds.counted { // a restart inside the aggregator rewrites some states: harmless
		fmt.Fprintf(os.Stderr, "bench-sinks: %d table records for %d counted listens\n", tableRecords, ds.counted)
	}

	// The stages.
	rec := &recorder{}
	cl := cassandra.NewCluster(refCfg)
	cl.Keyspace = refCfg.Keyspace
	cl.QueryObserver, cl.BatchObserver = rec, rec
	ref, err := cl.CreateSession()
	if err != nil {
		return err
	}
	defer ref.Close()
	bw := &bare{s: ref}
	var results []*result

	b.settle()
	r, err := b.bareStage("bare raw_listens", bw, func() error { return bw.rawListens(ctx, ds) }, int64(ds.listens))
	if err != nil {
		return err
	}
	r.records, r.unit, r.rows, r.userDays = int64(ds.listens), "rows", int64(ds.listens), int64(ds.userDays)
	bareRaw := r
	b.settle()
	rw, err := b.topkStage("raw-writer", "topk_raw_writer_rows_total", "raw_writer", validRecords, string(e.Topics.Valid), rawwriter.Group(ns), int64(ds.listens))
	if err != nil {
		return err
	}
	rw.records, rw.unit, rw.rows, rw.userDays = int64(ds.listens), "rows", int64(ds.listens), int64(ds.userDays)
	rw.ref = bareRaw
	results = append(results, rw, bareRaw)

	var dayRows int64
	for _, p := range ds.dayP {
		for _, st := range p {
			dayRows += int64(len(st.rows))
		}
	}
	b.settle()
	fl, err := b.topkStage("flusher", `topk_flusher_rows_written_total{table="day_items"}`, "flusher", tableRecords, string(aggregator.Table(ns)), flusher.Group(ns), dayRows)
	if err != nil {
		return err
	}
	fl.records, fl.unit, fl.rows, fl.userDays = int64(ds.userDays), "user-days", dayRows, int64(ds.userDays)
	fl.extra += fmt.Sprintf("; rollups written per user-month %.2f, per user-year %.2f (1.00: each written once, as the bare writer does)",
		fl.metrics[`topk_flusher_rollups_written_total{level="month"}`]/float64(len(ds.months)),
		fl.metrics[`topk_flusher_rollups_written_total{level="year"}`]/float64(len(ds.years)))
	b.settle()
	rec.begin()
	bd, err := b.bareStage("bare day writes", bw, func() error { return bw.dayWrites(ctx, ds) }, 0)
	if err != nil {
		return err
	}
	bd.records, bd.unit, bd.rows, bd.userDays = int64(ds.userDays), "user-days", dayRows, int64(ds.userDays)
	var rollRows int64
	for _, p := range append(append([]*period{}, ds.months...), ds.years...) {
		rollRows += int64(len(p.rows))
	}
	br, err := b.bareStage("bare rollup writes", bw, func() error { return bw.rollupWrites(ctx, ds) }, 0)
	if err != nil {
		return err
	}
	bareProfile := newProfile(rec.end(), flushConc)
	br.records, br.unit, br.rows = int64(len(ds.months)+len(ds.years)), "rollups", rollRows
	both := br.plus(bd, "bare day + rollup writes")
	both.records, both.unit, both.rows, both.userDays = int64(ds.userDays), "user-days", dayRows, int64(ds.userDays)
	fl.ref = both
	results = append(results, fl, both, bd, br)

	var check *verification
	if o.verify {
		if check, err = b.check(ctx, ds); err != nil {
			return err
		}
	}
	b.report(ds, results, stages{rw: rw, bareRaw: bareRaw, fl: fl, bd: bd, br: br}, check)
	if o.diagnose {
		p, err := b.diagnoseFlusher(ctx)
		if err != nil {
			return fmt.Errorf("diagnosis: %w", err)
		}
		fmt.Println("\ndiagnosis: every CQL request attempt observed (gocql observers), from the first to the last; the flusher run again in this process on the same backlog")
		p.print(os.Stdout, "flusher (in process)", flushConc)
		bareProfile.print(os.Stdout, "bare day + rollup writes", flushConc)
	}
	if check != nil && !check.ok {
		return errors.New("the tables do not hold what the input must give (see above)")
	}
	return nil
}

// upstream runs topk ingest and topk aggregator until both have committed
// everything, then stops them.
func (b *bench) upstream() error {
	e := b.e
	start := time.Now()
	ing, err := b.start("ingest", "ingest")
	if err != nil {
		return err
	}
	defer b.stop(ing)
	agg, err := b.start("aggregator", "aggregator")
	if err != nil {
		return err
	}
	defer b.stop(agg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, gt := range [][2]string{
		{string(ingest.Group(e.Config.Namespace)), string(e.Topics.Raw)},
		{string(aggregator.Group(e.Config.Namespace)), string(e.Topics.Valid)},
	} {
		bar := benchkit.Bar(-1, "waiting for "+gt[0])
		err := kafka.WaitCaughtUp(ctx, e.Client, e.Admin, gt[0], gt[1], func(lag int64) {
			_ = bar.Set64(lag)
			if ing.Exited() || agg.Exited() {
				cancel()
			}
		})
		_ = bar.Finish()
		if err != nil {
			return fmt.Errorf("%s: %w (logs in %s)", gt[0], err, b.dir)
		}
	}
	fmt.Fprintf(os.Stderr, "bench-sinks: ingest and aggregator done in %v\n", time.Since(start).Round(time.Second))
	return nil
}

// records is the number of records in topic (end minus start offsets).
func records(c sarama.Client, topic string) (int64, error) {
	if err := c.RefreshMetadata(topic); err != nil {
		return 0, err
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		hi, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		lo, err := c.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, err
		}
		n += hi - lo
	}
	return n, nil
}

// result is one timed stage.
type result struct {
	name     string
	records  int64
	unit     string
	rows     int64 // rows written to the stage's main table(s)
	userDays int64
	secs     float64
	rss      int64   // 0: not a process of its own
	cassCPU  float64 // % of one core; < 0: unknown
	procCPU  float64
	busy     float64 // the machine, % of all cores
	ref      *result
	extra    string             // what the stage's process reported
	metrics  map[string]float64 // the stage's process's metrics at the end (topk stages)
	requests int64
}

func (r *result) rowsPerSec() float64     { return float64(r.rows) / r.secs }
func (r *result) userDaysPerSec() float64 { return float64(r.userDays) / r.secs }

// plus is two sequential stages as one.
func (r *result) plus(o *result, name string) *result {
	s := r.secs + o.secs
	avg := func(a, b float64) float64 {
		if a < 0 || b < 0 {
			return -1
		}
		return (a*r.secs + b*o.secs) / s
	}
	return &result{name: name, secs: s, cassCPU: avg(r.cassCPU, o.cassCPU), procCPU: avg(r.procCPU, o.procCPU),
		busy: avg(r.busy, o.busy), requests: r.requests + o.requests}
}

// sample is the CPU counters at one moment.
type sample struct {
	at         time.Time
	cass, proc time.Duration
	cassOK     bool
	busy, all  time.Duration
}

func (b *bench) sample(pid int) sample {
	s := sample{at: time.Now()}
	s.cass, s.cassOK = benchkit.CPUTimeOf(b.cassPID)
	s.proc, _ = benchkit.CPUTimeOf(pid)
	s.busy, s.all = benchkit.SystemCPU()
	return s
}

// fill sets the stage's seconds and CPU shares from two samples.
func (r *result) fill(s0, s1 sample) {
	r.secs = s1.at.Sub(s0.at).Seconds()
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / r.secs }
	r.cassCPU = -1
	if s0.cassOK && s1.cassOK {
		r.cassCPU = pct(s1.cass - s0.cass)
	}
	r.procCPU = pct(s1.proc - s0.proc)
	if s1.all > s0.all {
		r.busy = 100 * float64(s1.busy-s0.busy) / float64(s1.all-s0.all)
	}
}

// bareStage times fn, a bare writer's run, in this process.
func (b *bench) bareStage(name string, bw *bare, fn func() error, total int64) (*result, error) {
	fmt.Fprintf(os.Stderr, "bench-sinks: %s …\n", name)
	req0 := bw.requests.Load()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		bar := benchkit.Bar(total, name+" (rows)")
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		r0 := bw.rows.Load()
		for {
			select {
			case <-stop:
				_ = bar.Finish()
				return
			case <-t.C:
				_ = bar.Set64(bw.rows.Load() - r0)
			}
		}
	}()
	s0 := b.sample(os.Getpid())
	err := fn()
	s1 := b.sample(os.Getpid())
	close(stop)
	<-done
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r := &result{name: name, requests: bw.requests.Load() - req0}
	r.fill(s0, s1)
	return r, nil
}

// pollEvery is how often a topk stage's /metrics is read: its end is
// known to this much, and each read costs the process a little CPU.
const pollEvery = 100 * time.Millisecond

// topkStage runs `topk cmd` on its backlog: timed from the moment
// startMetric is first above zero (its first write) until its sink has
// written and marked target records; then until its group's committed lag
// is zero.
func (b *bench) topkStage(cmd, startMetric, sinkName string, target int64, topic, group string, rows int64) (*result, error) {
	p, err := b.start(cmd, cmd)
	if err != nil {
		return nil, err
	}
	defer b.stop(p)
	doneMetric := `topk_sink_messages_written_total{sink="` + sinkName + `"}`
	bar := benchkit.Bar(rows, "topk "+cmd+" (rows)")
	var s0 sample
	started := false
	deadline := time.Now().Add(60 * time.Minute)
	var m map[string]float64
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("topk %s: timed out; log in %s", cmd, b.dir)
		}
		if p.Exited() {
			out, _ := os.ReadFile(filepath.Join(b.dir, cmd+".log"))
			return nil, fmt.Errorf("topk %s ended early:\n%s", cmd, out)
		}
		m, err = p.Metrics()
		if err != nil {
			time.Sleep(pollEvery)
			continue
		}
		if !started && m[startMetric] > 0 {
			s0, started = b.sample(p.PID()), true
			if b.o.profile != "" {
				go p.Profile(filepath.Join(b.o.profile, cmd+".pprof"), 0, b.o.profileFor)
			}
		}
		_ = bar.Set64(int64(m[startMetric]))
		if started && m[doneMetric] >= float64(target) {
			break
		}
		time.Sleep(pollEvery)
	}
	s1 := b.sample(p.PID())
	_ = bar.Finish()
	r := &result{name: "topk " + cmd}
	r.fill(s0, s1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := kafka.WaitCaughtUp(ctx, b.e.Client, b.e.Admin, group, topic, nil); err != nil {
		return nil, err
	}
	commit := time.Since(s1.at)
	r.rss = p.PeakRSS()
	if m, err = p.Metrics(); err != nil {
		return nil, err
	}
	r.metrics = m
	r.extra = describe(cmd, m, commit)
	if f := m[`topk_sink_write_failures_total{sink="`+sinkName+`"}`]; f > 0 {
		r.extra += fmt.Sprintf("; %.0f failed writes retried", f)
	}
	return r, nil
}

// describe summarizes what a topk sink did, from its metrics.
func describe(cmd string, m map[string]float64, commit time.Duration) string {
	f := func(k string) string { return strconv.FormatFloat(m[k], 'f', 0, 64) }
	var parts []string
	switch cmd {
	case "raw-writer":
		parts = append(parts, f("topk_raw_writer_rows_total")+" rows in "+f("topk_raw_writer_cql_batches_total")+" CQL batches",
			f("topk_raw_writer_known_users_total")+" users_by_prefix rows",
			f(`topk_sink_batches_written_total{sink="raw_writer"}`)+" sink batches")
	case "flusher":
		parts = append(parts, f("topk_flusher_days_written_total")+" user-days written",
			f(`topk_flusher_rollups_written_total{level="month"}`)+" month and "+f(`topk_flusher_rollups_written_total{level="year"}`)+" year rollups written",
			"reads "+f(`topk_flusher_reads_total{table="user_days"}`)+" user_days, "+f(`topk_flusher_reads_total{table="day_items"}`)+" day_items, "+
				f(`topk_flusher_reads_total{table="month_items"}`)+" month_items",
			f(`topk_flusher_rollups_unchanged_total{level="month"}`)+" month and "+f(`topk_flusher_rollups_unchanged_total{level="year"}`)+
				" year rollups recomputed but unchanged (not written)",
			"rollup inputs day batch/cache/read "+f(`topk_flusher_rollup_inputs_total{level="day",source="batch"}`)+"/"+
				f(`topk_flusher_rollup_inputs_total{level="day",source="cache"}`)+"/"+f(`topk_flusher_rollup_inputs_total{level="day",source="read"}`)+
				", month round/cache/days/read "+f(`topk_flusher_rollup_inputs_total{level="month",source="round"}`)+"/"+
				f(`topk_flusher_rollup_inputs_total{level="month",source="cache"}`)+"/"+f(`topk_flusher_rollup_inputs_total{level="month",source="days"}`)+"/"+
				f(`topk_flusher_rollup_inputs_total{level="month",source="read"}`),
			f("topk_flusher_rollup_rounds_total")+" rounds for "+f("topk_flusher_rollup_requests_total")+" flushes, waiting "+
				strconv.FormatFloat(m["topk_flusher_rollup_round_wait_seconds_sum"], 'f', 1, 64)+" s in all for the partitions expected to submit",
			"rows "+f(`topk_flusher_rows_written_total{table="day_items"}`)+" day_items, "+f(`topk_flusher_rows_written_total{table="user_days"}`)+" user_days, "+
				f(`topk_flusher_rows_written_total{table="month_items"}`)+" month_items, "+f(`topk_flusher_rows_written_total{table="year_items"}`)+" year_items")
	}
	parts = append(parts, fmt.Sprintf("committed lag 0 %.1f s after the last mark", commit.Seconds()))
	return strings.Join(parts, "; ")
}

// settle waits until Cassandra has used less than a quarter of a core for
// a second (the previous stage's flushes and compactions are over), up to
// -settle.
func (b *bench) settle() {
	start := time.Now()
	if b.cassPID == 0 {
		time.Sleep(5 * time.Second)
		return
	}
	for time.Since(start) < b.o.settle {
		c0, ok := benchkit.CPUTimeOf(b.cassPID)
		time.Sleep(time.Second)
		c1, _ := benchkit.CPUTimeOf(b.cassPID)
		if !ok || c1-c0 < 250*time.Millisecond {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "bench-sinks: Cassandra quiet after %v\n", time.Since(start).Round(time.Second))
}

// cassandraPID is the local stack's Cassandra (0 when unknown).
func cassandraPID(e *benchkit.Env) int {
	b, err := os.ReadFile(filepath.Join(e.Config.RuntimeDir, "cassandra", "cassandra.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	if _, ok := benchkit.CPUTimeOf(pid); !ok {
		return 0
	}
	return pid
}

// verification is the end-of-run comparison of both keyspaces with the input.
type verification struct {
	rows [][]string
	ok   bool
}

func (b *bench) check(ctx context.Context, ds *dataset) (*verification, error) {
	v := &verification{ok: true}
	got := map[string]tables{}
	for _, ks := range []string{b.e.Config.Cassandra.Keyspace, b.refKS} {
		fmt.Fprintf(os.Stderr, "bench-sinks: scanning %s …\n", ks)
		cfg := wiring.Cassandra(b.e.Config.Cassandra)
		cfg.Keyspace = ks
		cl := cassandra.NewCluster(cfg)
		cl.Keyspace = ks
		cl.Timeout = 30 * time.Second
		cl.Consistency = gocql.LocalQuorum
		s, err := cl.CreateSession()
		if err != nil {
			return nil, err
		}
		t, err := readTables(ctx, s)
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ks, err)
		}
		got[ks] = t
	}
	cmp := func(name, what string, want digest, pick func(tables) digest) {
		r := []string{name, fmt.Sprintf("%d rows / %d %s", want.rows, want.partitions, what)}
		for _, ks := range []string{b.e.Config.Cassandra.Keyspace, b.refKS} {
			d := pick(got[ks])
			mark := "ok"
			if d != want {
				mark = "WRONG"
				v.ok = false
			}
			r = append(r, fmt.Sprintf("%d / %d %s", d.rows, d.partitions, mark))
		}
		v.rows = append(v.rows, r)
	}
	cmp("raw_listens", "user-days", ds.want.raw, func(t tables) digest { return t.raw })
	cmp("day_items", "user-days", ds.want.dayItems, func(t tables) digest { return t.dayItems })
	cmp("user_days", "users", ds.want.userDays, func(t tables) digest { return t.userDays })
	cmp("month_items", "user-months", ds.want.months, func(t tables) digest { return t.months })
	cmp("year_items", "user-years", ds.want.years, func(t tables) digest { return t.years })
	return v, nil
}

// stages names the results the report's notes refer to.
type stages struct{ rw, bareRaw, fl, bd, br *result }

func (b *bench) report(ds *dataset, results []*result, st stages, check *verification) {
	rw, fl, bd := st.rw, st.fl, st.bd
	e := b.e
	fmt.Printf("\nbench-sinks: %d listens, %d users × up to %d days over the last 3 years (%d user-days, %d plays counted), "+
		"valid/table topics %d partitions (%s)\n\n",
		ds.listens, ds.users, ds.days, ds.userDays, ds.counted, e.Config.Kafka.ValidPartitions, time.Now().UTC().Format(time.RFC3339))
	pct := func(x float64) string {
		if x < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f%%", x)
	}
	var rows [][]string
	for _, r := range results {
		ratio := ""
		if r.ref != nil {
			if r.unit == "rows" {
				ratio = fmt.Sprintf("%.2f", r.rowsPerSec()/r.ref.rowsPerSec())
			} else {
				ratio = fmt.Sprintf("%.2f", r.userDaysPerSec()/r.ref.userDaysPerSec())
			}
		}
		rss, ud := "—", "—"
		if r.rss > 0 {
			rss = benchkit.MiB(r.rss)
		}
		if r.userDays > 0 {
			ud = fmt.Sprintf("%.0f", r.userDaysPerSec())
		}
		rows = append(rows, []string{r.name, fmt.Sprintf("%d %s", r.records, r.unit), fmt.Sprintf("%.1f", r.secs),
			fmt.Sprintf("%.0f", r.rowsPerSec()), ud, ratio, rss, pct(r.cassCPU), pct(r.procCPU), pct(r.busy)})
	}
	benchkit.Table(os.Stdout, []string{"stage", "records", "seconds", "rows/s", "user-days/s", "÷ bare", "peak RSS",
		"Cassandra CPU", "writer CPU", "machine busy"}, rows)
	fmt.Println()
	goal := fl.userDaysPerSec() / fl.ref.userDaysPerSec()
	verdict := "met"
	if goal < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("goal flusher user-days/s ≥ 0.5 × bare day + rollup writes: %s (%.2f); ÷ bare day writes alone: %.2f\n",
		verdict, goal, fl.userDaysPerSec()/bd.userDaysPerSec())
	fmt.Printf("raw writer rows/s ÷ bare raw_listens: %.2f\n", rw.rowsPerSec()/rw.ref.rowsPerSec())
	fmt.Println()
	fmt.Printf("rows/s: raw_listens rows (raw), day_items rows (day writes), month_items + year_items rows (rollups); user-days/s: input user-days over the stage's seconds\n")
	fmt.Printf("topk raw-writer: %s\n", rw.extra)
	fmt.Printf("topk flusher: %s\n", fl.extra)
	fmt.Printf("bare writer: %d CQL requests for raw_listens and users_by_prefix; %d for day writes (%d user-days, as many user_days rows); %d for %d month and %d year rollups, each written once; no reads\n",
		st.bareRaw.requests, bd.requests, ds.userDays, st.br.requests, len(ds.months), len(ds.years))
	fmt.Printf("CPU: %% of one core over the stage (Cassandra pid %d; writer = the topk process, or this process for the bare writer); machine busy = all %s cores\n",
		b.cassPID, strconv.Itoa(runtime.NumCPU()))
	fmt.Printf("peak RSS of this process (generated input, producer, bare writer): %s\n", benchkit.MiB(benchkit.SelfPeakRSS()))
	if check != nil {
		fmt.Println("\ncorrectness: both keyspaces scanned; rows / partitions, and a digest of every row's content, against the generated input")
		benchkit.Table(os.Stdout, []string{"table", "want", "topk (" + e.Config.Cassandra.Keyspace + ")", "bare (" + b.refKS + ")"}, check.rows)
	}
}
