// When each stage of the pipeline is done, from the start of the import,
// and a timeline of the run.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/rawwriter"
)

// stages is when each stage was done, from the start of the import (0:
// not yet). Each is watched by a goroutine of its own, so that a slow
// answer (Kafka and the metrics endpoints share the busy machine) delays
// no other.
type stages struct {
	mu         sync.Mutex
	imp        importResult
	imported   time.Duration // the import process exited
	ingested   time.Duration // ingest read every record the import sends
	counted    time.Duration // the aggregator counted every distinct listen
	aggregated time.Duration // the aggregator group committed everything
	rawWritten time.Duration // the raw writer group committed everything
	flushed    time.Duration // the flusher group committed everything
	aggCounted float64
	ingestedN  float64
	// cpuImported is the CPU sample taken when the import ended.
	cpuImported cpuSample
	timeline    []sample
}

// sampleEvery is the timeline's step.
const sampleEvery = 2 * time.Second

// sample is one step of the timeline.
type sample struct {
	t                  time.Duration
	ingested, counted  int
	rawLag, flusherLag int64 // committed lags, -1 unknown
	exact              int
	busy, cass, kafkaC float64 // cores since the sample before
	importing          bool
}

func (s *stages) set(d *time.Duration, v time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*d = v
}

// watchConfig is what watch needs.
type watchConfig struct {
	e         *benchkit.Env
	procs     map[string]*benchkit.Process
	start     time.Time
	records   int // records the import sends to the raw topic (listens and dead letters go different ways; ingest reads the listens)
	distinct  int // listens the aggregator must count
	runImport func() importResult
	p         *poller
	cpu       func() cpuSample
	log       *slog.Logger
}

// watch runs the import and follows the stages until the flusher is done
// and every range is exact, or ctx ends: ingest's and the aggregator's
// counters every 100 ms; once all is counted, each group's committed lag
// every 200 ms (the flusher's once the aggregator has committed: from
// then on every table write is in the table topic's high-water marks its
// lag is measured against); a timeline sample, and a progress line in the
// log, every 2 s.
func (s *stages) watch(ctx context.Context, w watchConfig) {
	ns := w.e.Config.Namespace
	valid, table := string(w.e.Topics.Valid), string(aggregator.Table(ns))
	lag := func(group, topic string) int64 {
		l, err := kafka.GroupLag(ctx, w.e.Client, w.e.Admin, group, topic)
		if err != nil {
			return -1
		}
		return l
	}
	since := func() time.Duration { return time.Since(w.start) }
	every := func(d time.Duration, f func() bool) { // until f is done or ctx ends
		for !f() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
	var wg sync.WaitGroup
	imported := make(chan struct{})
	wg.Go(func() {
		r := w.runImport()
		at, c := since(), w.cpu()
		s.mu.Lock()
		s.imp, s.imported, s.cpuImported = r, at, c
		s.mu.Unlock()
		close(imported)
	})
	counted := make(chan struct{})
	wg.Go(func() {
		every(100*time.Millisecond, func() bool {
			m, err := w.procs["aggregator"].Metrics()
			if err != nil {
				return false
			}
			n := m[`topk_aggregator_listens_total{outcome="counted"}`]
			s.mu.Lock()
			defer s.mu.Unlock()
			s.aggCounted = n
			if int(n) >= w.distinct {
				s.counted = since()
				close(counted)
				return true
			}
			return false
		})
	})
	wg.Go(func() {
		every(100*time.Millisecond, func() bool {
			m, err := w.procs["ingest"].Metrics()
			if err != nil {
				return false
			}
			n := m[`topk_ingest_records_total{outcome="valid"}`] + m[`topk_ingest_records_total{outcome="dead_letter"}`]
			s.mu.Lock()
			defer s.mu.Unlock()
			s.ingestedN = n
			if int(n) >= w.records {
				s.ingested = since()
				return true
			}
			return false
		})
	})
	aggregated := make(chan struct{})
	committed := func(after <-chan struct{}, at *time.Duration, group, topic string, done chan struct{}) {
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
		every(200*time.Millisecond, func() bool {
			if lag(group, topic) != 0 {
				return false
			}
			s.set(at, since())
			if done != nil {
				close(done)
			}
			return true
		})
	}
	wg.Go(func() { committed(counted, &s.aggregated, string(aggregator.Group(ns)), valid, aggregated) })
	wg.Go(func() { committed(counted, &s.rawWritten, rawwriter.Group(ns), valid, nil) })
	flushed := make(chan struct{})
	wg.Go(func() { committed(aggregated, &s.flushed, flusher.Group(ns), table, flushed) })

	// The timeline and the progress line, until the end.
	prev := w.cpu()
	next := w.start.Add(sampleEvery)
	for {
		exact, all := w.p.exactCount()
		select {
		case <-flushed:
			select {
			case <-imported:
				if exact == all {
					wg.Wait()
					return
				}
			default:
			}
		default:
		}
		if time.Now().After(next) {
			next = time.Now().Add(sampleEvery)
			smp := sample{t: since(), exact: exact, rawLag: lag(rawwriter.Group(ns), valid), flusherLag: lag(flusher.Group(ns), table)}
			c := w.cpu()
			d := c.at.Sub(prev.at).Seconds()
			smp.busy, smp.cass, smp.kafkaC = (c.busy-prev.busy).Seconds()/d, (c.cassandra-prev.cassandra).Seconds()/d, (c.kafka-prev.kafka).Seconds()/d
			prev = c
			s.mu.Lock()
			smp.ingested, smp.counted, smp.importing = int(s.ingestedN), int(s.aggCounted), s.imported == 0
			s.timeline = append(s.timeline, smp)
			s.mu.Unlock()
			w.log.Info("progress", "t", smp.t.Round(100*time.Millisecond), "import done", !smp.importing, "ingested", smp.ingested,
				"counted", smp.counted, "of", w.distinct, "flusher lag", smp.flusherLag, "ranges exact", fmt.Sprintf("%d/%d", exact, all))
		}
		select {
		case <-ctx.Done():
			<-imported // the import is not cancelled by the polling's end
			wg.Wait()
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
