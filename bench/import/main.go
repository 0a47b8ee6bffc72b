// Command import is `make bench-import`: how long a ten-year Spotify
// history takes from `topk import` until every chart range answers
// exactly, beside Kafka's own producer perf tool sending the same listens
// in the same run. The goal (issue "bring your history"): 30 s on this
// machine.
//
// The archive (archive.go) is generated as Spotify sends it:
// my_spotify_data.zip with Streaming_History_Audio_<years>_<n>.json files
// of about 16k streams each, a Video file and the PDF. One listener's
// decade of streams: a catalogue of artists, albums and tracks played with
// Zipf-like preferences that change every year, sessions of shuffled hits
// or whole albums, ~22% skips under 30 s, podcast episodes (some of them
// video), audiobooks since late 2023, a few streams with null metadata, a
// few whose ts Spotify wrote as 1970 (refused), the last streams of each
// file repeated at the start of the next (counted once), and the last
// stream today, so that today and 7d are not empty. From the streams
// themselves it computes what the import must report per file and what
// every range must answer (the independent count: Spotify's rules, each
// listen counted once by its second and track); archive_test.go checks
// that count against package imports reading the same archive.
//
// Everything runs on the benchmark's own namespace (topics), Cassandra
// keyspace and PostgreSQL database, dropped at the end, against the local
// stack (make infra-up). The pipeline runs as the real processes, each
// its own bin/topk: ingest, aggregator, raw-writer, flusher and api
// (TOPK_DEV_MODE=1, so that the poller on loopback is not rate limited).
// Once they are ready and their consumer groups stable, the clock starts
// and the import runs as a user runs it: `bin/topk import --user U
// my_spotify_data.zip` as a process (its progress lines pass through to
// stderr, its report is printed and checked against the expectation).
//
// From that start the benchmark records: the import process's end and its
// own split (reading: files read and mapped; Kafka: waiting for
// acknowledgements), ingest's records through the gate
// (topk_ingest_records_total) and the aggregator's every listen counted
// (topk_aggregator_listens_total counted = the distinct listens), both
// polled every 100 ms, then, every 200 ms, the aggregator's, the raw
// writer's and (once the aggregator has committed everything) the
// flusher's committed lag reaching 0 (the flusher commits after its
// rollups are written, at most 1 s later: sarama's commit interval). And
// the api is polled (check.go) every -poll for each range — today, 7d,
// this_year, each past year as from/to, all —: its activity (plays in
// total and per day) and, when that matches, every page of its top
// tracks, artists and albums, each item's plays and the totals compared
// with the independent count. A range's time is the end of its first
// exact check (a check of all reads ~40 pages one after the other; each
// check's duration is printed). Time to exact is the last range's; the
// goal is met when it is at most -goal (MET / NOT MET).
//
// The reference, run before the pipeline starts on a broker nothing else
// of the benchmark loads: kafka-producer-perf-test sending as many
// records as the import sends listens, drawn from the same listen JSON
// (--payload-file), to a topic of one partition (an import is one user,
// one key, one partition), acks=all, idempotent (the import's producer
// settings; the tool batches and keeps 5 requests in flight where the
// import sends batches of 2000 and waits for each). Printed: the tool's
// time, and the import's Kafka phase and the time to exact over it.
//
// Printed to find where the time goes: a timeline every 2 s (records
// through ingest, counted, the raw writer's and the flusher's committed
// lag, ranges exact, the machine's, Cassandra's and Kafka's cores), the
// CPU each process used during the import and after it (the machine is
// shared by all of them, Kafka and Cassandra included, and by whatever
// else runs: how busy it was before the clock started is printed too),
// the flusher's rows per table and rollups, and, with -alone (the
// default), the same import run first on its own, to topics nothing
// consumes: what reading and Kafka take when the import does not share
// the cores with the pipeline. Progress goes to stderr (slog, and the
// import's own progress lines).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
)

type options struct {
	streams int
	years   int
	perFile int
	user    string
	seed    uint64
	goal    time.Duration
	poll    time.Duration
	timeout time.Duration
	alone   bool
}

func main() {
	var o options
	flag.IntVar(&o.streams, "streams", 150_000, "streams of the generated history (music, skips, podcasts, …)")
	flag.IntVar(&o.years, "years", 10, "years of history, ending today")
	flag.IntVar(&o.perFile, "per-file", 16_000, "streams per Streaming_History_Audio file (Spotify's are about 16k)")
	flag.StringVar(&o.user, "user", "decade-listener", "the topk user the history is imported for")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated history")
	flag.DurationVar(&o.goal, "goal", 30*time.Second, "time to exact the benchmark holds the pipeline to")
	flag.DurationVar(&o.poll, "poll", 150*time.Millisecond, "how often each range not yet exact is asked again")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on ranges not exact this long after the start of the import")
	flag.BoolVar(&o.alone, "alone", true, "first run the same import alone (nothing consuming, before the pipeline starts): what it takes without sharing the machine")
	flag.Parse()
	if o.streams < 1000 || o.years < 1 || o.perFile < 100 || o.poll <= 0 || o.timeout <= 0 {
		fmt.Fprintln(os.Stderr, "bench-import: -streams ≥ 1000, -years ≥ 1, -per-file ≥ 100, -poll and -timeout > 0")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-import:", err)
		os.Exit(1)
	}
}

// pipeline is the services the benchmark runs, each its own bin/topk, in
// start order.
var pipeline = []string{"ingest", "aggregator", "raw-writer", "flusher", "api"}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := benchkit.Setup(ctx, "import")
	if err != nil {
		return err
	}
	ns := e.Config.Namespace
	e.Config.Cassandra.Keyspace = "topk_" + ns
	e.Config.Postgres.Database = "topk_" + ns
	e.Config.Crawler.DevMode = true // loopback clients are not rate limited; a development token key
	pgc := wiring.Postgres(e.Config.Postgres)

	// Interrupted or done, the processes stop and the benchmark's topics,
	// keyspace, database and work directory go.
	var (
		mu        sync.Mutex
		procs     []*benchkit.Process
		removeDir func()
		once      sync.Once
	)
	cleanup := func() {
		once.Do(func() {
			mu.Lock()
			for i := len(procs) - 1; i >= 0; i-- {
				procs[i].Stop()
			}
			if removeDir != nil && os.Getenv("TOPK_BENCH_KEEP") == "" {
				removeDir()
			}
			mu.Unlock()
			if err := postgres.DropDatabase(context.Background(), pgc, pgc.Database); err != nil {
				log.Warn("dropping the benchmark's database", "err", err)
			}
			if err := cassandra.DropKeyspace(context.Background(), wiring.Cassandra(e.Config.Cassandra), e.Config.Cassandra.Keyspace); err != nil {
				log.Warn("dropping the benchmark's keyspace", "err", err)
			}
			e.Close()
		})
	}
	defer cleanup()
	benchkit.OnInterrupt("\nbench-import: interrupted, removing topics, keyspace and database", func() { cancel(); cleanup() })
	dir, remove, err := e.WorkDir("import")
	if err != nil {
		return err
	}
	mu.Lock()
	removeDir = remove
	mu.Unlock()
	log.Info("bench-import", "namespace", ns, "keyspace", e.Config.Cassandra.Keyspace, "work", dir)

	// The archive and the independent count.
	t := time.Now()
	h := generate(archiveConfig{Streams: o.streams, Years: o.years, PerFile: o.perFile, Dups: 20, Offline: 6, Now: time.Now(), Seed: o.seed})
	archive := filepath.Join(dir, "my_spotify_data.zip")
	size, err := h.writeFile(archive)
	if err != nil {
		return err
	}
	read, accepted, skipped, refused := h.totals()
	log.Info("archive generated", "file", archive, "bytes", size, "files", len(h.files), "streams", len(h.streams),
		"records", read, "accepted", accepted, "distinct listens", len(h.listens), "skipped", skipped, "refused", refused,
		"took", time.Since(t).Round(time.Millisecond))

	// The reference first, on a broker nothing else of ours loads.
	payload := filepath.Join(dir, "listens.jsonl")
	payloadBytes, err := h.writePayload(payload, o.user)
	if err != nil {
		return err
	}
	ref, err := producerPerf(ctx, e, payload, accepted, log)
	if err != nil {
		return fmt.Errorf("kafka-producer-perf-test: %w", err)
	}
	ref.avgBytes = float64(payloadBytes) / float64(accepted)

	// The same import alone: to topics of another namespace nothing
	// consumes, before the pipeline starts.
	var alone importResult
	if o.alone {
		if alone, err = importAlone(ctx, e, archive, o.user, dir, log); err != nil {
			return err
		}
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
	err = postgres.Migrate(ctx, pool, e.Log)
	pool.Close()
	if err != nil {
		return err
	}

	apiPort, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	e.Config.API.Addr = "127.0.0.1:" + strconv.Itoa(apiPort)
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
	apiURL := "http://" + e.Config.API.Addr
	if err := waitReady(ctx, e, started, apiURL, dir, log); err != nil {
		return err
	}

	// The measured run. First how busy the machine is without it.
	cass, kafkaPID := e.CassandraPID(), pidFile(filepath.Join(e.Config.RuntimeDir, "kafka", "kafka.pid"))
	cpu := func() cpuSample { return cpuNow(started, cass, kafkaPID) }
	b0 := cpu()
	time.Sleep(3 * time.Second)
	b1 := cpu()
	bw := b1.at.Sub(b0.at).Seconds()
	base := baseline{busy: (b1.busy - b0.busy).Seconds() / bw, cassandra: (b1.cassandra - b0.cassandra).Seconds() / bw, kafka: (b1.kafka - b0.kafka).Seconds() / bw}
	log.Info("the clock starts: topk import", "machine busy before (cores)", fmt.Sprintf("%.2f", base.busy))

	p := newPoller(apiURL, o.user, h, o.poll)
	cpu0 := cpu()
	start := time.Now()
	pctx, stopPoll := context.WithTimeout(ctx, o.timeout)
	defer stopPoll()
	polled := make(chan struct{})
	go func() { defer close(polled); p.run(pctx, start) }()
	st := &stages{}
	st.watch(pctx, watchConfig{e: e, procs: started, start: start, records: accepted, distinct: len(h.listens), p: p, cpu: cpu, log: log,
		runImport: func() importResult {
			return runImport(ctx, e.Root, e.Config, archive, o.user, filepath.Join(dir, "import-state"), filepath.Join(dir, "import.out"), false)
		}})
	<-polled
	cpu1 := cpu()
	if st.imp.err != nil {
		return st.imp.err
	}

	// Every range once more: still exact.
	var again []string
	for _, rs := range p.snapshot() {
		if ok, why, _, _, _, _ := p.check(ctx, rs.spec); !ok {
			again = append(again, rs.spec.label+": "+why)
		}
	}
	for name, proc := range started {
		if proc.Exited() {
			return fmt.Errorf("%s ended during the run (%v): see its log %s", name, proc.ExitError(), filepath.Join(dir, name+".log"))
		}
	}
	res := &result{o: o, h: h, size: size, ir: st.imp, alone: alone, st: st, p: p, ref: ref, baseline: base, cpu0: cpu0, cpu1: cpu1, again: again}
	res.agg, _ = started["aggregator"].Metrics()
	res.flusher, _ = started["flusher"].Metrics()
	res.tableRecords, res.tableBytes = topicSize(e, string(aggregator.Table(ns)))
	res.print()
	return nil
}

// topicSize is a topic's records (the sum of its high-water marks) and
// size on disk (0, 0 when unknown).
func topicSize(e *benchkit.Env, topic string) (records, bytes int64) {
	parts, err := e.Client.Partitions(topic)
	if err != nil {
		return 0, 0
	}
	for _, p := range parts {
		o, err := e.Client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, 0
		}
		records += o
	}
	bytes, _ = e.TopicBytes(topic)
	return records, bytes
}

// waitReady waits until every process answers /readyz 200 (the api on its
// own address) and the four consumer groups are stable with members, so
// the clock starts on a pipeline that is waiting for records.
func waitReady(ctx context.Context, e *benchkit.Env, procs map[string]*benchkit.Process, apiURL, dir string, log *slog.Logger) error {
	log.Info("waiting for the pipeline to be ready")
	deadline := time.Now().Add(3 * time.Minute)
	ns := e.Config.Namespace
	groups := []string{string(ingest.Group(ns)), string(aggregator.Group(ns)), rawwriter.Group(ns), flusher.Group(ns)}
	for {
		ready := true
		for name, p := range procs {
			if p.Exited() {
				return fmt.Errorf("%s exited (%v): see %s", name, p.ExitError(), filepath.Join(dir, name+".log"))
			}
			url := "http://127.0.0.1:" + strconv.Itoa(p.OpsPort) + "/readyz"
			if name == "api" {
				url = apiURL + "/readyz"
			}
			resp, err := http.Get(url)
			if err != nil {
				ready = false
				continue
			}
			resp.Body.Close()
			ready = ready && resp.StatusCode == http.StatusOK
		}
		if ready {
			ds, err := e.Admin.DescribeConsumerGroups(groups)
			if err != nil {
				ready = false
			}
			for _, d := range ds {
				ready = ready && d.State == "Stable" && len(d.Members) > 0
			}
		}
		if ready {
			log.Info("pipeline ready")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipeline not ready after 3 minutes; logs in %s", dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writePayload writes the listens the import will send, one JSON per line
// as the import produces them (package imports' mapping: played_at the
// ts, the track's id, source spotify-export), every accepted record
// included: the reference tool's --payload-file. It returns their bytes.
func (h *history) writePayload(path, user string) (int64, error) {
	var b bytes.Buffer
	var n int64
	for _, f := range h.files {
		for _, i := range f.streams {
			s := &h.streams[i]
			if skip, refuse := s.outcome(); skip != "" || refuse != "" {
				continue
			}
			t := &h.cat.tracks[s.item]
			v, err := json.Marshal(listen.Listen{UserID: user, PlayedAt: time.Unix(s.end, 0).UTC(), ArtistName: h.cat.artists[t.artist],
				TrackName: t.name, AlbumName: h.cat.albums[t.album].name, TrackID: strings.TrimPrefix(t.uri, "spotify:track:"),
				Source: imports.SourceSpotify})
			if err != nil {
				return 0, err
			}
			n += int64(len(v))
			b.Write(v)
			b.WriteByte('\n')
		}
	}
	return n, os.WriteFile(path, b.Bytes(), 0o644)
}

// reference is what kafka-producer-perf-test measured.
type reference struct {
	records  int
	rate     float64 // records/s, as the tool prints it
	mbs      float64 // MB/s
	avgBytes float64
}

func (r reference) time() time.Duration {
	return time.Duration(float64(r.records) / r.rate * float64(time.Second))
}

// producerPerf runs Kafka's kafka-producer-perf-test: n records drawn from
// the payload file to a topic of one partition, acks=all, idempotent.
func producerPerf(ctx context.Context, e *benchkit.Env, payload string, n int, log *slog.Logger) (reference, error) {
	topic := e.Config.Namespace + ".perf"
	if err := kafka.EnsureTopics(ctx, e.Admin, int16(e.Config.Kafka.ReplicationFactor), []kafka.TopicSpec{{Name: topic, Partitions: 1}}, e.Log); err != nil {
		return reference{}, err
	}
	log.Info("kafka-producer-perf-test (the reference)", "records", n)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := e.Tool(tctx, "kafka-producer-perf-test", "--topic", topic, "--num-records", strconv.Itoa(n), "--payload-file", payload,
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+strings.Join(e.Config.Kafka.Brokers, ","), "acks=all", "enable.idempotence=true")
	if err != nil {
		return reference{}, fmt.Errorf("%w\n%s", err, out)
	}
	// "110000 records sent, 52631.6 records/sec (15.02 MB/sec), …" (the
	// last such line is the whole run's).
	var last []string
	for _, m := range regexp.MustCompile(`(?m)^(\d+) records sent, ([0-9.]+) records/sec \(([0-9.]+) MB/sec\)`).FindAllStringSubmatch(out, -1) {
		last = m
	}
	if last == nil {
		return reference{}, fmt.Errorf("unexpected output:\n%s", out)
	}
	r := reference{}
	r.records, _ = strconv.Atoi(last[1])
	r.rate, _ = strconv.ParseFloat(last[2], 64)
	r.mbs, _ = strconv.ParseFloat(last[3], 64)
	if r.records != n || r.rate <= 0 {
		return reference{}, fmt.Errorf("unexpected output:\n%s", out)
	}
	return r, nil
}

// importAlone runs the import to the topics of a namespace of its own that
// nothing consumes: what the import takes when it has the machine to
// itself.
func importAlone(ctx context.Context, e *benchkit.Env, archive, user, dir string, log *slog.Logger) (importResult, error) {
	cfg := e.Config
	cfg.Namespace = e.Config.Namespace + "_alone"
	if err := kafka.EnsureTopics(ctx, e.Admin, int16(cfg.Kafka.ReplicationFactor), kafka.ListenTopics(wiring.Kafka(cfg.Kafka), listen.NewTopics(cfg.Namespace)), e.Log); err != nil {
		return importResult{}, err
	}
	defer func() {
		if err := kafka.DeleteNamespace(e.Admin, cfg.Namespace); err != nil {
			log.Warn("deleting the topics of the import alone", "err", err)
		}
	}()
	log.Info("the same import alone, nothing consuming (a diagnostic)", "namespace", cfg.Namespace)
	r := runImport(ctx, e.Root, cfg, archive, user, filepath.Join(dir, "import-state-alone"), filepath.Join(dir, "import-alone.out"), true)
	return r, r.err
}

// importResult is the import process's run and its report.
type importResult struct {
	err      error
	exit     int
	wall     time.Duration // from its start to its exit
	cpu      time.Duration
	stdout   string
	read     int
	accepted int
	skipped  int
	refused  int
	sent     int
	dead     int
	reading  time.Duration
	kafka    time.Duration
	files    map[string]fileLine
}

// fileLine is one file's line of the report.
type fileLine struct {
	read, accepted int
	skipped        map[string]int
	refused        map[string]int
}

var (
	// <path>: 150149 records read, 111424 accepted, 38719 skipped by rule, 6 refused; 111424 listens and 6 refused records sent to Kafka (reading 1.2s, Kafka 3.4s)
	totalLine = regexp.MustCompile(`(?m)^\S.*: (\d+) records read, (\d+) accepted, (\d+) skipped by rule, (\d+) refused; (\d+) listens and (\d+) refused records sent to Kafka \(reading (\S+), Kafka (\S+)\)$`)
	//   <file> (spotify-extended-streaming-history): read 16000, accepted 11903, skipped 29 no_track_metadata, 504 podcast_episode, refused 1 played_at_out_of_range
	fileLineRE = regexp.MustCompile(`(?m)^  (.+?) \(([a-z-]+)\): read (\d+), accepted (\d+)(?:, skipped (.+?))?(?:, refused (.+?))?$`)
	reasonRE   = regexp.MustCompile(`(\d+) ([a-z_]+)`)
)

// runImport runs `bin/topk import --user U archive` with cfg, its
// progress lines to stderr unless quiet, its output kept in out, and
// parses its report.
func runImport(ctx context.Context, root string, cfg config.Config, archive, user, state, out string, quiet bool) importResult {
	args := []string{"import", "--user", user, "--state", state, "--restart"}
	if quiet {
		args = append(args, "--quiet")
	}
	args = append(args, archive)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "topk"), args...)
	cfg.LogLevel = "warn"
	cmd.Env = append(cfg.Environ(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	t := time.Now()
	err := cmd.Run()
	r := importResult{wall: time.Since(t), stdout: stdout.String()}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		r.exit = cmd.ProcessState.ExitCode()
	}
	_ = os.WriteFile(out, stdout.Bytes(), 0o644)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && r.exit == 3) { // 3: done, with refused records
		r.err = fmt.Errorf("topk import: %w\n%s", err, r.stdout)
		return r
	}
	m := totalLine.FindStringSubmatch(r.stdout)
	if m == nil {
		r.err = fmt.Errorf("topk import: no report line in its output:\n%s", r.stdout)
		return r
	}
	ints := make([]int, 6)
	for i := range ints {
		ints[i], _ = strconv.Atoi(m[i+1])
	}
	r.read, r.accepted, r.skipped, r.refused, r.sent, r.dead = ints[0], ints[1], ints[2], ints[3], ints[4], ints[5]
	r.reading, _ = time.ParseDuration(m[7])
	r.kafka, _ = time.ParseDuration(m[8])
	r.files = map[string]fileLine{}
	for _, f := range fileLineRE.FindAllStringSubmatch(r.stdout, -1) {
		fl := fileLine{skipped: reasonCounts(f[5]), refused: reasonCounts(f[6])}
		fl.read, _ = strconv.Atoi(f[3])
		fl.accepted, _ = strconv.Atoi(f[4])
		r.files[f[1]] = fl
	}
	return r
}

func reasonCounts(s string) map[string]int {
	m := map[string]int{}
	for _, x := range reasonRE.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(x[1])
		m[x[2]] += n
	}
	return m
}

// cpuSample is the CPU time used so far by each process, Kafka,
// Cassandra, this process, and the machine.
type cpuSample struct {
	at          time.Time
	procs       map[string]time.Duration
	self        time.Duration
	cassandra   time.Duration
	kafka       time.Duration
	busy, total time.Duration
}

func cpuNow(procs map[string]*benchkit.Process, cassPID, kafkaPID int) cpuSample {
	s := cpuSample{at: time.Now(), procs: map[string]time.Duration{}}
	for name, p := range procs {
		s.procs[name] = p.CPUTime()
	}
	s.self, _ = benchkit.CPUTimeOf(os.Getpid())
	if cassPID != 0 {
		s.cassandra, _ = benchkit.CPUTimeOf(cassPID)
	}
	if kafkaPID != 0 {
		s.kafka, _ = benchkit.CPUTimeOf(kafkaPID)
	}
	s.busy, s.total = benchkit.SystemCPU()
	return s
}

// pidFile reads a process id from a pid file (0: none, or not running).
func pidFile(path string) int {
	b, err := os.ReadFile(path)
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
