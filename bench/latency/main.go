// Command latency is `make bench-latency`: listens at a fixed rate into
// user.listen.raw through topk ingest and the aggregator (their own
// processes), and the time from producing each listen to its count
// appearing in the aggregator's table, seen by a Goka view; beside Kafka's
// own EndToEndLatency tool on the same broker in the same run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

func main() {
	rate := flag.Int("rate", 2000, "listens per second")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	flag.Parse()
	if err := run(*rate, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "bench-latency:", err)
		os.Exit(1)
	}
}

func run(rate int, dur time.Duration) error {
	e, err := benchkit.Setup(context.Background(), "latency")
	if err != nil {
		return err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("latency")
	if err != nil {
		return err
	}
	defer remove()

	ref, err := e.EndToEndLatency(context.Background(), 2000)
	if err != nil {
		return fmt.Errorf("EndToEndLatency: %w", err)
	}

	ing, err := e.Start(filepath.Join(dir, "ingest.log"), "ingest")
	if err != nil {
		return err
	}
	defer ing.Stop()
	agg, err := e.Start(filepath.Join(dir, "aggregator.log"), "aggregator")
	if err != nil {
		return err
	}
	defer agg.Stop()

	// Every listen is the first of its own user-day, so the view's first
	// update of a key is that listen arriving.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	seen := func(key string) {
		now := time.Now()
		mu.Lock()
		if t, ok := sent[key]; ok {
			lat = append(lat, now.Sub(t))
			delete(sent, key)
		}
		mu.Unlock()
	}
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor, Log: e.Log}
	if _, err := s.EnsureTable(context.Background(), aggregator.Table(e.Config.Namespace), e.Topics.Valid); err != nil {
		return err
	}
	opts := append(s.ViewOptions("topk-bench-latency-view", ""), goka.WithViewCallback(
		func(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
			seen(key)
			return goka.DefaultUpdate(ctx, st, key, value)
		}))
	view, err := goka.NewView(e.Config.Kafka.Brokers, aggregator.Table(e.Config.Namespace), aggregator.DayCodec{}, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewErr := make(chan error, 1)
	go func() { viewErr <- view.Run(ctx) }()

	// Wait until both processors consume: a probe listen shows in the view.
	producer, err := sarama.NewAsyncProducerFromClient(e.Client)
	if err != nil {
		return err
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
	gen := benchkit.NewGenerator(3, 1)
	send := func(user string) {
		now := time.Now().UTC()
		v := gen.Listen(user, now.Add(-time.Second))
		mu.Lock()
		sent[user+"|"+now.Add(-time.Second).Format("2006-01-02")] = now
		mu.Unlock()
		producer.Input() <- &sarama.ProducerMessage{Topic: string(e.Topics.Raw), Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(v)}
	}
	fmt.Fprintln(os.Stderr, "waiting for ingest and aggregator to take their partitions …")
	for probe := 0; ; probe++ {
		send("probe-" + strconv.Itoa(probe))
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		ok := len(lat) > 0
		mu.Unlock()
		if ok {
			break
		}
		select {
		case err := <-viewErr:
			return fmt.Errorf("view stopped: %v", err)
		default:
		}
		if probe > 120 {
			il, _ := os.ReadFile(filepath.Join(dir, "ingest.log"))
			al, _ := os.ReadFile(filepath.Join(dir, "aggregator.log"))
			in, _ := ing.Metric("topk_ingest_records_total")
			ag, _ := agg.Metric("topk_aggregator_listens_total")
			return fmt.Errorf("the pipeline never answered (ingest read %.0f, aggregator %.0f)\ningest:\n%s\naggregator:\n%s", in, ag, il, al)
		}
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	lat, sent = nil, map[string]time.Time{}
	mu.Unlock()

	n := int(dur.Seconds() * float64(rate))
	bar := benchkit.Bar(int64(n), fmt.Sprintf("%d listens/s", rate))
	// Paced by the clock, not a ticker (a ticker drops ticks on a busy
	// machine): listen i leaves at start + i/rate.
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		send("lat-" + strconv.Itoa(i))
		if i%200 == 0 {
			_ = bar.Set(i)
		}
	}
	_ = bar.Finish()
	sendSecs := time.Since(start).Seconds()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	d := append([]time.Duration(nil), lat...)
	lost := len(sent)
	mu.Unlock()
	benchkit.SortDurations(d)

	ms := func(x time.Duration) string { return strconv.FormatFloat(float64(x.Microseconds())/1000, 'f', 1, 64) }
	fmt.Printf("\nbench-latency: %d listens at %.0f/s (target %d/s), %s\n\n", n, float64(n)/sendSecs, rate, time.Now().UTC().Format(time.RFC3339))
	benchkit.Table(os.Stdout, []string{"path", "n", "p50 ms", "p99 ms", "max ms"}, [][]string{
		{"produce → ingest → aggregator → view (topk)", strconv.Itoa(len(d)), ms(benchkit.Percentile(d, 50)), ms(benchkit.Percentile(d, 99)), ms(benchkit.Percentile(d, 100))},
		{"kafka EndToEndLatency (produce → consume, acks=all)", strconv.Itoa(ref.N), wholeMS(ref.P50), wholeMS(ref.P99), wholeMS(ref.P999) + " (p99.9)"},
	})
	fmt.Println()
	verdict := "met"
	if benchkit.Percentile(d, 99) > time.Second || lost > 0 {
		verdict = "NOT met"
	}
	fmt.Printf("goal p99 ≤ 1 s: %s; listens never seen: %d\n", verdict, lost)
	fmt.Println("topk's path is three Kafka hops (raw, valid, changelog) and two processors; the tool's is one hop.")
	return nil
}

// wholeMS renders a figure of Kafka's tool as it printed it.
func wholeMS(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) }
