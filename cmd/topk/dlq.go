package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

func init() {
	commands["dlq"] = command{"dead letters: `topk dlq replay [--reason r] [--dry-run]` re-injects them after a fix", runDLQ}
}

func runDLQ(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "replay" {
		return fmt.Errorf("usage: topk dlq replay [--reason r] [--dry-run]")
	}
	fs := flags(env, "dlq replay")
	reason := fs.String("reason", "", "replay only letters with this reason (e.g. daily_cap, bad_played_at)")
	dry := fs.Bool("dry-run", false, "count what would be replayed, produce nothing, keep no progress")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c := env.Config
	t := listen.NewTopics(c.Namespace)
	group := listen.Namespaced(c.Namespace, "topk-dlq-replay")
	if *reason != "" {
		group += "." + *reason
	}
	st, err := processors.Replay(ctx, processors.ReplayConfig{
		Brokers: c.Kafka.Brokers, DLQ: string(t.DLQ), Raw: string(t.Raw), Group: group,
		Reason: *reason, DryRun: *dry, Log: env.Log,
		Progress: func(s processors.ReplayStats) {
			fmt.Fprintf(env.Stderr, "\rread %d  replayed %d  skipped %d", s.Read, s.Replayed, s.Skipped)
		},
	})
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return err
	}
	reasons := make([]string, 0, len(st.ByReason))
	for r := range st.ByReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	verb := "replayed"
	if *dry {
		verb = "would replay"
	}
	fmt.Fprintf(env.Stdout, "%s %d of %d dead letters into %s\n", verb, st.Replayed, st.Read, t.Raw)
	for _, r := range reasons {
		fmt.Fprintf(env.Stdout, "  %-24s %d\n", r, st.ByReason[r])
	}
	return nil
}
