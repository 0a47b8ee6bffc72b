// The end of a run: both keyspaces checked against the generated input,
// and the report.

package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/cassandra"
)

// verification is the end-of-run comparison of both keyspaces with the input.
type verification struct {
	rows [][]string
	ok   bool
}

func (b *bench) check(ctx context.Context, ds *dataset) (*verification, error) {
	v := &verification{ok: true}
	got := map[string]tables{}
	for _, ks := range []string{b.e.Config.Cassandra.Keyspace, b.refKS} {
		fmt.Fprintf(os.Stderr, "bench-sinks: scanning %s …\n", ks)
		cfg := wiring.Cassandra(b.e.Config.Cassandra)
		cfg.Keyspace = ks
		cl := cassandra.NewCluster(cfg)
		cl.Keyspace = ks
		cl.Timeout = 30 * time.Second
		cl.Consistency = gocql.LocalQuorum
		s, err := cl.CreateSession()
		if err != nil {
			return nil, err
		}
		t, err := readTables(ctx, s)
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ks, err)
		}
		got[ks] = t
	}
	cmp := func(name, what string, want digest, pick func(tables) digest) {
		r := []string{name, fmt.Sprintf("%d rows / %d %s", want.rows, want.partitions, what)}
		for _, ks := range []string{b.e.Config.Cassandra.Keyspace, b.refKS} {
			d := pick(got[ks])
			mark := "ok"
			if d != want {
				mark = "WRONG"
				v.ok = false
			}
			r = append(r, fmt.Sprintf("%d / %d %s", d.rows, d.partitions, mark))
		}
		v.rows = append(v.rows, r)
	}
	cmp("raw_listens", "user-days", ds.want.raw, func(t tables) digest { return t.raw })
	cmp("day_items", "user-days", ds.want.dayItems, func(t tables) digest { return t.dayItems })
	cmp("user_days", "users", ds.want.userDays, func(t tables) digest { return t.userDays })
	cmp("month_items", "user-months", ds.want.months, func(t tables) digest { return t.months })
	cmp("year_items", "user-years", ds.want.years, func(t tables) digest { return t.years })
	return v, nil
}

// stages names the results the report's notes refer to.
type stages struct{ rw, bareRaw, fl, bd, br *result }

func (b *bench) report(ds *dataset, results []*result, st stages, check *verification) {
	rw, fl, bd := st.rw, st.fl, st.bd
	e := b.e
	fmt.Printf("\nbench-sinks: %d listens, %d users × up to %d days over the last 3 years (%d user-days, %d plays counted), "+
		"valid/table topics %d partitions (%s)\n\n",
		ds.listens, ds.users, ds.days, ds.userDays, ds.counted, e.Config.Kafka.ValidPartitions, time.Now().UTC().Format(time.RFC3339))
	pct := func(x float64) string {
		if x < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f%%", x)
	}
	var rows [][]string
	for _, r := range results {
		ratio := ""
		if r.ref != nil {
			if r.unit == "rows" {
				ratio = fmt.Sprintf("%.2f", r.rowsPerSec()/r.ref.rowsPerSec())
			} else {
				ratio = fmt.Sprintf("%.2f", r.userDaysPerSec()/r.ref.userDaysPerSec())
			}
		}
		rss, ud := "—", "—"
		if r.rss > 0 {
			rss = benchkit.MiB(r.rss)
		}
		if r.userDays > 0 {
			ud = fmt.Sprintf("%.0f", r.userDaysPerSec())
		}
		rows = append(rows, []string{r.name, fmt.Sprintf("%d %s", r.records, r.unit), fmt.Sprintf("%.1f", r.secs),
			fmt.Sprintf("%.0f", r.rowsPerSec()), ud, ratio, rss, pct(r.cassCPU), pct(r.procCPU), pct(r.busy)})
	}
	benchkit.Table(os.Stdout, []string{"stage", "records", "seconds", "rows/s", "user-days/s", "÷ bare", "peak RSS",
		"Cassandra CPU", "writer CPU", "machine busy"}, rows)
	fmt.Println()
	goal := fl.userDaysPerSec() / fl.ref.userDaysPerSec()
	verdict := "met"
	if goal < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("goal flusher user-days/s ≥ 0.5 × bare day + rollup writes: %s (%.2f); ÷ bare day writes alone: %.2f\n",
		verdict, goal, fl.userDaysPerSec()/bd.userDaysPerSec())
	fmt.Printf("raw writer rows/s ÷ bare raw_listens: %.2f\n", rw.rowsPerSec()/rw.ref.rowsPerSec())
	fmt.Println()
	fmt.Printf("rows/s: raw_listens rows (raw), day_items rows (day writes), month_items + year_items rows (rollups); user-days/s: input user-days over the stage's seconds\n")
	fmt.Printf("topk raw-writer: %s\n", rw.extra)
	fmt.Printf("topk flusher: %s\n", fl.extra)
	fmt.Printf("bare writer: %d CQL requests for raw_listens and users_by_prefix; %d for day writes (%d user-days, as many user_days rows); %d for %d month and %d year rollups, each written once; no reads\n",
		st.bareRaw.requests, bd.requests, ds.userDays, st.br.requests, len(ds.months), len(ds.years))
	fmt.Printf("CPU: %% of one core over the stage (Cassandra pid %d; writer = the topk process, or this process for the bare writer); machine busy = all %s cores\n",
		b.cassPID, strconv.Itoa(runtime.NumCPU()))
	fmt.Printf("peak RSS of this process (generated input, producer, bare writer): %s\n", benchkit.MiB(benchkit.SelfPeakRSS()))
	if check != nil {
		fmt.Println("\ncorrectness: both keyspaces scanned; rows / partitions, and a digest of every row's content, against the generated input")
		benchkit.Table(os.Stdout, []string{"table", "want", "topk (" + e.Config.Cassandra.Keyspace + ")", "bare (" + b.refKS + ")"}, check.rows)
	}
}
