package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/topk-charts/topk/processors/aggregator"
)

const viewUsage = `usage: topk view backfill [--dry-run]

Copies the latest value of every user-day of the last TOPK_VIEW_DAYS days
from the aggregator table to the recent topic the api's views read. Needed
once on an installation upgraded from a version without the recent topic.
Refuses while any aggregator copy runs; running it twice writes the same
values again.`

func runView(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "backfill" {
		fmt.Fprintln(env.Stderr, viewUsage)
		return flag.ErrHelp
	}
	fs := flags(env, "view backfill")
	dry := fs.Bool("dry-run", false, "count what would be written, write nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c := env.Config
	res, err := aggregator.Backfill(ctx, settings(env, "view-backfill"), aggregator.BackfillConfig{
		Namespace: c.Namespace, RecentDays: c.Charts.ViewDays, DryRun: *dry,
		Progress: func(p int32, read, written int64) {
			fmt.Fprintf(env.Stderr, "\rpartition %d: %d table records read, %d recent user-days", p, read, written)
		},
	})
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return err
	}
	verb := "wrote"
	if *dry {
		verb = "would write"
	}
	fmt.Fprintf(env.Stdout, "%s %d recent user-days (of %d table records in %d partitions)\n", verb, res.Written, res.Read, res.Partitions)
	return nil
}
