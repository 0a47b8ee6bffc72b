// Command scaleout is `make bench-scaleout`: what more copies of the
// aggregator bring, on the brokers the configuration names
// (TOPK_KAFKA_BROKERS: the single-node stack, or the three-broker cluster
// after `eval "$(make -s cluster-env)"`).
//
//  1. Throughput: for 1, 2 and 3 copies (separate `topk aggregator`
//     processes, each with its own TOPK_STATE_DIR and ops port), a fresh
//     namespace — so a fresh group and table — holding the same backlog of N
//     valid listens, produced with Goka's emitter and hasher keyed user|day as
//     ingest writes them; timed from the first record any copy reads to the
//     group's committed lag zero.
//  2. Freshness during a rebalance: listens at a fixed rate into
//     user.listen.raw through topk ingest and two aggregator copies; a third
//     copy joins after 20 s, the first leaves after 40 s. Freshness is the
//     time from producing a listen to its count being in the aggregator's
//     table (its changelog topic, read with a plain consumer and decoded with
//     aggregator.DecodeDay), reported per 5-second window of send time.
//
// Every copy competes for the same CPUs as the others, the brokers and this
// program: on a small machine the figures say what rebalancing costs more
// than what copies add.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

// options are the benchmark's flags.
type options struct {
	n       int
	users   int
	copies  []int
	rate    int
	dur     time.Duration
	join    time.Duration
	leave   time.Duration
	window  time.Duration
	warmup  time.Duration
	fresh   int // users of the freshness phase
	skipTP  bool
	skipFre bool
	keep    bool // keep the logs and state directories
}

func main() {
	var o options
	copies := flag.String("copies", "1,2,3", "aggregator copy counts of the throughput phase")
	flag.IntVar(&o.n, "n", 1_000_000, "valid listens in the backlog of each throughput round")
	flag.IntVar(&o.users, "users", 20_000, "distinct users of the backlog")
	flag.IntVar(&o.rate, "rate", 2000, "listens per second of the freshness phase")
	flag.DurationVar(&o.dur, "duration", 60*time.Second, "how long the freshness phase sends")
	flag.DurationVar(&o.join, "join", 20*time.Second, "when the third copy joins (freshness phase)")
	flag.DurationVar(&o.leave, "leave", 40*time.Second, "when the first copy leaves (freshness phase)")
	flag.DurationVar(&o.window, "window", 5*time.Second, "freshness window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured sending at the rate before the freshness phase")
	flag.IntVar(&o.fresh, "fresh-users", 10_000, "distinct users of the freshness phase")
	flag.BoolVar(&o.skipTP, "skip-throughput", false, "run only the freshness phase")
	flag.BoolVar(&o.skipFre, "skip-freshness", false, "run only the throughput phase")
	flag.BoolVar(&o.keep, "keep", false, "keep each phase's directory (the processes' logs; TOPK_BENCH_LOG_LEVEL=info for more)")
	flag.Parse()
	for _, s := range strings.Split(*copies, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fmt.Fprintln(os.Stderr, "bench-scaleout: -copies: want a list of counts ≥ 1, got", *copies)
			os.Exit(2)
		}
		o.copies = append(o.copies, c)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scaleout:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var rounds []round
	var info clusterInfo
	if !o.skipTP {
		now := time.Now().UTC()
		for _, c := range o.copies {
			r, ci, err := throughput(o, c, now)
			if err != nil {
				return fmt.Errorf("%d copies: %w", c, err)
			}
			rounds, info = append(rounds, r), ci
		}
	}
	var fr *freshnessResult
	if !o.skipFre {
		r, ci, err := freshness(o)
		if err != nil {
			return fmt.Errorf("freshness: %w", err)
		}
		fr, info = &r, ci
	}

	fmt.Printf("\nbench-scaleout (%s)\n", time.Now().UTC().Format(time.RFC3339))
	info.print()
	brokers := "the brokers (on this machine too), "
	if !info.loopback() {
		brokers = ""
	}
	fmt.Printf("NOTE: this machine has %d cores. Every copy, %singest, the producer and this program share them, so a copy added\n"+
		"here adds no CPU: the rows show what coordination costs on one box, not what copies on machines of their own would add.\n", runtime.NumCPU(), brokers)
	if len(rounds) > 0 {
		printThroughput(o, rounds)
	}
	if fr != nil {
		fr.print(o)
	}
	return nil
}

// clusterInfo is what the benchmark ran on.
type clusterInfo struct {
	brokers    []string
	ids        []int32
	topics     []string // "name: 16 partitions, replication 3, min.insync.replicas 2"
	collectErr error
}

func describe(e *benchkit.Env, topics ...string) clusterInfo {
	ci := clusterInfo{brokers: e.Config.Kafka.Brokers}
	for _, b := range e.Client.Brokers() {
		ci.ids = append(ci.ids, b.ID())
	}
	sort.Slice(ci.ids, func(i, j int) bool { return ci.ids[i] < ci.ids[j] })
	meta, err := e.Admin.DescribeTopics(topics)
	if err != nil {
		ci.collectErr = err
		return ci
	}
	for _, m := range meta {
		if m.Err != sarama.ErrNoError || len(m.Partitions) == 0 {
			ci.topics = append(ci.topics, fmt.Sprintf("%s: %v", short(e, m.Name), m.Err))
			continue
		}
		rf := len(m.Partitions[0].Replicas)
		isr := "?"
		//lint:ignore SA1019 one topic's one setting: the single-resource call is enough
		if entries, err := e.Admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: m.Name, ConfigNames: []string{"min.insync.replicas"}}); err == nil {
			for _, c := range entries {
				if c.Name == "min.insync.replicas" {
					isr = c.Value
				}
			}
		}
		ci.topics = append(ci.topics, fmt.Sprintf("%s: %d partitions, replication %d, min.insync.replicas %s", short(e, m.Name), len(m.Partitions), rf, isr))
	}
	sort.Strings(ci.topics)
	return ci
}

func (ci clusterInfo) print() {
	ids := make([]string, len(ci.ids))
	for i, id := range ci.ids {
		ids[i] = strconv.Itoa(int(id))
	}
	fmt.Printf("brokers: %s (TOPK_KAFKA_BROKERS; %d in the cluster, ids %s)\n", strings.Join(ci.brokers, ","), len(ci.ids), strings.Join(ids, ","))
	for _, t := range ci.topics {
		fmt.Println("  " + t)
	}
	if ci.collectErr != nil {
		fmt.Println("  topics: describe failed:", ci.collectErr)
	}
}

// loopback reports whether every broker address is on this machine.
func (ci clusterInfo) loopback() bool {
	for _, b := range ci.brokers {
		host, _, err := net.SplitHostPort(b)
		if err != nil {
			return false
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// short is a topic name without the benchmark's namespace.
func short(e *benchkit.Env, name string) string {
	return strings.TrimPrefix(name, e.Config.Namespace+".")
}

// startCopy starts copy i (from 1) of the aggregator as its own process,
// with its own state directory under dir and its own ops port.
func startCopy(e *benchkit.Env, dir string, i int) (*benchkit.Process, error) {
	cfg := e.Config
	cfg.Pipeline.StateDir = filepath.Join(dir, fmt.Sprintf("state-copy-%d", i))
	p, err := e.StartConfig(filepath.Join(dir, fmt.Sprintf("aggregator-%d.log", i)), cfg, "aggregator")
	if err != nil {
		return nil, fmt.Errorf("start aggregator copy %d: %w", i, err)
	}
	p.Name = fmt.Sprintf("copy %d", i)
	return p, nil
}

// ---- throughput ----

// round is one copy count's run over the backlog.
type round struct {
	copies   int
	produced float64       // listens/s of the emitter filling the backlog
	total    time.Duration // first record → committed lag zero
	settled  time.Duration // first record → group stable with every copy holding partitions (0: never seen)
	// lagAtSettle is the committed lag when the group settled.
	lagAtSettle int64
	afterSettle time.Duration // settled → committed lag zero
	perCopy     []float64     // listens each copy read (counted + duplicates)
	replayed    float64       // listens read more than once (duplicates: re-read after a partition moved)
	invalid     float64       // wrong partition, wrong key, undecodable: must be 0
	cpu         time.Duration // summed over the copies, first record → lag zero
	peak        int64         // largest peak RSS of a copy
	disk        []int64       // each copy's local state on disk after a graceful stop
	busy        float64       // share of the machine's CPU in use, first record → lag zero
}

func throughput(o options, copies int, now time.Time) (round, clusterInfo, error) {
	r := round{copies: copies}
	e, err := benchkit.Setup(context.Background(), "scaleout")
	if err != nil {
		return r, clusterInfo{}, err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("scaleout")
	if err != nil {
		return r, clusterInfo{}, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer remove()
	}

	fmt.Fprintf(os.Stderr, "round of %d copies (namespace %s)\n", copies, e.Config.Namespace)
	if r.produced, err = produceBacklog(e, o, now); err != nil {
		return r, clusterInfo{}, err
	}
	group := string(aggregator.Group(e.Config.Namespace))
	valid := string(e.Topics.Valid)

	procs := make([]*benchkit.Process, copies)
	for i := range procs {
		if procs[i], err = startCopy(e, dir, i+1); err != nil {
			return r, clusterInfo{}, err
		}
		defer procs[i].Stop()
	}
	bar := benchkit.Bar(int64(o.n), fmt.Sprintf("%d aggregator copies", copies))
	var start, settledAt time.Time
	cpu0 := make([]time.Duration, copies)
	var busy0, total0 time.Duration
	var lastLagPoll time.Time
	deadline := time.Now().Add(20 * time.Minute)
	for {
		if time.Now().After(deadline) {
			return r, clusterInfo{}, fmt.Errorf("timed out (-keep keeps the logs)")
		}
		var sum float64
		for i, p := range procs {
			if p.Exited() {
				return r, clusterInfo{}, fmt.Errorf("copy %d ended early (%v):\n%s", i+1, p.ExitError(), logTail(filepath.Join(dir, fmt.Sprintf("aggregator-%d.log", i+1)), 30))
			}
			m, _ := p.Metrics() // uncompressed: gzip would cost the copy CPU
			sum += sumPrefix(m, "topk_aggregator_listens_total")
		}
		if start.IsZero() && sum > 0 {
			start = time.Now()
			busy0, total0 = benchkit.SystemCPU()
			for i, p := range procs {
				cpu0[i] = p.CPUTime()
			}
		}
		_ = bar.Set64(min(int64(sum), int64(o.n)))
		if !start.IsZero() && time.Since(lastLagPoll) >= 200*time.Millisecond {
			lastLagPoll = time.Now()
			if settledAt.IsZero() && groupSettled(e, group, copies) {
				settledAt = time.Now()
				r.lagAtSettle, _ = kafka.GroupLag(context.Background(), e.Client, e.Admin, group, valid)
			}
			if lag, err := kafka.GroupLag(context.Background(), e.Client, e.Admin, group, valid); err == nil && lag == 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	if busy, total := benchkit.SystemCPU(); total > total0 {
		r.busy = float64(busy-busy0) / float64(total-total0)
	}
	_ = bar.Finish()
	r.total = end.Sub(start)
	if !settledAt.IsZero() {
		r.settled, r.afterSettle = settledAt.Sub(start), end.Sub(settledAt)
	}
	for i, p := range procs {
		m, _ := p.Metrics()
		r.perCopy = append(r.perCopy, sumPrefix(m, "topk_aggregator_listens_total"))
		r.replayed += m[`topk_aggregator_listens_total{outcome="duplicate"}`]
		r.invalid += m[`topk_aggregator_listens_total{outcome="invalid"}`]
		r.cpu += p.CPUTime() - cpu0[i]
		r.peak = max(r.peak, p.PeakRSS())
	}
	// Each copy stores only the partitions it owns (no standby): stopped
	// gracefully, its local store is on disk in full.
	for i, p := range procs {
		p.Stop()
		r.disk = append(r.disk, dirBytes(filepath.Join(dir, fmt.Sprintf("state-copy-%d", i+1))))
	}
	return r, describe(e, valid, string(aggregator.Table(e.Config.Namespace)), string(e.Topics.Recent)), nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// logTail is the last n lines of a process's log.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sumPrefix sums the series of one metric family.
func sumPrefix(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// groupSettled reports whether group is stable with n members, each holding
// partitions.
func groupSettled(e *benchkit.Env, group string, n int) bool {
	gs, err := e.Admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(gs) != 1 || gs[0].State != "Stable" || len(gs[0].Members) != n {
		return false
	}
	for _, m := range gs[0].Members {
		a, err := m.GetMemberAssignment()
		if err != nil || a == nil {
			return false
		}
		held := 0
		for _, ps := range a.Topics {
			held += len(ps)
		}
		if held == 0 {
			return false
		}
	}
	return true
}

// produceBacklog writes o.n valid listens to the namespace's
// user.listen.valid as ingest does: canonical JSON keyed user|day, through
// Goka's emitter with its default hasher and the processors' producer
// settings. The listens are the same in every round (seed and clock fixed).
func produceBacklog(e *benchkit.Env, o options, now time.Time) (float64, error) {
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor,
		MaxMessageBytes: e.Config.Kafka.MaxMessageBytes, Log: e.Log}
	em, err := goka.NewEmitter(e.Config.Kafka.Brokers, e.Topics.Valid, processors.RawCodec{},
		goka.WithEmitterClientID("topk-bench-scaleout"),
		goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(s.SaramaConfig("topk-bench-scaleout"))),
		goka.WithEmitterHasher(goka.DefaultHasher()))
	if err != nil {
		return 0, err
	}
	gen := benchkit.NewGeneratorAt(1, o.users, now)
	var failed atomic.Pointer[error]
	bar := benchkit.Bar(int64(o.n), "producing the backlog (valid, Goka emitter)")
	start := time.Now()
	for i := 0; i < o.n; i++ {
		_, raw := gen.Next()
		l, err := listen.Parse(raw, now)
		if err != nil {
			return 0, fmt.Errorf("generated listen: %w", err)
		}
		v, err := listen.Codec{}.Encode(l)
		if err != nil {
			return 0, err
		}
		pr, err := em.Emit(l.Key(), v)
		if err != nil {
			return 0, err
		}
		pr.Then(func(err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		if i%1000 == 0 {
			_ = bar.Set(i)
		}
	}
	if err := em.Finish(); err != nil {
		return 0, err
	}
	_ = bar.Finish()
	if p := failed.Load(); p != nil {
		return 0, fmt.Errorf("emit: %w", *p)
	}
	return float64(o.n) / time.Since(start).Seconds(), nil
}

func printThroughput(o options, rounds []round) {
	fmt.Printf("\nthroughput: a backlog of %d valid listens (%d users), each copy count a fresh group and table on its own copy of it;\n"+
		"timed from the first record any copy reads to the group's committed lag zero\n\n", o.n, o.users)
	f0 := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
	var rows [][]string
	base := 0.0
	for _, r := range rounds {
		if r.copies == 1 {
			base = float64(o.n) / r.total.Seconds()
		}
	}
	for _, r := range rounds {
		rate := float64(o.n) / r.total.Seconds()
		ratio := "—"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", rate/base)
		}
		settled, after := "never", "—"
		if r.settled > 0 || r.afterSettle > 0 {
			settled = secs(r.settled)
			if r.afterSettle > 0 {
				after = f0(float64(r.lagAtSettle) / r.afterSettle.Seconds())
			}
		}
		per := make([]string, len(r.perCopy))
		for i, v := range r.perCopy {
			per[i] = f0(v)
		}
		disk := make([]string, len(r.disk))
		for i, b := range r.disk {
			disk[i] = fmt.Sprintf("%.1f", float64(b)/(1<<20))
		}
		rows = append(rows, []string{strconv.Itoa(r.copies), f0(rate), ratio, secs(r.total), settled, after,
			f0(r.replayed), fmt.Sprintf("%.1f", float64(r.cpu.Microseconds())/float64(o.n)), fmt.Sprintf("%.0f%%", 100*r.busy),
			benchkit.MiB(r.peak), strings.Join(per, "/"), strings.Join(disk, "/"), f0(r.produced)})
	}
	benchkit.Table(os.Stdout, []string{"copies", "listens/s", "÷ 1 copy", "first record → lag 0 s", "settled at s", "listens/s once settled",
		"re-read", "CPU µs/listen", "machine busy", "peak RSS (largest copy)", "read per copy", "state MiB per copy", "backlog produced/s"}, rows)
	for _, r := range rounds {
		if r.invalid > 0 {
			fmt.Printf("WARNING: %d copies: %.0f listens were invalid (wrong partition, wrong key, undecodable): the backlog is not what ingest writes\n", r.copies, r.invalid)
		}
	}
	fmt.Println("settled = the group Stable with every copy holding partitions (polled every 200 ms); listens/s once settled = the committed lag")
	fmt.Println("then ÷ the time to lag zero. re-read = duplicates: records read again by a partition's next owner after a rebalance")
	fmt.Println("(already counted, so not counted twice). Commits follow processing by up to 1 s (sarama's auto-commit interval), which a")
	fmt.Println("small backlog feels. CPU = user+system of all copies from the first record to lag zero; machine busy = the share of all")
	fmt.Println("cores in use meanwhile (everything on the machine: 100% means the copies wanted more CPU than there was).")
}

// ---- freshness ----

// sample is one listen's freshness.
type sample struct {
	sent time.Duration // since the steady phase began
	took time.Duration
}

// event is something that happened to the group, at a time since the
// steady phase began.
type event struct {
	at   time.Duration
	what string
	// mark tags the event's window in the table ("copy 3 joins").
	mark string
	// state is the group's state, for a group event.
	state string
	// until ends a stall.
	until time.Duration
}

type freshnessResult struct {
	sent    int
	rate    float64
	samples []sample
	unseen  []time.Duration // send times of listens never seen in the table
	events  []event
	users   int
}

// pending is a listen sent and not yet seen: the count its user-day must
// reach, and when it was sent.
type pending struct {
	ord  uint32
	sent time.Time
}

func freshness(o options) (freshnessResult, clusterInfo, error) {
	var res freshnessResult
	e, err := benchkit.Setup(context.Background(), "scaleout")
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("scaleout")
	if err != nil {
		return res, clusterInfo{}, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer remove()
	}
	fmt.Fprintf(os.Stderr, "freshness phase (namespace %s)\n", e.Config.Namespace)
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor,
		MinInsync: e.Config.Kafka.MinInsyncReplicas, MaxMessageBytes: e.Config.Kafka.MaxMessageBytes, Log: e.Log}
	table := aggregator.Table(e.Config.Namespace)
	if _, err := s.EnsureTable(context.Background(), table, e.Topics.Valid); err != nil {
		return res, clusterInfo{}, err
	}

	ing, err := e.Start(filepath.Join(dir, "ingest.log"), "ingest")
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer ing.Stop()
	var copies []*benchkit.Process
	defer func() {
		for _, p := range copies {
			p.Stop()
		}
	}()
	for i := 1; i <= 2; i++ {
		p, err := startCopy(e, dir, i)
		if err != nil {
			return res, clusterInfo{}, err
		}
		copies = append(copies, p)
	}

	// The table reader: every changelog record, decoded; a user-day's
	// count reaching a listen's ordinal means that listen is counted.
	var mu sync.Mutex
	waiting := map[string][]pending{}
	var got []sample
	var t0 time.Time // start of the steady phase; zero while warming up
	warm := 0
	seen := func(key string, total uint32) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		w := waiting[key]
		i := 0
		for ; i < len(w) && w[i].ord <= total; i++ {
			if t0.IsZero() || w[i].sent.Before(t0) {
				warm++
				continue
			}
			got = append(got, sample{sent: w[i].sent.Sub(t0), took: now.Sub(w[i].sent)})
		}
		if i == len(w) {
			delete(waiting, key)
		} else if i > 0 {
			waiting[key] = w[i:]
		}
	}
	consumer, err := sarama.NewConsumerFromClient(e.Client)
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer consumer.Close()
	parts, err := e.Client.Partitions(string(table))
	if err != nil {
		return res, clusterInfo{}, err
	}
	var decodeErrs atomic.Int64
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(string(table), p, sarama.OffsetOldest)
		if err != nil {
			return res, clusterInfo{}, err
		}
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() {
				d, err := aggregator.DecodeDay(m.Value)
				if err != nil {
					decodeErrs.Add(1)
					continue
				}
				seen(string(m.Key), d.Total)
			}
		}()
	}

	// Listens: user u of fresh-users, played a second ago, a track of its
	// own (so no two listens are one), keyed by user as a crawler sends.
	producer, err := sarama.NewAsyncProducerFromClient(e.Client)
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer producer.AsyncClose()
	go func() {
		for err := range producer.Errors() {
			fmt.Fprintln(os.Stderr, "produce:", err)
		}
	}()
	go func() {
		for range producer.Successes() {
		}
	}()
	ords := map[string]uint32{}
	seq := 0
	send := func(user string) {
		now := time.Now()
		at := now.Add(-time.Second).UTC().Truncate(time.Second)
		seq++
		v := []byte(`{"user_id":"` + user + `","played_at":"` + at.Format(time.RFC3339) +
			`","artist_name":"Artist ` + strconv.Itoa(seq%500) + `","track_name":"Track ` + strconv.Itoa(seq) + `"}`)
		key := listen.DayKey(user, at)
		mu.Lock()
		ords[key]++
		waiting[key] = append(waiting[key], pending{ord: ords[key], sent: now})
		mu.Unlock()
		producer.Input() <- &sarama.ProducerMessage{Topic: string(e.Topics.Raw), Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(v)}
	}

	fmt.Fprintln(os.Stderr, "waiting for ingest and two aggregator copies to take their partitions …")
	group := string(aggregator.Group(e.Config.Namespace))
	for probe := 0; ; probe++ {
		send("probe-" + strconv.Itoa(probe))
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		ok := warm > 0
		mu.Unlock()
		if ok && groupSettled(e, group, 2) {
			break
		}
		for i, p := range append([]*benchkit.Process{ing}, copies...) {
			if p.Exited() {
				log := "ingest.log"
				if i > 0 {
					log = fmt.Sprintf("aggregator-%d.log", i)
				}
				return res, clusterInfo{}, fmt.Errorf("%s ended early (%v):\n%s", p.Name, p.ExitError(), logTail(filepath.Join(dir, log), 30))
			}
		}
		if probe > 240 {
			return res, clusterInfo{}, fmt.Errorf("the pipeline never settled with two copies (-keep keeps the logs)")
		}
	}
	// Warm up at the steady rate (not measured), so the first window
	// starts with the pipeline in its stride.
	wstart := time.Now()
	wn := int(o.warmup.Seconds() * float64(o.rate))
	for i := 0; i < wn; i++ {
		if d := time.Until(wstart.Add(time.Duration(i) * time.Second / time.Duration(o.rate))); d > 0 {
			time.Sleep(d)
		}
		send("warm-" + strconv.Itoa(i%o.fresh))
	}

	// The group's state, polled, and stretches in which no copy counted
	// anything, as events.
	var events []event
	var evMu sync.Mutex
	addEvent := func(ev event) {
		evMu.Lock()
		events = append(events, ev)
		evMu.Unlock()
	}
	var copiesMu sync.Mutex
	started := append([]*benchkit.Process(nil), copies...)
	startedCopies := func() []*benchkit.Process {
		copiesMu.Lock()
		defer copiesMu.Unlock()
		return append([]*benchkit.Process(nil), started...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mu.Lock()
	t0 = time.Now()
	mu.Unlock()
	go watchGroup(ctx, e, group, t0, addEvent)
	go watchStalls(ctx, startedCopies, t0, addEvent)

	n := int(o.dur.Seconds() * float64(o.rate))
	bar := benchkit.Bar(int64(n), fmt.Sprintf("%d listens/s", o.rate))
	joined, left := false, false
	leftDone := make(chan struct{})
	// Paced by the clock: listen i leaves at t0 + i/rate.
	for i := 0; i < n; i++ {
		at := time.Duration(i) * time.Second / time.Duration(o.rate)
		if d := time.Until(t0.Add(at)); d > 0 {
			time.Sleep(d)
		}
		if !joined && at >= o.join {
			joined = true
			p, err := startCopy(e, dir, 3)
			if err != nil {
				return res, clusterInfo{}, err
			}
			copies = append(copies, p)
			copiesMu.Lock()
			started = append(started, p)
			copiesMu.Unlock()
			addEvent(event{at: time.Since(t0), what: "copy 3 started", mark: "copy 3 joins"})
		}
		if !left && at >= o.leave {
			left = true
			leaving := copies[0]
			copies = copies[1:]
			addEvent(event{at: time.Since(t0), what: "copy 1 sent SIGTERM", mark: "copy 1 leaves"})
			go func() {
				leaving.Stop()
				addEvent(event{at: time.Since(t0), what: "copy 1 exited"})
				close(leftDone)
			}()
		}
		send("fresh-" + strconv.Itoa(i%o.fresh))
		if i%200 == 0 {
			_ = bar.Set(i)
		}
	}
	_ = bar.Finish()
	res.rate = float64(n) / time.Since(t0).Seconds()
	res.sent, res.users = n, o.fresh
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		remaining := len(waiting)
		mu.Unlock()
		if remaining == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left {
		<-leftDone
	}
	cancel()
	mu.Lock()
	res.samples = append([]sample(nil), got...)
	for _, w := range waiting {
		for _, p := range w {
			if !p.sent.Before(t0) {
				res.unseen = append(res.unseen, p.sent.Sub(t0))
			}
		}
	}
	mu.Unlock()
	if k := decodeErrs.Load(); k > 0 {
		addEvent(event{what: fmt.Sprintf("%d table records did not decode", k)})
	}
	evMu.Lock()
	res.events = append([]event(nil), events...)
	evMu.Unlock()
	for _, p := range append([]*benchkit.Process{ing}, copies...) {
		if p.Exited() {
			res.events = append(res.events, event{at: time.Since(t0), what: fmt.Sprintf("%s exited by itself (%v)", p.Name, p.ExitError())})
		}
	}
	return res, describe(e, string(e.Topics.Raw), string(e.Topics.Valid), string(table), string(e.Topics.Recent)), nil
}

// watchGroup records the group's state and membership whenever they change.
func watchGroup(ctx context.Context, e *benchkit.Env, group string, t0 time.Time, add func(event)) {
	last := ""
	for ctx.Err() == nil {
		gs, err := e.Admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(gs) == 1 {
			cur := fmt.Sprintf("group %s, %d members", gs[0].State, len(gs[0].Members))
			if cur != last {
				add(event{at: time.Since(t0), what: cur, state: gs[0].State})
				last = cur
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchStalls records every stretch of at least half a second in which no
// copy counted anything (the sum of their topk_aggregator_listens_total,
// polled every 100 ms, a copy that went away keeping its last value).
func watchStalls(ctx context.Context, copies func() []*benchkit.Process, t0 time.Time, add func(event)) {
	last := map[*benchkit.Process]float64{}
	lastRise := time.Now()
	for ctx.Err() == nil {
		for _, p := range copies() {
			m, err := p.Metrics()
			if v := sumPrefix(m, "topk_aggregator_listens_total"); err == nil && v > last[p] {
				last[p] = v
				now := time.Now()
				if gap := now.Sub(lastRise); gap >= 500*time.Millisecond {
					add(event{at: lastRise.Sub(t0), until: now.Sub(t0),
						what: fmt.Sprintf("no copy counted a listen for %.1f s (until %.1f s)", gap.Seconds(), now.Sub(t0).Seconds())})
				}
				lastRise = now
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r freshnessResult) print(o options) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
	fmt.Printf("\nfreshness: %d listens at %.0f/s (target %d/s, %d users) through topk ingest and the aggregator: 2 copies, copy 3 joins at %s,\n"+
		"copy 1 leaves at %s; produce → the listen counted in the aggregator's table (changelog, plain consumer, DecodeDay), by send time\n\n",
		r.sent, r.rate, o.rate, r.users, o.join, o.leave)
	sort.Slice(r.events, func(i, j int) bool { return r.events[i].at < r.events[j].at })

	// Stretches of trouble: the group not Stable, or nothing counted.
	type span struct {
		from, to time.Duration
		what     string
	}
	var trouble []span
	var unstable time.Duration = -1
	for _, ev := range r.events {
		switch {
		case ev.until > 0:
			trouble = append(trouble, span{ev.at, ev.until, "nothing counted"})
		case ev.state == "Stable" && unstable >= 0:
			trouble = append(trouble, span{unstable, ev.at, "rebalance"})
			unstable = -1
		case ev.state != "" && ev.state != "Stable" && unstable < 0:
			unstable = ev.at
		}
	}
	if unstable >= 0 {
		trouble = append(trouble, span{unstable, o.dur, "rebalance"})
	}

	nw := int((o.dur + o.window - 1) / o.window)
	byWin := make([][]time.Duration, nw)
	for _, s := range r.samples {
		w := min(int(s.sent/o.window), nw-1)
		byWin[w] = append(byWin[w], s.took)
	}
	unseen := make([]int, nw)
	for _, u := range r.unseen {
		unseen[min(int(u/o.window), nw-1)]++
	}
	var all []time.Duration
	var rows [][]string
	marks := make([]string, nw)
	for w := 0; w < nw; w++ {
		d := byWin[w]
		all = append(all, d...)
		benchkit.SortDurations(d)
		lo, hi := time.Duration(w)*o.window, min(time.Duration(w+1)*o.window, o.dur)
		var what []string
		for _, ev := range r.events {
			if ev.at >= lo && ev.at < hi && ev.mark != "" {
				what = append(what, ev.mark)
			}
		}
		for _, label := range []string{"rebalance", "nothing counted"} {
			for _, t := range trouble {
				if t.what == label && t.from < hi && t.to >= lo {
					what = append(what, label)
					break
				}
			}
		}
		if len(what) > 0 {
			marks[w] = "  ◀ " + strings.Join(what, ", ")
		}
		rows = append(rows, []string{fmt.Sprintf("%s–%s s", secs(lo), secs(hi)), strconv.Itoa(len(d)), ms(benchkit.Percentile(d, 50)),
			ms(benchkit.Percentile(d, 99)), ms(benchkit.Percentile(d, 100)), strconv.Itoa(unseen[w])})
	}
	benchkit.SortDurations(all)
	rows = append(rows, []string{"all", strconv.Itoa(len(all)), ms(benchkit.Percentile(all, 50)), ms(benchkit.Percentile(all, 99)),
		ms(benchkit.Percentile(all, 100)), strconv.Itoa(len(r.unseen))})
	var b strings.Builder
	benchkit.Table(&b, []string{"sent in", "seen", "p50 ms", "p99 ms", "max ms", "never seen"}, rows)
	for i, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if i >= 1 && i <= nw {
			line += marks[i-1]
		}
		fmt.Println(line)
	}
	fmt.Println("\nevents (s since the first measured listen; group state polled every 100 ms, counts every 100 ms):")
	for _, ev := range r.events {
		fmt.Printf("  %6s  %s\n", secs(ev.at), ev.what)
	}
	verdict := "met"
	if benchkit.Percentile(all, 99) > time.Second || len(r.unseen) > 0 {
		verdict = "NOT met"
	}
	fmt.Printf("goal p99 ≤ 1 s over the whole run (bench-latency's goal), every listen seen: %s\n", verdict)
	fmt.Println("the table is the aggregator's changelog: a listen is fresh once its user-day's value there counts it (what the flusher and views read).")
}
