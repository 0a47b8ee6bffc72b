// Command recovery is `make bench-recovery`: how long a restarted or new
// copy takes to be ready, and how much memory it takes, as history grows
// while the recent days stay the same (issue 10: recovery bounded by what
// is served, not by history).
//
// It counts user-days with the real aggregator (`topk aggregator`, its own
// process): first -base user-days, of which the recent ones (-users users ×
// -recent days of the last 35) are the same in both stages, the rest spread
// over older days; then -extra more user-days of older history. At each
// stage it measures, each as a fresh OS process:
//
//   - the api's view (package views, in a child process of this binary):
//     time from start to recovered, peak RSS, user-days held;
//   - an aggregator copy with an empty local store: time from start to
//     /readyz 200 (every partition recovered from the changelog);
//   - the same copy restarted on its own local store.
//
// The reference of the same run is the first stage: the goal is that the
// view's time to ready grows by at most 20% from base to base+extra, and is
// at most 5 s at the base stage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/views"
)

func main() {
	base := flag.Int("base", 1_000_000, "user-days of the first stage (recent ones included)")
	extra := flag.Int("extra", 5_000_000, "older user-days added for the second stage")
	users := flag.Int("users", 20_000, "users")
	recent := flag.Int("recent", 10, "recent user-days per user (of the last 35 days)")
	child := flag.String("view-child", "", "internal: run the view of this namespace and print its figures")
	flag.Parse()
	var err error
	if *child != "" {
		err = viewChild(*child)
	} else {
		err = run(*base, *extra, *users, *recent)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-recovery:", err)
		os.Exit(1)
	}
}

// viewFigures is what a view child prints.
type viewFigures struct {
	ReadyMS  int64 `json:"ready_ms"`
	UserDays int64 `json:"user_days"`
	PeakRSS  int64 `json:"peak_rss"`
	HeapMB   int64 `json:"heap_mb"`
}

// viewChild runs the api's view of namespace until it has recovered, then
// prints its figures as JSON on stdout.
func viewChild(namespace string) error {
	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	start := time.Now()
	reg := prometheus.NewRegistry()
	s := processors.Settings{
		Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor, MinInsync: cfg.Kafka.MinInsyncReplicas,
		MaxMessageBytes: cfg.Kafka.MaxMessageBytes, Log: ops.NewLogger(os.Stderr, "warn", "text"),
	}
	v, err := views.New(s, views.Config{Namespace: namespace, Days: cfg.Charts.ViewDays, Registerer: reg,
		Maintain: 100 * time.Millisecond, Log: s.Log, MaxBytes: int64(cfg.Charts.ViewMaxMB) << 20})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for !v.Recovered() {
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("view stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			return fmt.Errorf("view not ready after 10 minutes")
		}
	}
	ready := time.Since(start)
	time.Sleep(300 * time.Millisecond) // one maintenance round: the user-days gauge
	f := viewFigures{ReadyMS: ready.Milliseconds(), UserDays: int64(gauge(reg, "topk_view_user_days"))}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	f.HeapMB = int64(ms.HeapInuse >> 20)
	f.PeakRSS = benchkit.SelfPeakRSS()
	cancel()
	<-done
	return json.NewEncoder(os.Stdout).Encode(f)
}

func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// userDays produces the listens of user-days [from, to) of the population
// to user.listen.valid, one listen each, keyed user|day (sarama's hash
// partitioner is Goka's hasher, so each lands on its partition). Index i <
// recentN is recent: user i/recent, on one of 35 recent days; later ones are
// older days, user i%users on day 36 + i/users back.
func userDays(e *benchkit.Env, from, to, users, recent int) error {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	recentN := users * recent
	i := from
	codec := listen.Codec{}
	_, err := e.Produce(string(e.Topics.Valid), to-from, func() (string, []byte) {
		var user string
		var back int
		if i < recentN {
			u, k := i/recent, i%recent
			user, back = "user-"+strconv.Itoa(u), (u*7+k*3)%35 // 3 and 35 coprime: distinct days
		} else {
			j := i - recentN
			user, back = "user-"+strconv.Itoa(j%users), 36+j/users
		}
		i++
		l := listen.Listen{UserID: user, PlayedAt: today.AddDate(0, 0, -back).Add(time.Duration(i%86400) * time.Second),
			ArtistName: "Artist " + strconv.Itoa(i%5000), TrackName: "Track " + strconv.Itoa(i%30), AlbumName: "Album " + strconv.Itoa(i%7)}
		b, err := codec.Encode(l)
		if err != nil {
			panic(err)
		}
		return l.Key(), b
	})
	return err
}

// stage is the figures of one stage.
type stage struct {
	userDays                 int
	view                     viewFigures
	aggEmpty, aggOwn         time.Duration
	aggEmptyRSS, aggOwnRSS   int64
	tableRecords, recentRecs int64
}

func run(base, extra, users, recent int) error {
	if users*recent > base {
		return fmt.Errorf("-users × -recent (%d) must not exceed -base (%d)", users*recent, base)
	}
	e, err := benchkit.Setup(context.Background(), "recovery")
	if err != nil {
		return err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("recovery")
	if err != nil {
		return err
	}
	if os.Getenv("TOPK_BENCH_KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "keeping logs and state in", dir)
	} else {
		defer remove()
	}
	ns := e.Config.Namespace
	agg, err := startAggregator(e, filepath.Join(dir, "state-main"), filepath.Join(dir, "aggregator.log"))
	if err != nil {
		return err
	}
	defer func() { agg.Stop() }()

	var stages []*stage
	done := 0
	for _, n := range []int{base, base + extra} {
		fmt.Fprintf(os.Stderr, "stage: %d user-days\n", n)
		if err := userDays(e, done, n, users, recent); err != nil {
			return err
		}
		done = n
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		err := kafka.WaitCaughtUp(ctx, e.Client, e.Admin, string(aggregator.Group(ns)), string(e.Topics.Valid), nil)
		cancel()
		if err != nil {
			return fmt.Errorf("aggregator catching up: %w", err)
		}
		if agg.Exited() {
			return fmt.Errorf("the aggregator exited; log in %s", dir)
		}
		st := &stage{userDays: n}
		if st.tableRecords, err = endOffsets(e, string(aggregator.Table(ns))); err != nil {
			return err
		}
		if st.recentRecs, err = endOffsets(e, string(e.Topics.Recent)); err != nil {
			return err
		}
		// The main aggregator stops, so the copies measured own every
		// partition (a group of one recovers all of them).
		agg.Stop()
		if st.view, err = measureView(e, ns); err != nil {
			return err
		}
		copyDir := filepath.Join(dir, fmt.Sprintf("state-copy-%d", n))
		if st.aggEmpty, st.aggEmptyRSS, err = timeAggregator(e, copyDir, filepath.Join(dir, fmt.Sprintf("copy-empty-%d.log", n))); err != nil {
			return err
		}
		if st.aggOwn, st.aggOwnRSS, err = timeAggregator(e, copyDir, filepath.Join(dir, fmt.Sprintf("copy-own-%d.log", n))); err != nil {
			return err
		}
		stages = append(stages, st)
		if agg, err = startAggregator(e, filepath.Join(dir, "state-main"), filepath.Join(dir, fmt.Sprintf("aggregator-%d.log", n))); err != nil {
			return err
		}
	}

	fmt.Printf("\nbench-recovery: %d users, %d recent user-days (the last 35 days), history grown from %d to %d user-days (%s, %d CPUs)\n\n",
		users, users*recent, base, base+extra, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
	var rows [][]string
	for _, st := range stages {
		rows = append(rows,
			[]string{strconv.Itoa(st.userDays), "api view", sec(time.Duration(st.view.ReadyMS) * time.Millisecond), benchkit.MiB(st.view.PeakRSS),
				fmt.Sprintf("%d user-days held, %d recent records", st.view.UserDays, st.recentRecs)},
			[]string{strconv.Itoa(st.userDays), "aggregator copy, empty local store", sec(st.aggEmpty), benchkit.MiB(st.aggEmptyRSS),
				fmt.Sprintf("%d table records", st.tableRecords)},
			[]string{strconv.Itoa(st.userDays), "aggregator copy, its own local store", sec(st.aggOwn), benchkit.MiB(st.aggOwnRSS), ""})
	}
	benchkit.Table(os.Stdout, []string{"user-days", "copy", "time to ready (s)", "peak RSS", "read"}, rows)
	v0, v1 := stages[0].view.ReadyMS, stages[1].view.ReadyMS
	fmt.Printf("\nview: time to ready at %d ÷ at %d user-days = %.2f (goal ≤ 1.20); at %d: %.2f s (goal ≤ 5 s)\n",
		base+extra, base, float64(v1)/float64(max(v0, 1)), base, float64(v0)/1000)
	fmt.Printf("aggregator copy: own local store ÷ empty = %.3f at %d, %.3f at %d user-days\n",
		stages[0].aggOwn.Seconds()/stages[0].aggEmpty.Seconds(), base, stages[1].aggOwn.Seconds()/stages[1].aggEmpty.Seconds(), base+extra)
	return nil
}

// endOffsets is the sum of a topic's end offsets (records ever written).
func endOffsets(e *benchkit.Env, topic string) (int64, error) {
	parts, err := e.Client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		o, err := e.Client.GetOffset(topic, p, -1)
		if err != nil {
			return 0, err
		}
		n += o
	}
	return n, nil
}

// measureView runs this binary as a view child of namespace.
func measureView(e *benchkit.Env, namespace string) (viewFigures, error) {
	var f viewFigures
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	cmd := exec.Command(self, "-view-child", namespace)
	cmd.Env = append(e.Config.Environ(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return f, fmt.Errorf("view child: %w", err)
	}
	return f, json.Unmarshal(out, &f)
}

func startAggregator(e *benchkit.Env, stateDir, logPath string) (*benchkit.Process, error) {
	cfg := e.Config
	cfg.Pipeline.StateDir = stateDir
	return e.StartConfig(logPath, cfg, "aggregator")
}

// timeAggregator starts an aggregator on stateDir, waits until its
// /readyz answers 200 (every partition recovered), stops it gracefully
// (its local store keeps what it recovered) and returns the time and its
// peak RSS.
func timeAggregator(e *benchkit.Env, stateDir, logPath string) (time.Duration, int64, error) {
	start := time.Now()
	p, err := startAggregator(e, stateDir, logPath)
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop()
	url := "http://127.0.0.1:" + strconv.Itoa(p.OpsPort) + "/readyz"
	deadline := start.Add(30 * time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), p.PeakRSS(), nil
			}
		}
		if p.Exited() {
			return 0, 0, fmt.Errorf("aggregator copy exited; log %s", logPath)
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("aggregator copy not ready after 30 minutes; log %s", logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
