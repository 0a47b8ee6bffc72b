// What the benchmark prints at the end.

package main

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
)

// result is everything the report prints.
type result struct {
	o        options
	h        *history
	size     int64
	ir       importResult
	alone    importResult // the same import with nothing consuming (wall 0: not run)
	st       *stages
	p        *poller
	ref      reference
	baseline baseline
	cpu0     cpuSample // the start of the import
	cpu1     cpuSample // the end of the polling
	agg      map[string]float64
	flusher  map[string]float64
	again    []string // ranges not exact when checked once more at the end
	// tableRecords, tableBytes: the aggregator's table topic at the end
	// (the changelog the flusher reads).
	tableRecords, tableBytes int64
}

// baseline is how busy the machine was before the import, with the
// pipeline idle: other work on the machine (another stack's services,
// builds) that the run shares the cores with.
type baseline struct {
	busy, cassandra, kafka float64 // cores
}

func secs(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
}

// since is d − prev, signed, "after" what.
func since(d, prev time.Duration, what string) string {
	if d == 0 || prev == 0 {
		return ""
	}
	x := d - prev
	if x < 0 {
		return fmt.Sprintf("%.1f s before %s", -x.Seconds(), what)
	}
	return fmt.Sprintf("+%.1f s after %s", x.Seconds(), what)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func reasonList(m map[string]int) string {
	var parts []string
	for _, r := range []string{reasonTooShort, reasonEpisode, reasonAudiobook, reasonNoMetadata, reasonOutOfRange} {
		if m[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[r], r))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *result) print() {
	o, h, ir, st := r.o, r.h, r.ir, r.st
	read, accepted, skipped, refused := h.totals()
	mark := func(got, want int) string {
		if got == want {
			return "= expected"
		}
		return fmt.Sprintf("!!! expected %d", want)
	}
	fmt.Printf("\nbench-import: a %d-year Spotify Extended Streaming History through `topk import` until every range answers exactly; %s, %d CPUs\n\n",
		o.years, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	audio := 0
	for _, f := range h.files {
		if strings.Contains(f.name, "_Audio_") {
			audio++
		}
	}
	fmt.Printf("archive: my_spotify_data.zip, %s, %d audio files + %d video + the PDF; %d streams generated, %d records with the repeats across files\n",
		benchkit.MiB(r.size), audio, len(h.files)-audio, len(h.streams), read)
	fmt.Printf("import:  bin/topk import --user %s my_spotify_data.zip, as a process (exit status %d: 3 is \"done, records refused\")\n\n", o.user, ir.exit)
	fileOK := len(ir.files) == len(h.files)
	for _, f := range h.files {
		g, ok := ir.files[f.name]
		fileOK = fileOK && ok && g.read == f.read && g.accepted == f.accepted && maps.Equal(g.skipped, f.skipped) && maps.Equal(g.refused, f.refused)
	}
	benchkit.Table(os.Stdout, []string{"import report", "records", "check", "reasons"}, [][]string{
		{"read", strconv.Itoa(ir.read), mark(ir.read, read), ""},
		{"accepted", strconv.Itoa(ir.accepted), mark(ir.accepted, accepted), fmt.Sprintf("%d distinct listens, %d repeated across files", len(h.listens), accepted-len(h.listens))},
		{"skipped by rule", strconv.Itoa(ir.skipped), mark(ir.skipped, sum(skipped)), reasonList(skipped)},
		{"refused", strconv.Itoa(ir.refused), mark(ir.refused, sum(refused)), reasonList(refused)},
		{"sent to Kafka", strconv.Itoa(ir.sent), mark(ir.sent, accepted), fmt.Sprintf("+ %d dead letters", ir.dead)},
	})
	if fileOK {
		fmt.Printf("every file's line of the report = its expected counts and reasons (%d files)\n", len(h.files))
	} else {
		fmt.Printf("!!! the report's file lines differ from the expected counts:\n%s\n", ir.stdout)
	}
	counted, dups := r.agg[`topk_aggregator_listens_total{outcome="counted"}`], r.agg[`topk_aggregator_listens_total{outcome="duplicate"}`]
	bang := ""
	if int(counted) != len(h.listens) || int(dups) != accepted-len(h.listens) {
		bang = "!!! "
	}
	fmt.Printf("%saggregator: %.0f listens counted (expected %d), %.0f duplicates (expected %d)\n\n", bang, counted, len(h.listens), dups, accepted-len(h.listens))

	fmt.Println("time from the start of the import (bin/topk import started):")
	benchkit.Table(os.Stdout, []string{"stage", "done at", "took", ""}, [][]string{
		{"import: reading (files read and mapped)", "", secs(ir.reading), ""},
		{"import: Kafka (waiting for acks)", "", secs(ir.kafka), ""},
		{"import: process exited", secs(st.imported), secs(ir.wall), fmt.Sprintf("start-up and the rest: %s", secs(ir.wall-ir.reading-ir.kafka))},
		{"ingest: every record through the gate", secs(st.ingested), "", since(st.ingested, st.imported, "the import")},
		{"aggregator: every listen counted", secs(st.counted), "", since(st.counted, st.imported, "the import")},
		{"aggregator: committed (lag 0)", secs(st.aggregated), "", since(st.aggregated, st.counted, "all counted")},
		{"raw writer: committed (lag 0)", secs(st.rawWritten), "", since(st.rawWritten, st.counted, "all counted")},
		{"flusher: rollups written, committed (lag 0)", secs(st.flushed), "", since(st.flushed, st.counted, "all counted")},
	})
	fmt.Println("(counters polled every 100 ms, committed lags every 200 ms; sinks commit every 1 s, so a lag-0 time may be up to 1 s late)")
	if a := r.alone; a.wall > 0 {
		fmt.Printf("the same import alone (before the pipeline started, nothing consuming): reading %s, Kafka %s, process %s, CPU %s — %.1f× faster than beside the pipeline\n",
			secs(a.reading), secs(a.kafka), secs(a.wall), secs(a.cpu), ir.wall.Seconds()/a.wall.Seconds())
	}
	fmt.Println()

	fmt.Printf("ranges: first answered exactly (activity: plays in total and per day; top tracks, artists, albums: every page, every item's plays, totals), polled every %v\n", o.poll)
	var rows [][]string
	var last, began time.Duration
	allExact := true
	for _, rs := range r.p.snapshot() {
		row := []string{rs.spec.label, rs.from + ".." + rs.to, "", "", "", "", rs.sources, secs(rs.at), secs(rs.took), strconv.Itoa(rs.checks)}
		if rs.want != nil {
			row[2], row[3], row[4], row[5] = strconv.FormatInt(rs.want.plays, 10), strconv.Itoa(len(rs.want.tracks)), strconv.Itoa(len(rs.want.artists)), strconv.Itoa(len(rs.want.albums))
		}
		if !rs.exact {
			allExact = false
			row[7] = "NOT EXACT: " + rs.why
		}
		if rs.at > last {
			last, began = rs.at, rs.at-rs.took
		}
		rows = append(rows, row)
	}
	benchkit.Table(os.Stdout, []string{"range", "days", "plays", "tracks", "artists", "albums", "source (activity/tracks/artists/albums)", "exact at", "check took", "checks"}, rows)
	fmt.Println()
	if len(r.again) == 0 && allExact {
		fmt.Println("checked once more at the end: every range still exact")
	} else if len(r.again) > 0 {
		fmt.Printf("!!! checked once more at the end, not exact: %s\n", strings.Join(r.again, "; "))
	}
	verdict := "MET"
	if !allExact || last > o.goal || len(r.again) > 0 {
		verdict = "NOT MET"
	}
	if allExact {
		fmt.Printf("TIME TO EXACT (the last range): %s — goal ≤ %v: %s (its exact check began at %s)\n", secs(last), o.goal, verdict, secs(began))
		fmt.Printf("  split: import %s (reading %s, Kafka %s, start-up %s) · aggregator %s after the import · flusher %s after the aggregator · api %s after the flusher\n",
			secs(st.imported), secs(ir.reading), secs(ir.kafka), secs(ir.wall-ir.reading-ir.kafka),
			secs(max(0, st.counted-st.imported)), secs(max(0, st.flushed-max(st.counted, st.imported))), secs(max(0, last-st.flushed)))
	} else {
		fmt.Printf("TIME TO EXACT: not reached within %v — goal ≤ %v: %s\n", o.timeout, o.goal, verdict)
	}
	refT := r.ref.time()
	fmt.Printf("reference: kafka-producer-perf-test, %d records drawn from the same listens (%.0f B each on average), 1 partition, acks=all, idempotent: %s (%.0f records/s, %.1f MB/s)\n",
		r.ref.records, r.ref.avgBytes, secs(refT), r.ref.rate, r.ref.mbs)
	if allExact {
		fmt.Printf("time to exact ÷ reference: %.1f×\n", last.Seconds()/refT.Seconds())
	}
	fmt.Printf("import's Kafka phase ÷ reference: %.1f×; the whole import process ÷ reference: %.1f×\n", ir.kafka.Seconds()/refT.Seconds(), ir.wall.Seconds()/refT.Seconds())
	fmt.Println()

	r.printCPU()
	r.printTimeline()
	f := r.flusher
	fmt.Printf("\nflusher: %.0f user-days written (%d days have listens), %.0f month and %.0f year rollups written (%.0f and %.0f unchanged), %.0f rollup rounds, %.0f rows written, %.0f CQL reads\n",
		f["topk_flusher_days_written_total"], len(h.days()), f[`topk_flusher_rollups_written_total{level="month"}`], f[`topk_flusher_rollups_written_total{level="year"}`],
		f[`topk_flusher_rollups_unchanged_total{level="month"}`], f[`topk_flusher_rollups_unchanged_total{level="year"}`],
		f["topk_flusher_rollup_rounds_total"], sumPrefix(f, "topk_flusher_rows_written_total"), sumPrefix(f, "topk_flusher_reads_total"))
	var tables []string
	for k, v := range f {
		if t, ok := strings.CutPrefix(k, `topk_flusher_rows_written_total{table="`); ok {
			tables = append(tables, fmt.Sprintf("%s %.0f", strings.TrimSuffix(t, `"}`), v))
		}
	}
	slices.Sort(tables)
	fmt.Printf("flusher's rows by table: %s; the aggregator's table topic: %d records, %s on disk\n", strings.Join(tables, ", "), r.tableRecords, benchkit.MiB(r.tableBytes))
	fmt.Printf("flusher's sink: %.0f batches written, %.1f s writing them (summed over partitions), %.1f s of rollup rounds waiting for partitions\n",
		f[`topk_sink_batches_written_total{sink="flusher"}`], f[`topk_sink_write_seconds_sum{sink="flusher"}`], f["topk_flusher_rollup_round_wait_seconds_sum"])
}

// sumPrefix sums the series of a metric family.
func sumPrefix(m map[string]float64, family string) float64 {
	var s float64
	for k, v := range m {
		if k == family || strings.HasPrefix(k, family+"{") {
			s += v
		}
	}
	return s
}

func (r *result) printCPU() {
	c0, ci, c1 := r.cpu0, r.st.cpuImported, r.cpu1
	if ci.at.IsZero() {
		ci = c1
	}
	w1, w2 := ci.at.Sub(c0.at).Seconds(), c1.at.Sub(ci.at).Seconds()
	cell := func(d time.Duration, w float64) string {
		if w <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f s  %.2f", d.Seconds(), d.Seconds()/w)
	}
	row := func(name string, a, b time.Duration) []string { return []string{name, cell(a, w1), cell(b, w2)} }
	rows := [][]string{row("topk import", r.ir.cpu, 0)}
	ours := [2]time.Duration{r.ir.cpu, 0} // topk, Kafka, Cassandra
	add := func(name string, a, b time.Duration) {
		rows = append(rows, row(name, a, b))
		ours[0] += a
		ours[1] += b
	}
	for _, name := range pipeline {
		add("topk "+name, ci.procs[name]-c0.procs[name], c1.procs[name]-ci.procs[name])
	}
	add("kafka", ci.kafka-c0.kafka, c1.kafka-ci.kafka)
	add("cassandra", ci.cassandra-c0.cassandra, c1.cassandra-ci.cassandra)
	work := ours[0] + ours[1]
	bench := [2]time.Duration{ci.self - c0.self, c1.self - ci.self}
	busy := [2]time.Duration{ci.busy - c0.busy, c1.busy - ci.busy}
	rows = append(rows, row("this benchmark (api poller, watcher)", bench[0], bench[1]),
		row("other work on the machine (busy − the above)", max(0, busy[0]-ours[0]-bench[0]), max(0, busy[1]-ours[1]-bench[1])),
		row("machine (everything, busy)", busy[0], busy[1]))
	fmt.Printf("CPU (seconds, and cores = seconds per second of the phase) during the import (%.1f s) and after it until the polling ended (%.1f s);\n", w1, w2)
	fmt.Printf("before the import, with the pipeline idle, the machine was busy %.2f cores (Cassandra %.2f, Kafka %.2f): other work on this machine\n",
		r.baseline.busy, r.baseline.cassandra, r.baseline.kafka)
	fmt.Printf("the api was asked %d times (%.0f/s)\n", r.p.requests.Load(), float64(r.p.requests.Load())/(w1+w2))
	benchkit.Table(os.Stdout, []string{"process", "during the import", "after it"}, rows)
	fmt.Printf("the import's work (topk, Kafka, Cassandra): %.1f CPU s, at least %.1f s on %d cores even perfectly spread; the machine was busy %.0f%% of the time\n",
		work.Seconds(), work.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(), 100*(busy[0]+busy[1]).Seconds()/((w1+w2)*float64(runtime.NumCPU())))
}

func (r *result) printTimeline() {
	fmt.Println("\ntimeline (lags: records not committed by the group; cores: since the line before):")
	var rows [][]string
	lag := func(l int64) string {
		if l < 0 {
			return "?"
		}
		return strconv.FormatInt(l, 10)
	}
	for _, s := range r.st.timeline {
		phase := ""
		if s.importing {
			phase = "importing"
		}
		rows = append(rows, []string{fmt.Sprintf("%.0f s", s.t.Seconds()), phase, strconv.Itoa(s.ingested), strconv.Itoa(s.counted),
			lag(s.rawLag), lag(s.flusherLag), fmt.Sprintf("%d/%d", s.exact, len(r.p.states)),
			fmt.Sprintf("%.2f", s.busy), fmt.Sprintf("%.2f", s.cass), fmt.Sprintf("%.2f", s.kafkaC)})
	}
	benchkit.Table(os.Stdout, []string{"t", "", "ingested", "counted", "raw-writer lag", "flusher lag", "ranges exact", "machine cores", "cassandra", "kafka"}, rows)
}
