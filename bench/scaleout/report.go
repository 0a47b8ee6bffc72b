// The tables of both phases: throughput per copy count, freshness per
// window of send time.

package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
)

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
