package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands is every subcommand, in one table.
var commands = map[string]command{
	"config":     {"print the resolved configuration (--shell, --markdown, --names)", runConfig},
	"ping":       {"check that Kafka, Cassandra, Redis and PostgreSQL answer (--wait 90s)", runPing},
	"topics":     {"create or reconcile the Kafka topics", runTopics},
	"migrate":    {"apply the Cassandra and PostgreSQL schemas [cassandra|postgres]", runMigrate},
	"api":        {"serve the HTTP api", runAPI},
	"crawler":    {"run crawl tasks: fetch listens from providers into user.listen.raw", runCrawler},
	"scheduler":  {"restore every active user's crawl task from PostgreSQL (after a Redis flush)", runScheduler},
	"enqueue":    {"crawl a user now (--user alice [--provider simulated] registers a missing one)", runEnqueue},
	"view":       {"`topk view backfill`: copy the recent days from the aggregator table to the views' recent topic (once, after upgrading; aggregators stopped)", runView},
	"dlq":        {"dead letters: `topk dlq replay` re-injects them after a fix; `topk dlq quarantine` moves a stuck record aside", runDLQ},
	"ingest":     {"run the ingest group: user.listen.raw → user.listen.valid | user.listen.dlq", runIngest},
	"aggregator": {"run the aggregator group: exact per-user/day counts in its Goka table", runAggregator},
	"all":        {"run the pipeline, the api, the scheduler and a crawler in one process (a laptop)", runAll},
	"seed":       {"register a simulated population: `topk seed --users 200` (make run does)", runSeed},
	"raw-writer": {"run the raw writer: user.listen.valid → Cassandra raw listens", runRawWriter},
	"flusher":    {"run the flusher: aggregator changelog → Cassandra day values and rollups", runFlusher},
	"sitewide":   {"run the sitewide charts' fan-out, group and flusher: aggregator table → sitewide counts → Cassandra and the api's sitewide view", runSitewide},
	"rekey":      {"re-seal every stored provider token with TOPK_TOKEN_KEY (key rotation; old keys in TOPK_TOKEN_KEY_PREVIOUS)", runRekey},
	"import":     {"import listening history files: `topk import --user U FILE...` (Spotify Extended Streaming History, ListenBrainz export)", runImport},
	"token":      {"users' API tokens (ListenBrainz api): `topk token create|list|revoke --user U [--id N]`", runToken},
}

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs one subcommand and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "topk: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	env, err := LoadEnv(stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "topk: configuration: %v\n", err)
		return 2
	}
	defer env.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		var ee *exitError
		if errors.As(err, &ee) && ee.code != 1 {
			fmt.Fprintf(stderr, "topk %s: %v\n", args[0], ee.err)
			return ee.code
		}
		env.Log.Error("topk "+args[0]+" failed", "err", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: topk <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nConfiguration comes from TOPK_* environment variables: `topk config --markdown` lists them.")
}

// flags returns a FlagSet for a subcommand that writes its usage to stderr.
func flags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("topk "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func logWith(log *slog.Logger, component string) *slog.Logger {
	return log.With("component", strings.ReplaceAll(component, " ", "-"))
}
