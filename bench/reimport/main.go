// Command reimport is `make bench-reimport`: what re-importing listens that
// are already counted costs the aggregator's changelog. It produces N
// listens of one heavy user spread over a year, lets topk ingest and topk
// aggregator (each its own process) count them, then produces exactly the
// same records again and measures what the re-import added to the
// aggregator table topic (records and bytes), beside what the first import
// wrote (the reference of the same run). Every re-imported listen is a
// duplicate; the aggregator rewrites a user-day's unchanged state at most
// once per key and assignment, so the re-import should write about one
// value per user-day, not one per listen.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/ingest"
)

func main() {
	n := flag.Int("n", 100_000, "listens of the heavy user (one year)")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench-reimport:", err)
		os.Exit(1)
	}
}

// tableSize is the table topic's record count (sum of end offsets) and
// size on disk.
func tableSize(e *benchkit.Env, table string) (records, bytes int64, err error) {
	parts, err := e.Client.Partitions(table)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range parts {
		o, err := e.Client.GetOffset(table, p, sarama.OffsetNewest)
		if err != nil {
			return 0, 0, err
		}
		records += o
	}
	bytes, err = e.TopicBytes(table)
	return records, bytes, err
}

func run(n int) error {
	e, err := benchkit.Setup(context.Background(), "reimport")
	if err != nil {
		return err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("reimport")
	if err != nil {
		return err
	}
	defer remove()

	// One heavy user: n listens over the 365 days before today.
	gen := benchkit.NewGenerator(1, 1)
	start := time.Now().UTC().AddDate(-1, 0, 0).Truncate(time.Second)
	step := 365 * 24 * time.Hour / time.Duration(n)
	records := make([][]byte, n)
	for i := range records {
		records[i] = gen.Listen("heavy", start.Add(time.Duration(i)*step))
	}
	produce := func() error {
		i := 0
		_, err := e.Produce(string(e.Topics.Raw), n, func() (string, []byte) {
			i++
			return "heavy", records[i-1]
		})
		return err
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
	defer func() { agg.Stop() }() // the last aggregator started
	table := string(aggregator.Table(e.Config.Namespace))
	caughtUp := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := kafka.WaitCaughtUp(ctx, e.Client, e.Admin, string(ingest.Group(e.Config.Namespace)), string(e.Topics.Raw), nil); err != nil {
			return err
		}
		return kafka.WaitCaughtUp(ctx, e.Client, e.Admin, string(aggregator.Group(e.Config.Namespace)), string(e.Topics.Valid), nil)
	}

	type phase struct {
		name           string
		records, bytes int64
		restartFirst   bool
	}
	phases := []*phase{
		{name: "first import (reference)"},
		{name: "re-import, same aggregator"},
		{name: "re-import after an aggregator restart", restartFirst: true},
	}
	var r0, b0 int64
	for _, ph := range phases {
		if ph.restartFirst {
			agg.Stop()
			if agg, err = e.Start(filepath.Join(dir, "aggregator2.log"), "aggregator"); err != nil {
				return err
			}
		}
		if err := produce(); err != nil {
			return err
		}
		if err := caughtUp(); err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		r, b, err := tableSize(e, table)
		if err != nil {
			return err
		}
		ph.records, ph.bytes = r-r0, b-b0
		r0, b0 = r, b
	}
	if agg.Exited() || ing.Exited() {
		return fmt.Errorf("a service exited; logs in %s", dir)
	}
	f := func(x int64) string { return strconv.FormatInt(x, 10) }
	fmt.Printf("\nbench-reimport: %d listens of one user over 365 days, imported three times (%s)\n\n",
		n, time.Now().UTC().Format(time.RFC3339))
	var rows [][]string
	for _, ph := range phases {
		rows = append(rows, []string{ph.name, f(ph.records), f(ph.bytes), fmt.Sprintf("%.1f", float64(ph.bytes)/float64(n)),
			fmt.Sprintf("%.4f", float64(ph.bytes)/float64(phases[0].bytes))})
	}
	benchkit.Table(os.Stdout, []string{"phase", "table records", "table bytes (LZ4, on disk)", "bytes per listen", "÷ first import"}, rows)
	return nil
}
