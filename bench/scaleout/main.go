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
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/bench/benchkit"
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
