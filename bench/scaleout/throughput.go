// Phase 1, throughput: one round per copy count over the same backlog of
// valid listens (produced with Goka's emitter), timed to committed lag
// zero.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

// round is one copy count's run over the backlog.
type round struct {
	copies   int
	produced float64       // listens/s of the emitter filling the backlog
	total    time.Duration // first record → committed lag zero
	settled  time.Duration // first record → group stable with every copy holding partitions (0: never seen)
	// lagAtSettle is the committed lag when the group settled.
	lagAtSettle int64
	afterSettle time.Duration // settled → committed lag zero
	perCopy     []float64     // listens each copy read (counted + duplicates)
	replayed    float64       // listens read more than once (duplicates: re-read after a partition moved)
	invalid     float64       // wrong partition, wrong key, undecodable: must be 0
	cpu         time.Duration // summed over the copies, first record → lag zero
	peak        int64         // largest peak RSS of a copy
	disk        []int64       // each copy's local state on disk after a graceful stop
	busy        float64       // share of the machine's CPU in use, first record → lag zero
}

func throughput(o options, copies int, now time.Time) (round, clusterInfo, error) {
	r := round{copies: copies}
	e, err := benchkit.Setup(context.Background(), "scaleout")
	if err != nil {
		return r, clusterInfo{}, err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("scaleout")
	if err != nil {
		return r, clusterInfo{}, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer remove()
	}

	fmt.Fprintf(os.Stderr, "round of %d copies (namespace %s)\n", copies, e.Config.Namespace)
	if r.produced, err = produceBacklog(e, o, now); err != nil {
		return r, clusterInfo{}, err
	}
	group := string(aggregator.Group(e.Config.Namespace))
	valid := string(e.Topics.Valid)

	procs := make([]*benchkit.Process, copies)
	for i := range procs {
		if procs[i], err = startCopy(e, dir, i+1); err != nil {
			return r, clusterInfo{}, err
		}
		defer procs[i].Stop()
	}
	bar := benchkit.Bar(int64(o.n), fmt.Sprintf("%d aggregator copies", copies))
	var start, settledAt time.Time
	cpu0 := make([]time.Duration, copies)
	var busy0, total0 time.Duration
	var lastLagPoll time.Time
	deadline := time.Now().Add(20 * time.Minute)
	for {
		if time.Now().After(deadline) {
			return r, clusterInfo{}, fmt.Errorf("timed out (-keep keeps the logs)")
		}
		var sum float64
		for i, p := range procs {
			if p.Exited() {
				return r, clusterInfo{}, fmt.Errorf("copy %d ended early (%v):\n%s", i+1, p.ExitError(), logTail(filepath.Join(dir, fmt.Sprintf("aggregator-%d.log", i+1)), 30))
			}
			m, _ := p.Metrics() // uncompressed: gzip would cost the copy CPU
			sum += sumPrefix(m, "topk_aggregator_listens_total")
		}
		if start.IsZero() && sum > 0 {
			start = time.Now()
			busy0, total0 = benchkit.SystemCPU()
			for i, p := range procs {
				cpu0[i] = p.CPUTime()
			}
		}
		_ = bar.Set64(min(int64(sum), int64(o.n)))
		if !start.IsZero() && time.Since(lastLagPoll) >= 200*time.Millisecond {
			lastLagPoll = time.Now()
			if settledAt.IsZero() && groupSettled(e, group, copies) {
				settledAt = time.Now()
				r.lagAtSettle, _ = kafka.GroupLag(context.Background(), e.Client, e.Admin, group, valid)
			}
			if lag, err := kafka.GroupLag(context.Background(), e.Client, e.Admin, group, valid); err == nil && lag == 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	if busy, total := benchkit.SystemCPU(); total > total0 {
		r.busy = float64(busy-busy0) / float64(total-total0)
	}
	_ = bar.Finish()
	r.total = end.Sub(start)
	if !settledAt.IsZero() {
		r.settled, r.afterSettle = settledAt.Sub(start), end.Sub(settledAt)
	}
	for i, p := range procs {
		m, _ := p.Metrics()
		r.perCopy = append(r.perCopy, sumPrefix(m, "topk_aggregator_listens_total"))
		r.replayed += m[`topk_aggregator_listens_total{outcome="duplicate"}`]
		r.invalid += m[`topk_aggregator_listens_total{outcome="invalid"}`]
		r.cpu += p.CPUTime() - cpu0[i]
		r.peak = max(r.peak, p.PeakRSS())
	}
	// Each copy stores only the partitions it owns (no standby): stopped
	// gracefully, its local store is on disk in full.
	for i, p := range procs {
		p.Stop()
		r.disk = append(r.disk, dirBytes(filepath.Join(dir, fmt.Sprintf("state-copy-%d", i+1))))
	}
	return r, describe(e, valid, string(aggregator.Table(e.Config.Namespace)), string(e.Topics.Recent)), nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// produceBacklog writes o.n valid listens to the namespace's
// user.listen.valid as ingest does: canonical JSON keyed user|day, through
// Goka's emitter with its default hasher and the processors' producer
// settings. The listens are the same in every round (seed and clock fixed).
func produceBacklog(e *benchkit.Env, o options, now time.Time) (float64, error) {
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor,
		MaxMessageBytes: e.Config.Kafka.MaxMessageBytes, Log: e.Log}
	em, err := goka.NewEmitter(e.Config.Kafka.Brokers, e.Topics.Valid, processors.RawCodec{},
		goka.WithEmitterClientID("topk-bench-scaleout"),
		goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(s.SaramaConfig("topk-bench-scaleout"))),
		goka.WithEmitterHasher(goka.DefaultHasher()))
	if err != nil {
		return 0, err
	}
	gen := benchkit.NewGeneratorAt(1, o.users, now)
	var failed atomic.Pointer[error]
	bar := benchkit.Bar(int64(o.n), "producing the backlog (valid, Goka emitter)")
	start := time.Now()
	for i := 0; i < o.n; i++ {
		_, raw := gen.Next()
		l, err := listen.Parse(raw, now)
		if err != nil {
			return 0, fmt.Errorf("generated listen: %w", err)
		}
		v, err := listen.Codec{}.Encode(l)
		if err != nil {
			return 0, err
		}
		pr, err := em.Emit(l.Key(), v)
		if err != nil {
			return 0, err
		}
		pr.Then(func(err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		if i%1000 == 0 {
			_ = bar.Set(i)
		}
	}
	if err := em.Finish(); err != nil {
		return 0, err
	}
	_ = bar.Finish()
	if p := failed.Load(); p != nil {
		return 0, fmt.Errorf("emit: %w", *p)
	}
	return float64(o.n) / time.Since(start).Seconds(), nil
}
