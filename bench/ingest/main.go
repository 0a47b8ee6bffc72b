// Command ingest is `make bench-ingest`: it produces N listens into
// user.listen.raw, then measures each stage on its own backlog beside two
// references reading the same topic in the same run: Kafka's
// kafka-consumer-perf-test (the machine's limit) and a minimal Goka
// processor (decode, emit, count). First topk ingest (raw → valid), then the
// aggregator (valid → table), each as its own process, timed from its first
// record to its N-th and run until its committed lag is zero. It prints the
// rates and ratios, the changelog bytes per listen and the peak RSS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/ingest"
)

func main() {
	n := flag.Int("n", 1_000_000, "listens to produce")
	users := flag.Int("users", 20_000, "distinct users")
	flag.Parse()
	if err := run(*n, *users); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

func run(n, users int) error {
	e, err := benchkit.Setup("ingest")
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
	var aggRatio float64
	rss := map[string]int64{}
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
		r, peak, err := stage(e, dir, st.cmd, st.topic, st.metric, n)
		if err != nil {
			return fmt.Errorf("topk %s: %w", st.cmd, err)
		}
		rss[st.cmd] = peak
		if st.cmd == "aggregator" {
			aggRatio = r / minimal
		}
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
		rows = append(rows, []string{"topk " + st.cmd, st.topic[len(e.Config.Namespace)+1:], f(r), f(minimal), fmt.Sprintf("%.2f", r/minimal), f(perf), fmt.Sprintf("%.2f", r/perf)})
	}
	changelog, _ := e.TopicBytes(string(aggregator.Table(e.Config.Namespace)))

	fmt.Printf("\nbench-ingest: %d listens, %d users, raw topic %d partitions, valid %d (%s)\n\n",
		n, users, e.Config.Kafka.RawPartitions, e.Config.Kafka.ValidPartitions, time.Now().UTC().Format(time.RFC3339))
	benchkit.Table(os.Stdout, []string{"stage", "reads", "listens/s", "minimal Goka", "÷ minimal", "perf tool", "÷ perf tool"}, rows)
	fmt.Println()
	verdict := "met"
	if aggRatio < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("goal aggregator ÷ minimal Goka processor ≥ 0.5: %s (%.2f)\n", verdict, aggRatio)
	fmt.Printf("changelog bytes per listen: %.0f (aggregator table on disk %s, LZ4, before compaction); raw bytes per listen: %.0f\n",
		float64(changelog)/float64(n), benchkit.MiB(changelog), float64(rawBytes)/float64(n))
	fmt.Printf("peak RSS: topk ingest %s, topk aggregator %s, bench process (producer, minimal processor) %s\n",
		benchkit.MiB(rss["ingest"]), benchkit.MiB(rss["aggregator"]), benchkit.MiB(benchkit.SelfPeakRSS()))
	fmt.Println("minimal Goka = decode the JSON, emit it, count; perf tool = kafka-consumer-perf-test fetch rate (no processing)")
	return nil
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
	if err := kafka.EnsureTopics(e.Admin, 1, []kafka.TopicSpec{{Name: out, Partitions: int32(e.Config.Kafka.RawPartitions)}}, e.Log); err != nil {
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

// stage runs `topk cmd` as its own process on the backlog of topic and
// times it from its first record to its n-th (from its metric), then waits
// until its group's committed lag is zero. It returns the rate and the
// process's peak RSS.
func stage(e *benchkit.Env, dir, cmd, topic, metric string, n int) (float64, int64, error) {
	p, err := e.Start(filepath.Join(dir, cmd+".log"), cmd)
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop()
	if prof := os.Getenv("TOPK_BENCH_PROFILE"); prof != "" {
		go p.Profile(filepath.Join(prof, cmd+".pprof"), 2*time.Second, 5*time.Second)
	}
	bar := benchkit.Bar(int64(n), "topk "+cmd)
	var start time.Time
	var rate float64
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("timed out; log in %s", dir)
		}
		if p.Exited() {
			out, _ := os.ReadFile(filepath.Join(dir, cmd+".log"))
			return 0, 0, fmt.Errorf("ended early:\n%s", out)
		}
		got, _ := p.Metric(metric)
		if start.IsZero() && got > 0 {
			start = time.Now()
		}
		_ = bar.Set64(int64(got))
		if got >= float64(n) {
			rate = float64(n) / time.Since(start).Seconds()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = bar.Finish()
	group := map[string]string{"ingest": string(ingest.Group(e.Config.Namespace)), "aggregator": string(aggregator.Group(e.Config.Namespace))}[cmd]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.WaitCaughtUp(ctx, e.Client, e.Admin, group, topic, nil); err != nil {
		return 0, 0, err
	}
	return rate, p.PeakRSS(), nil
}
