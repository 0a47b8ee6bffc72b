package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
)

const dlqUsage = `usage:
  topk dlq replay [--reason r] [--dry-run]
  topk dlq quarantine --group G --topic T --partition P --offset O [--note text] [--wait d] [--force] [--dry-run]`

func runDLQ(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "replay":
			return runDLQReplay(ctx, env, args[1:])
		case "quarantine":
			return runDLQQuarantine(ctx, env, args[1:])
		}
	}
	fmt.Fprintln(env.Stderr, dlqUsage)
	return flag.ErrHelp
}

// runDLQReplay: `topk dlq replay [--reason r] [--dry-run]`.
func runDLQReplay(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "dlq replay")
	reason := fs.String("reason", "", "replay only letters with this reason (e.g. daily_cap, bad_played_at)")
	dry := fs.Bool("dry-run", false, "count what would be replayed, produce nothing, keep no progress")
	if err := fs.Parse(args); err != nil {
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

const quarantineHelp = `usage: topk dlq quarantine --group G --topic T --partition P --offset O [flags]

Unsticks a partition: copies the record at (T, P, O) to the DLQ (reason
quarantined, stage operator, the original key and bytes, key T/P/O), then
commits offset O+1 for consumer group G on (T, P), so the group resumes
past it. Replay it later with ` + "`topk dlq replay --reason quarantined`" + `.

It refuses unless G is stuck exactly there: G's committed offset on (T, P)
must be O (lower would skip the records in between; higher means the
record was already passed; none is accepted only with --force). Kafka takes
an offset commit from outside a group only while the group is empty: stop
every copy of the service first (or pass --wait while you stop them; a
killed copy leaves the group after its session timeout).

If the dead letter is written but the commit fails, run it again: it writes
a second dead letter with the same key (harmless) and commits.

--group is the group as Kafka knows it (with the TOPK_NAMESPACE prefix, if
any), or the part's short name: ingest, aggregator, raw-writer, flusher,
fanout, sitewide, sitewide-flusher.
List and inspect groups (committed offset, lag, members per partition) with
  bin/kafka-run-class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server 127.0.0.1:9092 --list            (or --describe --group G)

flags:
`

// quarantineGroups maps the services' short names to their consumer groups.
func quarantineGroups(namespace string) map[string]string {
	return map[string]string{
		"ingest":     string(ingest.Group(namespace)),
		"aggregator": string(aggregator.Group(namespace)),
		"raw-writer": rawwriter.Group(namespace),
		"flusher":    flusher.Group(namespace),
		// topk sitewide's parts
		"fanout":           string(fanout.Group(namespace)),
		"sitewide":         string(sitewide.Group(namespace)),
		"sitewide-flusher": sitewideflusher.Group(namespace),
	}
}

// quarantineGroup is the consumer group --group names: a service's short
// name, or the group as Kafka knows it.
func quarantineGroup(namespace, name string) string {
	if g, ok := quarantineGroups(namespace)[name]; ok {
		return g
	}
	return name
}

// parseQuarantine reads the flags of `topk dlq quarantine`.
func parseQuarantine(env *Env, args []string) (processors.QuarantineConfig, error) {
	fs := flags(env, "dlq quarantine")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), quarantineHelp)
		fs.PrintDefaults()
	}
	group := fs.String("group", "", "consumer group: ingest, aggregator, raw-writer, flusher, or a group name as Kafka knows it (required)")
	topic := fs.String("topic", "", "topic the group is stuck on, e.g. "+string(listen.NewTopics(env.Config.Namespace).Raw)+" (required)")
	partition := fs.Int("partition", 0, "partition (required)")
	offset := fs.Int64("offset", 0, "offset of the record to move aside: the group's committed offset (required)")
	note := fs.String("note", "", "added to the dead letter's detail header (e.g. a ticket or the error seen)")
	wait := fs.Duration("wait", 0, "wait up to this long for the group to have no members (default: refuse at once)")
	force := fs.Bool("force", false, "quarantine even when the group has no committed offset on the partition")
	dry := fs.Bool("dry-run", false, "read the record and check everything, write and commit nothing")
	if err := fs.Parse(args); err != nil {
		return processors.QuarantineConfig{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, name := range []string{"group", "topic", "partition", "offset"} {
		if !set[name] || fs.Lookup(name).Value.String() == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		fs.Usage()
		return processors.QuarantineConfig{}, fmt.Errorf("%s required", strings.Join(missing, ", "))
	}
	if *partition < 0 || *offset < 0 {
		return processors.QuarantineConfig{}, fmt.Errorf("--partition %d --offset %d: must be ≥ 0", *partition, *offset)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return processors.QuarantineConfig{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *wait < 0 {
		return processors.QuarantineConfig{}, fmt.Errorf("--wait %s: must be ≥ 0", *wait)
	}
	c := env.Config
	return processors.QuarantineConfig{
		Brokers: c.Kafka.Brokers, DLQ: string(listen.NewTopics(c.Namespace).DLQ),
		Group: quarantineGroup(c.Namespace, *group), Topic: *topic, Partition: int32(*partition), Offset: *offset,
		Note: *note, Force: *force, Wait: *wait, DryRun: *dry, Log: logWith(env.Log, "dlq quarantine"),
	}, nil
}

// runDLQQuarantine: `topk dlq quarantine --group G --topic T --partition P --offset O`.
func runDLQQuarantine(ctx context.Context, env *Env, args []string) error {
	qc, err := parseQuarantine(env, args)
	if err != nil {
		return err
	}
	res, err := processors.Quarantine(ctx, qc)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%s/%d offset %d", qc.Topic, qc.Partition, qc.Offset)
	if qc.DryRun {
		committed := "none"
		if res.Committed >= 0 {
			committed = fmt.Sprint(res.Committed)
		}
		fmt.Fprintf(env.Stdout, "would quarantine %s for group %s (committed offset: %s)\n", where, qc.Group, committed)
		fmt.Fprintf(env.Stdout, "  record:  key %s, %d bytes, at %s\n", preview(res.Key), len(res.Value), res.Timestamp.UTC().Format(time.RFC3339))
		fmt.Fprintf(env.Stdout, "  value:   %s\n", preview(res.Value))
		fmt.Fprintf(env.Stdout, "  write:   %s key %s", qc.DLQ, processors.DeadLetterKey(qc.Topic, qc.Partition, qc.Offset))
		for _, h := range res.Letter.Headers {
			fmt.Fprintf(env.Stdout, ", %s=%q", h.Key, h.Value)
		}
		fmt.Fprintf(env.Stdout, "\n  commit:  offset %d for group %s on %s/%d\n", res.NewOffset, qc.Group, qc.Topic, qc.Partition)
		if res.Members > 0 {
			fmt.Fprintf(env.Stdout, "the group has %d active members now: stop its services first (or pass --wait), or the real run refuses\n", res.Members)
		}
		return nil
	}
	fmt.Fprintf(env.Stdout, "quarantined %s: dead letter at %s partition %d offset %d; group %s resumes at %d\n",
		where, qc.DLQ, res.DLQPartition, res.DLQOffset, qc.Group, res.NewOffset)
	fmt.Fprintln(env.Stdout, "start the group's services again; replay the record after a fix with `topk dlq replay --reason quarantined`")
	return nil
}

// preview is the start of a record's key or value, for a person to
// recognize it.
func preview(v []byte) string {
	if v == nil {
		return "(none)"
	}
	const n = 200
	if len(v) > n {
		return fmt.Sprintf("%q… (%d more bytes)", v[:n], len(v)-n)
	}
	return fmt.Sprintf("%q", v)
}
