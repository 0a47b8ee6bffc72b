// Command sinks is `make bench-sinks`: how fast the two Cassandra sinks
// write an import, beside a bare gocql writer of the same rows on the same
// node in the same run.
//
// The import (-users × -days user-days over the last three years, -n
// listens spread evenly over them, user by user, each user's history
// oldest first, some artists and tracks spelled in another case) goes the
// real way: produced to user.listen.raw of the benchmark's namespace, then
// `topk ingest` and `topk aggregator` run as processes until their groups
// have committed everything, so user.listen.valid and the aggregator's
// table topic are what production would hold. They are stopped; then,
// each on its own backlog and as its own process started after the
// backlog exists:
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
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

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
	benchkit.OnInterrupt("bench-sinks: interrupted, stopping processes, removing topics and keyspaces", cleanup)
	b.cassPID = e.CassandraPID()

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
