// The timed stages: a stage's figures (result, CPU samples), a bare
// writer's run in this process, a topk sink's run as its own process until
// it has marked its backlog, and the pause for Cassandra in between.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
)

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
	fmt.Fprintf(os.Stderr, "bench-sinks: Cassandra quiet after %v\n", benchkit.WaitQuiet(b.cassPID, b.o.settle).Round(time.Second))
}
