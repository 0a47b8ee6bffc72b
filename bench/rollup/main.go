package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

func main() {
	base := flag.Int("base", 100_000, "sitewide_days rows written and rolled up first")
	items := flag.Int("items", 3000, "items per entity")
	flushes := flag.String("flushes", "1000,5000,20000", "rows of each timed flush, comma-separated")
	concurrency := flag.Int("concurrency", 16, "the store's Concurrency (batches in flight)")
	flag.Parse()
	var sizes []int
	for _, f := range strings.Split(*flushes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench-rollup: -flushes: %q is not a positive number\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(*base, *items, *concurrency, sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-rollup:", err)
		os.Exit(1)
	}
}

// rows makes sitewide_days rows of 2024–2025, each with a version of its
// own that grows (as a key's value's does: two rows of one key never
// share a version), and keeps the newest row of each key.
type rows struct {
	rng     *rand.Rand
	items   int
	version uint64
	newest  map[sitewide.Key]cassandra.SitewideRow
}

func (g *rows) make(n int) []cassandra.SitewideRow {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]cassandra.SitewideRow, 0, n)
	for range n {
		e := topk.Entities[g.rng.IntN(len(topk.Entities))]
		item := uint64(1 + g.rng.IntN(g.items))
		k := sitewide.Key{Entity: e, Item: item<<8 | uint64(e[0]), Day: start.AddDate(0, 0, g.rng.IntN(731)), Bucket: uint32(g.rng.IntN(64))}
		g.version++
		r := cassandra.SitewideRow{Key: k, Version: g.version, Plays: int64(1 + g.rng.IntN(20)), Listeners: 1,
			Name: fmt.Sprintf("%s %d", e, item), Artist: "A"}
		out = append(out, r)
		g.newest[k] = r
	}
	return out
}

func run(base, items, concurrency int, sizes []int) error {
	ctx := context.Background()
	e, err := benchkit.Setup(ctx, "rollup")
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := wiring.Cassandra(e.Config.Cassandra)
	cfg.Keyspace = "topk_" + e.Config.Namespace
	benchkit.OnInterrupt("bench-rollup: interrupted, dropping the keyspace", func() {
		_ = cassandra.DropKeyspace(context.Background(), cfg, cfg.Keyspace)
	})
	defer func() {
		if err := cassandra.DropKeyspace(context.Background(), cfg, cfg.Keyspace); err != nil {
			fmt.Fprintf(os.Stderr, "bench-rollup: dropping keyspace %s: %v\n", cfg.Keyspace, err)
		}
	}()
	if err := cassandra.Migrate(ctx, cfg, e.Log); err != nil {
		return err
	}
	s, err := cassandra.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	st := cassandra.NewSitewideStore(s, cassandra.SitewideStoreConfig{Concurrency: concurrency})
	g := &rows{rng: rand.New(rand.NewPCG(1, 2)), items: items, newest: map[sitewide.Key]cassandra.SitewideRow{}}
	fmt.Fprintf(os.Stderr, "bench-rollup: keyspace %s: writing %d rows of 2024–2025\n", cfg.Keyspace, base)
	start := time.Now()
	bar := benchkit.Bar(int64(base), "rows")
	for done := 0; done < base; {
		n := min(10_000, base-done)
		if err := st.WriteSitewide(ctx, g.make(n)); err != nil {
			return err
		}
		done += n
		_ = bar.Add(n)
	}
	_ = bar.Finish()
	wrote := time.Since(start)
	start = time.Now()
	fmt.Fprintln(os.Stderr, "bench-rollup: rolling up 2024–2025")
	n, err := st.RollUp(ctx, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), e.Log)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d rows in %v; rolled up %d months and %d years in %v\n\n", base, wrote.Round(time.Millisecond),
		n.Months, n.Years, time.Since(start).Round(time.Millisecond))
	var table [][]string
	for _, size := range sizes {
		rs := g.make(size)
		start := time.Now()
		if err := st.WriteSitewide(ctx, rs); err != nil {
			return err
		}
		w := time.Since(start)
		start = time.Now()
		if err := st.RollupTouched(ctx, rs); err != nil {
			return err
		}
		r := time.Since(start)
		table = append(table, []string{strconv.Itoa(size), w.Round(time.Millisecond).String(), r.Round(time.Millisecond).String(),
			fmt.Sprintf("%.1f×", r.Seconds()/w.Seconds())})
	}
	benchkit.Table(os.Stdout, []string{"rows in the flush", "WriteSitewide (reference)", "RollupTouched", "ratio"}, table)
	return verify(ctx, cfg, g.newest)
}

// verify compares each entity's whole years (read from the year
// rollups) with the plays of the newest rows summed per item.
func verify(ctx context.Context, cfg cassandra.Config, newest map[sitewide.Key]cassandra.SitewideRow) error {
	r := cassandra.NewReader(cfg)
	defer r.Close()
	var errs []error
	checked := 0
	for _, e := range topk.Entities {
		for _, y := range []int{2024, 2025} {
			want := map[uint64]int64{}
			for k, row := range newest {
				if k.Entity == e && k.Day.Year() == y {
					want[k.Item] += row.Plays
				}
			}
			got, err := r.SitewideRange(ctx, e, time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC),
				func(context.Context) func() { return func() {} })
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				errs = append(errs, fmt.Errorf("%s %d: %d items, want %d", e, y, len(got), len(want)))
			}
			for _, it := range got {
				if it.Plays != want[it.Key] {
					errs = append(errs, fmt.Errorf("%s %d item %x: %d plays, want %d", e, y, it.Key, it.Plays, want[it.Key]))
				}
			}
			checked += len(got)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the rollups do not match the rows:\n%w", err)
	}
	fmt.Printf("\nverified: %d (entity, year, item) rollups equal the newest rows' sums\n", checked)
	return nil
}
