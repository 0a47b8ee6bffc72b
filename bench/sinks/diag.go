package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/store/cassandra"
)

// recorder is a gocql query and batch observer: every request attempt's
// kind (table, read or write), start and end, while on.
type recorder struct {
	mu   sync.Mutex
	on   bool
	reqs []request
}

type request struct {
	kind       string
	start, end time.Time
}

func (r *recorder) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	r.add(kindOf(q.Statement), q.Start, q.End)
}

func (r *recorder) ObserveBatch(_ context.Context, b gocql.ObservedBatch) {
	kind := "batch"
	if len(b.Statements) > 0 {
		kind = kindOf(b.Statements[0])
	}
	r.add(kind, b.Start, b.End)
}

func (r *recorder) add(kind string, start, end time.Time) {
	r.mu.Lock()
	if r.on {
		r.reqs = append(r.reqs, request{kind, start, end})
	}
	r.mu.Unlock()
}

// begin starts recording afresh; end stops and returns what was recorded.
func (r *recorder) begin() {
	r.mu.Lock()
	r.on, r.reqs = true, nil
	r.mu.Unlock()
}

func (r *recorder) end() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.reqs
}

// kindOf names a statement "write day_items", "read month_items", ….
func kindOf(stmt string) string {
	f := strings.Fields(stmt)
	for i, w := range f {
		if (strings.EqualFold(w, "INTO") || strings.EqualFold(w, "FROM")) && i+1 < len(f) {
			op := "read "
			if strings.EqualFold(w, "INTO") {
				op = "write "
			}
			return op + strings.TrimSuffix(f[i+1], "(")
		}
	}
	return "other"
}

// profile is what a writer's requests show: how busy it kept Cassandra.
type profile struct {
	span     time.Duration // first start to last end
	requests int
	inFlight float64       // time-weighted mean of requests in flight
	under    time.Duration // time with fewer than full requests in flight
	byKind   map[string]*kindStats
}

type kindStats struct {
	n     int
	total time.Duration
}

func newProfile(reqs []request, full int) profile {
	p := profile{requests: len(reqs), byKind: map[string]*kindStats{}}
	if len(reqs) == 0 {
		return p
	}
	type event struct {
		at    time.Time
		delta int
	}
	events := make([]event, 0, 2*len(reqs))
	for _, q := range reqs {
		events = append(events, event{q.start, 1}, event{q.end, -1})
		k := p.byKind[q.kind]
		if k == nil {
			k = &kindStats{}
			p.byKind[q.kind] = k
		}
		k.n++
		k.total += q.end.Sub(q.start)
	}
	slices.SortFunc(events, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return b.delta - a.delta // starts first at equal times
	})
	p.span = events[len(events)-1].at.Sub(events[0].at)
	var weighted float64
	n := 0
	for i, ev := range events {
		if i > 0 {
			d := ev.at.Sub(events[i-1].at)
			weighted += float64(n) * d.Seconds()
			if n < full {
				p.under += d
			}
		}
		n += ev.delta
	}
	if p.span > 0 {
		p.inFlight = weighted / p.span.Seconds()
	}
	return p
}

func (p profile) print(w io.Writer, name string, full int) {
	var all time.Duration
	for _, k := range p.byKind {
		all += k.total
	}
	fmt.Fprintf(w, "%s: %d requests in %.1f s (%.0f/s), mean %.2f in flight of %d, fewer than %d in flight %.0f%% of the time\n",
		name, p.requests, p.span.Seconds(), float64(p.requests)/p.span.Seconds(), p.inFlight, full, full, 100*p.under.Seconds()/p.span.Seconds())
	kinds := make([]string, 0, len(p.byKind))
	for k := range p.byKind {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return int(p.byKind[b].total - p.byKind[a].total) })
	for _, k := range kinds {
		s := p.byKind[k]
		fmt.Fprintf(w, "    %-20s %8d requests  mean %6.2f ms  %3.0f%% of request time\n", k, s.n,
			float64(s.total.Microseconds())/1000/float64(s.n), 100*s.total.Seconds()/all.Seconds())
	}
}

// diagnoseFlusher runs the flusher again, in this process and on a
// keyspace of its own, with every request observed: the same code and
// settings as `topk flusher`, on the same backlog (the group's offsets are
// deleted first). Returns the request profile from its first request to
// its last.
func (b *bench) diagnoseFlusher(ctx context.Context) (profile, error) {
	e := b.e
	ns := e.Config.Namespace
	group := flusher.Group(ns)
	fmt.Fprintf(os.Stderr, "bench-sinks: diagnosis: the flusher again, in process, on %s …\n", b.diagKS)
	if err := e.Admin.DeleteConsumerGroup(group); err != nil {
		return profile{}, fmt.Errorf("resetting %s: %w", group, err)
	}
	cfg := wiring.Cassandra(e.Config.Cassandra)
	cfg.Keyspace = b.diagKS
	if err := cassandra.Migrate(ctx, cfg, e.Log); err != nil {
		return profile{}, err
	}
	rec := &recorder{}
	cl := cassandra.NewCluster(cfg)
	cl.Keyspace = b.diagKS
	cl.QueryObserver, cl.BatchObserver = rec, rec
	s, err := cl.CreateSession()
	if err != nil {
		return profile{}, err
	}
	defer s.Close()
	log := slog.New(slog.DiscardHandler)
	if b.o.diagnoseLog != "" {
		lf, err := os.Create(b.o.diagnoseLog)
		if err != nil {
			return profile{}, err
		}
		defer lf.Close()
		log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := flusher.New(flusher.Config{Namespace: ns, Brokers: e.Config.Kafka.Brokers,
		FlushInterval: e.Config.Pipeline.FlushInterval,
		Log:           log}, s)
	if err != nil {
		return profile{}, err
	}
	rec.begin()
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- f.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Minute)
	defer wcancel()
	err = kafka.WaitCaughtUp(wctx, e.Client, e.Admin, group, string(aggregator.Table(ns)), nil)
	cancel()
	if rerr := <-errc; err == nil {
		err = rerr
	}
	if err != nil {
		return profile{}, err
	}
	return newProfile(rec.end(), flushConc), nil
}
