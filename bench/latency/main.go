// Command latency is `make bench-latency`: listens at a fixed rate into
// user.listen.raw through topk ingest and the aggregator (their own
// processes), and the time from producing each listen to its count
// appearing in the aggregator's table, seen by a Goka view; beside Kafka's
// own EndToEndLatency tool on the same broker in the same run.
//
// With -sitewide (the default) `topk sitewide` runs too (its own process:
// the fan-out, the sitewide group and the sitewide flusher), and each
// listen is also timed until the sitewide chart holds it: a Goka view of
// the sitewide group's recent topic (what the api's sitewide view reads)
// sees a key of the listen's track and day (any bucket, spill children
// included) whose value lists the listen's user. The CPU each process used
// while the listens were sent and seen is printed beside, and what the
// sitewide group wrote per listen (values, bytes).
// TOPK_BENCH_PROFILE=dir saves a CPU profile of each topk process over the
// timed load (dir/ingest.pprof, aggregator.pprof, sitewide.pprof).
//
// The timed listens follow a warm-up (-warmup, 5 s) of the same load,
// timed and printed apart: the processes and topics are new, and their
// first seconds under load are slower than a running pipeline's, most of
// all right after `make infra-up` (Kafka's JVM is new too: sitewide p99
// 2.0 s in the first 2 s, 0.24 s from the 4th s on; 0.28 s in the first
// 2 s on a broker that had run for 15 minutes).
// Latencies are also printed by when the listens were sent, in 2 s
// windows.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/sitewide"
)

func main() {
	rate := flag.Int("rate", 2000, "listens per second")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	site := flag.Bool("sitewide", true, "also run topk sitewide and time each listen until the sitewide chart holds it")
	warm := flag.Duration("warmup", 5*time.Second, "send at the rate for this long first, timed apart (new processes warming up)")
	flag.Parse()
	if err := run(*rate, *dur, *warm, *site); err != nil {
		fmt.Fprintln(os.Stderr, "bench-latency:", err)
		os.Exit(1)
	}
}

func run(rate int, dur, warm time.Duration, site bool) error {
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
	procs := []*benchkit.Process{ing, agg}
	var sw *benchkit.Process
	if site {
		if sw, err = e.Start(filepath.Join(dir, "sitewide.log"), "sitewide"); err != nil {
			return err
		}
		defer sw.Stop()
		procs = append(procs, sw)
	}

	// Every listen is the first of its own user-day, so the view's first
	// update of a key is that listen arriving.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	// latAt is when each of lat's listens was sent.
	var latAt []time.Time
	seen := func(key string) {
		now := time.Now()
		mu.Lock()
		if t, ok := sent[key]; ok {
			lat = append(lat, now.Sub(t))
			latAt = append(latAt, t)
			delete(sent, key)
		}
		mu.Unlock()
	}
	// The sitewide chart: per track|day, the users of listens sent and
	// not yet seen in a value of that track and day.
	swSent := map[string]map[string]time.Time{}
	var swLat []time.Duration
	// swAt is when each of swLat's listens was sent.
	var swAt []time.Time
	swLeft := func() int {
		n := 0
		for _, us := range swSent {
			n += len(us)
		}
		return n
	}
	swSeen := func(key string, value []byte) {
		if value == nil {
			return
		}
		k, err := sitewide.ParseKey(key)
		if err != nil || k.Entity != topk.Tracks {
			return
		}
		id := itemDay(k.Item, k.Day)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		users := swSent[id]
		if len(users) == 0 {
			return
		}
		v, err := sitewide.DecodeValue(value)
		if err != nil {
			return
		}
		for u, t := range users {
			if i, ok := v.Find(u); ok && v.Listeners[i].Plays > 0 {
				swLat = append(swLat, now.Sub(t))
				swAt = append(swAt, t)
				delete(users, u)
			}
		}
		if len(users) == 0 {
			delete(swSent, id)
		}
	}
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor, Log: e.Log}
	if _, err := s.EnsureTable(context.Background(), aggregator.Table(e.Config.Namespace), e.Topics.Valid); err != nil {
		return err
	}
	if site {
		if err := fanout.EnsureCounts(context.Background(), s, e.Config.Namespace); err != nil {
			return err
		}
		if err := sitewide.EnsureRecent(context.Background(), s, e.Config.Namespace, e.Config.Charts.ViewDays); err != nil {
			return err
		}
	}
	opts := append(s.ViewOptions("topk-bench-latency-view", ""), goka.WithViewCallback(
		func(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
			seen(key)
			// Nothing stored: the bench reads the updates only, and Goka's
			// in-memory storage sorts all its keys on every new one (37% of
			// this process's CPU in a profile, on the view's goroutine,
			// delaying what the bench sees).
			return nil
		}))
	view, err := goka.NewView(e.Config.Kafka.Brokers, aggregator.Table(e.Config.Namespace), aggregator.DayCodec{}, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewErr := make(chan error, 2)
	go func() { viewErr <- view.Run(ctx) }()
	if site {
		opts := append(s.ViewOptions("topk-bench-latency-sitewide-view", ""), goka.WithViewHasher(sitewide.Hasher), goka.WithViewCallback(
			func(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
				swSeen(key, value)
				return nil // nothing stored, as above
			}))
		swView, err := goka.NewView(e.Config.Kafka.Brokers, goka.Table(e.Topics.SitewideRecent), processors.RawCodec{}, opts...)
		if err != nil {
			return err
		}
		go func() { viewErr <- swView.Run(ctx) }()
	}

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
		at := now.Add(-time.Second)
		v, artist, track := gen.ListenTrack(user, at)
		mu.Lock()
		sent[user+"|"+at.Format(topk.DayLayout)] = now
		if site {
			id := itemDay(listen.TrackKey(artist, track), at)
			if swSent[id] == nil {
				swSent[id] = map[string]time.Time{}
			}
			swSent[id][user] = now
		}
		mu.Unlock()
		producer.Input() <- &sarama.ProducerMessage{Topic: string(e.Topics.Raw), Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(v)}
	}
	fmt.Fprintln(os.Stderr, "waiting for ingest, aggregator (and topk sitewide) to take their partitions …")
	for probe := 0; ; probe++ {
		send("probe-" + strconv.Itoa(probe))
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		ok := len(lat) > 0 && (!site || len(swLat) > 0)
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
			var swl []byte
			if site {
				swl, _ = os.ReadFile(filepath.Join(dir, "sitewide.log"))
			}
			return fmt.Errorf("the pipeline never answered (ingest read %.0f, aggregator %.0f)\ningest:\n%s\naggregator:\n%s\nsitewide:\n%s", in, ag, il, al, swl)
		}
	}
	// The warm-up: the same load, timed apart. The processes and topics
	// are new, and after a restart of the stack so is Kafka's JVM: the
	// first seconds under load are slower than a running pipeline.
	var warmLat, warmSw []time.Duration
	if warm > 0 {
		fmt.Fprintf(os.Stderr, "warming up: %s at %d listens/s …\n", warm, rate)
		w := int(warm.Seconds() * float64(rate))
		t0 := time.Now()
		for i := 0; i < w; i++ {
			if d := time.Until(t0.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
			send("warm-" + strconv.Itoa(i))
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			mu.Lock()
			left := len(sent) + swLeft()
			mu.Unlock()
			if left == 0 {
				break
			}
		}
		mu.Lock()
		warmLat, warmSw = append(warmLat, lat...), append(warmSw, swLat...)
		mu.Unlock()
		benchkit.SortDurations(warmLat)
		benchkit.SortDurations(warmSw)
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	lat, latAt, sent = nil, nil, map[string]time.Time{}
	swLat, swAt, swSent = nil, nil, map[string]map[string]time.Time{}
	mu.Unlock()

	n := int(dur.Seconds() * float64(rate))
	bar := benchkit.Bar(int64(n), fmt.Sprintf("%d listens/s", rate))
	// Paced by the clock, not a ticker (a ticker drops ticks on a busy
	// machine): listen i leaves at start + i/rate.
	start := time.Now()
	cpu0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		cpu0[i] = p.CPUTime()
	}
	// TOPK_BENCH_PROFILE=dir: a CPU profile of each topk process over
	// the timed load (dir/<service>.pprof).
	var profiled sync.WaitGroup
	if prof := os.Getenv("TOPK_BENCH_PROFILE"); prof != "" {
		for _, p := range procs {
			profiled.Add(1)
			go func() {
				defer profiled.Done()
				p.Profile(filepath.Join(prof, p.Name+".pprof"), 0, dur)
			}()
		}
		defer profiled.Wait()
	}
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
		left := len(sent) + swLeft()
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	var swBytes, swValues float64
	if sw != nil {
		swBytes, _ = sw.Metric("topk_sitewide_value_bytes_sum")
		swValues, _ = sw.Metric("topk_sitewide_value_bytes_count")
	}
	cores := make([]string, len(procs))
	for i, p := range procs {
		cores[i] = fmt.Sprintf("topk %s %.2f", p.Name, (p.CPUTime()-cpu0[i]).Seconds()/wall.Seconds())
	}
	mu.Lock()
	d := append([]time.Duration(nil), lat...)
	lost := len(sent)
	sd := append([]time.Duration(nil), swLat...)
	userWindows := byWindow(start, latAt, lat, 2*time.Second)
	windows := byWindow(start, swAt, swLat, 2*time.Second)
	swLost := swLeft()
	mu.Unlock()
	benchkit.SortDurations(d)
	benchkit.SortDurations(sd)

	ms := func(x time.Duration) string { return strconv.FormatFloat(float64(x.Microseconds())/1000, 'f', 1, 64) }
	fmt.Printf("\nbench-latency: %d listens at %.0f/s (target %d/s), %s\n\n", n, float64(n)/sendSecs, rate, time.Now().UTC().Format(time.RFC3339))
	row := func(path string, d []time.Duration) []string {
		return []string{path, strconv.Itoa(len(d)), ms(benchkit.Percentile(d, 50)), ms(benchkit.Percentile(d, 99)), ms(benchkit.Percentile(d, 100))}
	}
	var rows [][]string
	if warm > 0 {
		rows = append(rows, row(fmt.Sprintf("per user, the first %s (warm-up)", warm), warmLat))
		if site {
			rows = append(rows, row(fmt.Sprintf("sitewide, the first %s (warm-up)", warm), warmSw))
		}
	}
	rows = append(rows, row("produce → ingest → aggregator → view (topk, per user)", d))
	if site {
		rows = append(rows, row("… → aggregator → fan-out → sitewide group → recent topic (topk, sitewide)", sd))
	}
	rows = append(rows, []string{"kafka EndToEndLatency (produce → consume, acks=all)", strconv.Itoa(ref.N), wholeMS(ref.P50), wholeMS(ref.P99), wholeMS(ref.P999) + " (p99.9)"})
	benchkit.Table(os.Stdout, []string{"path", "n", "p50 ms", "p99 ms", "max ms"}, rows)
	fmt.Println()
	verdict := func(d []time.Duration, lost int) string {
		if benchkit.Percentile(d, 99) > time.Second || lost > 0 || len(d) == 0 {
			return "NOT met"
		}
		return "met"
	}
	fmt.Printf("goal p99 ≤ 1 s, per user: %s; listens never seen: %d\n", verdict(d, lost), lost)
	if site {
		fmt.Printf("goal p99 ≤ 1 s, sitewide: %s; listens never seen: %d\n", verdict(sd, swLost), swLost)
	}
	// A pipeline that cannot keep up shows latencies growing window after
	// window; one that stalls, latencies rising and falling; one warming
	// up, the first windows slow.
	fmt.Println("\nlatency by when the listens were sent:")
	wrows := make([][]string, 0, len(userWindows))
	for i, w := range userWindows {
		r := []string{w.from.String(), strconv.Itoa(len(w.d)), ms(benchkit.Percentile(w.d, 50)), ms(benchkit.Percentile(w.d, 99))}
		if site {
			r = append(r, "", "", "")
			if i < len(windows) {
				sw := windows[i]
				r[4], r[5], r[6] = strconv.Itoa(len(sw.d)), ms(benchkit.Percentile(sw.d, 50)), ms(benchkit.Percentile(sw.d, 99))
			}
		}
		wrows = append(wrows, r)
	}
	head := []string{"sent after", "per user n", "p50 ms", "p99 ms"}
	if site {
		head = append(head, "sitewide n", "p50 ms", "p99 ms")
	}
	benchkit.Table(os.Stdout, head, wrows)
	fmt.Println()
	fmt.Printf("CPU in cores while the listens were sent and seen (%.1f s): %s\n", wall.Seconds(), strings.Join(cores, ", "))
	if swValues > 0 {
		fmt.Printf("sitewide group: %.0f values written (%.1f per listen sent), mean %.0f bytes: %.1f KiB per listen, to its table and again to the recent topic\n",
			swValues, swValues/float64(n), swBytes/swValues, swBytes/float64(n)/1024)
	}
	fmt.Println("topk's per-user path is three Kafka hops (raw, valid, changelog) and two processors; the sitewide path two more")
	fmt.Println("(counts, recent topic) and two processors (fan-out, sitewide group); the tool's is one hop.")
	return nil
}

// itemDay identifies an item's day in the sitewide bookkeeping: the item
// key in hex and the UTC day.
func itemDay(item uint64, day time.Time) string {
	return strconv.FormatUint(item, 16) + "|" + day.UTC().Format(topk.DayLayout)
}

// wholeMS renders a figure of Kafka's tool as it printed it.
func wholeMS(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) }

// window is the latencies of the listens sent in [from, from+width) after
// the first.
type window struct {
	from time.Duration
	d    []time.Duration
}

// byWindow groups latencies d (of listens sent at at) by when they were
// sent after start, in windows of width, each sorted.
func byWindow(start time.Time, at []time.Time, d []time.Duration, width time.Duration) []window {
	var ws []window
	for i, t := range at {
		k := int(t.Sub(start) / width)
		if k < 0 {
			continue
		}
		for len(ws) <= k {
			ws = append(ws, window{from: time.Duration(len(ws)) * width})
		}
		ws[k].d = append(ws[k].d, d[i])
	}
	for _, w := range ws {
		benchkit.SortDurations(w.d)
	}
	return ws
}
