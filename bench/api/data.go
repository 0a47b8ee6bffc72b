// The benchmark's data: the pipeline run that loads it (ingest, the
// aggregator, the raw writer and the flusher, and with -sitewide `topk
// sitewide` as its own process, until each has committed everything) and
// the listens it generates (many users, and one heavy user with three
// years of history).

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
	"github.com/topk-charts/topk/store/cassandra"
)

// loadPipeline runs ingest, the aggregator, the raw writer and the flusher
// until every stage has committed everything; with site also `topk
// sitewide` (bin/topk, its own process: the fan-out, the sitewide group
// and the sitewide flusher, flushing every second), until its three groups
// have too.
func loadPipeline(ctx context.Context, e *benchkit.Env, cfg config.Config, dir string, site bool) error {
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor, StateDir: dir, Log: e.Log}
	session, err := cassandra.Connect(ctx, wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		return err
	}
	defer session.Close()
	ip, err := ingest.New(set, ingest.Config{Namespace: cfg.Namespace})
	if err != nil {
		return err
	}
	acfg, err := aggregator.Setup(ctx, set, aggregator.Config{Namespace: cfg.Namespace})
	if err != nil {
		return err
	}
	ap, err := aggregator.New(set, acfg, dir)
	if err != nil {
		return err
	}
	rw, err := rawwriter.New(rawwriter.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: e.Log}, session)
	if err != nil {
		return err
	}
	fl, err := flusher.New(flusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: e.Log, FlushInterval: time.Second}, session)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 4)
	for _, r := range []func(context.Context) error{ip.Run, ap.Run, rw.Run, fl.Run} {
		go func() { errs <- r(ctx) }()
	}
	defer func() {
		cancel()
		for range 4 {
			<-errs
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Minute)
	defer wcancel()
	groups := [][2]string{
		{string(ingest.Group(cfg.Namespace)), string(e.Topics.Raw)},
		{string(aggregator.Group(cfg.Namespace)), string(e.Topics.Valid)},
		{rawwriter.Group(cfg.Namespace), string(e.Topics.Valid)},
		{flusher.Group(cfg.Namespace), string(aggregator.Table(cfg.Namespace))},
	}
	if site {
		scfg := cfg
		scfg.Pipeline.StateDir = filepath.Join(dir, "sitewide-state")
		scfg.Pipeline.SitewideFlushInterval = time.Second
		// The counts topic first: the sitewide group would otherwise wait
		// out a backoff until the fan-out has made it.
		if err := fanout.EnsureCounts(ctx, set, cfg.Namespace); err != nil {
			return err
		}
		logPath := filepath.Join(dir, "sitewide.log")
		p, err := e.StartConfig(logPath, scfg, "sitewide")
		if err != nil {
			return fmt.Errorf("topk sitewide: %w", err)
		}
		defer p.Stop()
		defer func() {
			if p.Exited() {
				out, _ := os.ReadFile(logPath)
				fmt.Fprintf(os.Stderr, "bench-api: topk sitewide ended (%v):\n%s\n", p.ExitError(), out)
			}
		}()
		groups = append(groups,
			[2]string{string(fanout.Group(cfg.Namespace)), string(aggregator.Table(cfg.Namespace))},
			[2]string{string(sitewide.Group(cfg.Namespace)), string(e.Topics.Counts)},
			[2]string{sitewideflusher.Group(cfg.Namespace), string(sitewide.Table(cfg.Namespace))},
		)
	}
	for _, gt := range groups {
		bar := benchkit.Bar(-1, "waiting for "+gt[0])
		err := kafka.WaitCaughtUp(wctx, e.Client, e.Admin, gt[0], gt[1], func(lag int64) { _ = bar.Set64(lag) })
		_ = bar.Finish()
		if err != nil {
			select {
			case perr := <-errs:
				return fmt.Errorf("%s: %w (a processor stopped: %v)", gt[0], err, perr)
			default:
			}
			return fmt.Errorf("%s: %w", gt[0], err)
		}
	}
	return nil
}

// gen makes the listens: the heavy user's first (every track once, then
// Zipf-distributed), then the other users'.
type gen struct {
	r                    *rand.Rand
	now                  time.Time
	users, heavy, tracks int
	i                    int
	zipf                 *rand.Zipf
	heavySecs            []int64
	perUser              int
}

func newGen(now time.Time, users, heavy, tracks int) *gen {
	r := rand.New(rand.NewPCG(7, 11))
	g := &gen{r: r, now: now, users: users, heavy: heavy, tracks: tracks, zipf: rand.NewZipf(r, 1.05, 10, uint64(tracks-1)), perUser: 50}
	// Distinct seconds over three years for the heavy user.
	span := int64(3 * 365 * 24 * 3600)
	seen := map[int64]bool{}
	for len(g.heavySecs) < heavy {
		s := r.Int64N(span)
		if !seen[s] {
			seen[s] = true
			g.heavySecs = append(g.heavySecs, s)
		}
	}
	slices.Sort(g.heavySecs)
	return g
}

func (g *gen) total() int { return g.heavy + g.users*g.perUser }

func (g *gen) next() (string, []byte) {
	defer func() { g.i++ }()
	if g.i < g.heavy {
		t := g.i
		if t >= g.tracks {
			t = int(g.zipf.Uint64())
		}
		at := g.now.Add(-time.Duration(g.heavySecs[len(g.heavySecs)-1-g.i]) * time.Second)
		return heavyUser, listenJSON(heavyUser, at, t%1500, t, t/12)
	}
	u := (g.i - g.heavy) / g.perUser
	user := "user-" + strconv.Itoa(u)
	span := 45 * 24 * time.Hour
	if g.r.IntN(4) == 0 {
		span = 2 * 365 * 24 * time.Hour
	}
	at := g.now.Add(-time.Duration(g.r.Int64N(int64(span)))).Truncate(time.Second)
	t := int(g.zipf.Uint64())
	return user, listenJSON(user, at, t%1500, t, t/12)
}

func listenJSON(user string, at time.Time, artist, track, album int) []byte {
	return []byte(`{"user_id":"` + user + `","played_at":"` + at.Format(time.RFC3339) + `","artist_name":"Artist ` + strconv.Itoa(artist) +
		`","track_name":"Track ` + strconv.Itoa(track) + `","album_name":"Album ` + strconv.Itoa(album) + `"}`)
}
