// Phase 2, freshness during a rebalance: listens at a fixed rate through
// ingest and the aggregator copies while a copy joins and one leaves, each
// timed until its count is in the table, beside the group's events.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

// sample is one listen's freshness.
type sample struct {
	sent time.Duration // since the steady phase began
	took time.Duration
}

// event is something that happened to the group, at a time since the
// steady phase began.
type event struct {
	at   time.Duration
	what string
	// mark tags the event's window in the table ("copy 3 joins").
	mark string
	// state is the group's state, for a group event.
	state string
	// until ends a stall.
	until time.Duration
}

type freshnessResult struct {
	sent    int
	rate    float64
	samples []sample
	unseen  []time.Duration // send times of listens never seen in the table
	events  []event
	users   int
}

// pending is a listen sent and not yet seen: the count its user-day must
// reach, and when it was sent.
type pending struct {
	ord  uint32
	sent time.Time
}

func freshness(o options) (freshnessResult, clusterInfo, error) {
	var res freshnessResult
	e, err := benchkit.Setup(context.Background(), "scaleout")
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer e.Close()
	dir, remove, err := e.WorkDir("scaleout")
	if err != nil {
		return res, clusterInfo{}, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer remove()
	}
	fmt.Fprintf(os.Stderr, "freshness phase (namespace %s)\n", e.Config.Namespace)
	s := processors.Settings{Brokers: e.Config.Kafka.Brokers, Replication: e.Config.Kafka.ReplicationFactor,
		MinInsync: e.Config.Kafka.MinInsyncReplicas, MaxMessageBytes: e.Config.Kafka.MaxMessageBytes, Log: e.Log}
	table := aggregator.Table(e.Config.Namespace)
	if _, err := s.EnsureTable(context.Background(), table, e.Topics.Valid); err != nil {
		return res, clusterInfo{}, err
	}

	ing, err := e.Start(filepath.Join(dir, "ingest.log"), "ingest")
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer ing.Stop()
	var copies []*benchkit.Process
	defer func() {
		for _, p := range copies {
			p.Stop()
		}
	}()
	for i := 1; i <= 2; i++ {
		p, err := startCopy(e, dir, i)
		if err != nil {
			return res, clusterInfo{}, err
		}
		copies = append(copies, p)
	}

	// The table reader: every changelog record, decoded; a user-day's
	// count reaching a listen's ordinal means that listen is counted.
	var mu sync.Mutex
	waiting := map[string][]pending{}
	var got []sample
	var t0 time.Time // start of the steady phase; zero while warming up
	warm := 0
	seen := func(key string, total uint32) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		w := waiting[key]
		i := 0
		for ; i < len(w) && w[i].ord <= total; i++ {
			if t0.IsZero() || w[i].sent.Before(t0) {
				warm++
				continue
			}
			got = append(got, sample{sent: w[i].sent.Sub(t0), took: now.Sub(w[i].sent)})
		}
		if i == len(w) {
			delete(waiting, key)
		} else if i > 0 {
			waiting[key] = w[i:]
		}
	}
	consumer, err := sarama.NewConsumerFromClient(e.Client)
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer consumer.Close()
	parts, err := e.Client.Partitions(string(table))
	if err != nil {
		return res, clusterInfo{}, err
	}
	var decodeErrs atomic.Int64
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(string(table), p, sarama.OffsetOldest)
		if err != nil {
			return res, clusterInfo{}, err
		}
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() {
				d, err := aggregator.DecodeDay(m.Value)
				if err != nil {
					decodeErrs.Add(1)
					continue
				}
				seen(string(m.Key), d.Total)
			}
		}()
	}

	// Listens: user u of fresh-users, played a second ago, a track of its
	// own (so no two listens are one), keyed by user as a crawler sends.
	producer, err := sarama.NewAsyncProducerFromClient(e.Client)
	if err != nil {
		return res, clusterInfo{}, err
	}
	defer producer.AsyncClose()
	go func() {
		for err := range producer.Errors() {
			fmt.Fprintln(os.Stderr, "produce:", err)
		}
	}()
	go func() {
		for range producer.Successes() {
		}
	}()
	ords := map[string]uint32{}
	seq := 0
	send := func(user string) {
		now := time.Now()
		at := now.Add(-time.Second).UTC().Truncate(time.Second)
		seq++
		v := []byte(`{"user_id":"` + user + `","played_at":"` + at.Format(time.RFC3339) +
			`","artist_name":"Artist ` + strconv.Itoa(seq%500) + `","track_name":"Track ` + strconv.Itoa(seq) + `"}`)
		key := listen.DayKey(user, at)
		mu.Lock()
		ords[key]++
		waiting[key] = append(waiting[key], pending{ord: ords[key], sent: now})
		mu.Unlock()
		producer.Input() <- &sarama.ProducerMessage{Topic: string(e.Topics.Raw), Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(v)}
	}

	fmt.Fprintln(os.Stderr, "waiting for ingest and two aggregator copies to take their partitions …")
	group := string(aggregator.Group(e.Config.Namespace))
	for probe := 0; ; probe++ {
		send("probe-" + strconv.Itoa(probe))
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		ok := warm > 0
		mu.Unlock()
		if ok && groupSettled(e, group, 2) {
			break
		}
		for i, p := range append([]*benchkit.Process{ing}, copies...) {
			if p.Exited() {
				log := "ingest.log"
				if i > 0 {
					log = fmt.Sprintf("aggregator-%d.log", i)
				}
				return res, clusterInfo{}, fmt.Errorf("%s ended early (%v):\n%s", p.Name, p.ExitError(), logTail(filepath.Join(dir, log), 30))
			}
		}
		if probe > 240 {
			return res, clusterInfo{}, fmt.Errorf("the pipeline never settled with two copies (-keep keeps the logs)")
		}
	}
	// Warm up at the steady rate (not measured), so the first window
	// starts with the pipeline in its stride.
	wstart := time.Now()
	wn := int(o.warmup.Seconds() * float64(o.rate))
	for i := 0; i < wn; i++ {
		if d := time.Until(wstart.Add(time.Duration(i) * time.Second / time.Duration(o.rate))); d > 0 {
			time.Sleep(d)
		}
		send("warm-" + strconv.Itoa(i%o.fresh))
	}

	// The group's state, polled, and stretches in which no copy counted
	// anything, as events.
	var events []event
	var evMu sync.Mutex
	addEvent := func(ev event) {
		evMu.Lock()
		events = append(events, ev)
		evMu.Unlock()
	}
	var copiesMu sync.Mutex
	started := append([]*benchkit.Process(nil), copies...)
	startedCopies := func() []*benchkit.Process {
		copiesMu.Lock()
		defer copiesMu.Unlock()
		return append([]*benchkit.Process(nil), started...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mu.Lock()
	t0 = time.Now()
	mu.Unlock()
	go watchGroup(ctx, e, group, t0, addEvent)
	go watchStalls(ctx, startedCopies, t0, addEvent)

	n := int(o.dur.Seconds() * float64(o.rate))
	bar := benchkit.Bar(int64(n), fmt.Sprintf("%d listens/s", o.rate))
	joined, left := false, false
	leftDone := make(chan struct{})
	// Paced by the clock: listen i leaves at t0 + i/rate.
	for i := 0; i < n; i++ {
		at := time.Duration(i) * time.Second / time.Duration(o.rate)
		if d := time.Until(t0.Add(at)); d > 0 {
			time.Sleep(d)
		}
		if !joined && at >= o.join {
			joined = true
			p, err := startCopy(e, dir, 3)
			if err != nil {
				return res, clusterInfo{}, err
			}
			copies = append(copies, p)
			copiesMu.Lock()
			started = append(started, p)
			copiesMu.Unlock()
			addEvent(event{at: time.Since(t0), what: "copy 3 started", mark: "copy 3 joins"})
		}
		if !left && at >= o.leave {
			left = true
			leaving := copies[0]
			copies = copies[1:]
			addEvent(event{at: time.Since(t0), what: "copy 1 sent SIGTERM", mark: "copy 1 leaves"})
			go func() {
				leaving.Stop()
				addEvent(event{at: time.Since(t0), what: "copy 1 exited"})
				close(leftDone)
			}()
		}
		send("fresh-" + strconv.Itoa(i%o.fresh))
		if i%200 == 0 {
			_ = bar.Set(i)
		}
	}
	_ = bar.Finish()
	res.rate = float64(n) / time.Since(t0).Seconds()
	res.sent, res.users = n, o.fresh
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		remaining := len(waiting)
		mu.Unlock()
		if remaining == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left {
		<-leftDone
	}
	cancel()
	mu.Lock()
	res.samples = append([]sample(nil), got...)
	for _, w := range waiting {
		for _, p := range w {
			if !p.sent.Before(t0) {
				res.unseen = append(res.unseen, p.sent.Sub(t0))
			}
		}
	}
	mu.Unlock()
	if k := decodeErrs.Load(); k > 0 {
		addEvent(event{what: fmt.Sprintf("%d table records did not decode", k)})
	}
	evMu.Lock()
	res.events = append([]event(nil), events...)
	evMu.Unlock()
	for _, p := range append([]*benchkit.Process{ing}, copies...) {
		if p.Exited() {
			res.events = append(res.events, event{at: time.Since(t0), what: fmt.Sprintf("%s exited by itself (%v)", p.Name, p.ExitError())})
		}
	}
	return res, describe(e, string(e.Topics.Raw), string(e.Topics.Valid), string(table), string(e.Topics.Recent)), nil
}

// watchGroup records the group's state and membership whenever they change.
func watchGroup(ctx context.Context, e *benchkit.Env, group string, t0 time.Time, add func(event)) {
	last := ""
	for ctx.Err() == nil {
		gs, err := e.Admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(gs) == 1 {
			cur := fmt.Sprintf("group %s, %d members", gs[0].State, len(gs[0].Members))
			if cur != last {
				add(event{at: time.Since(t0), what: cur, state: gs[0].State})
				last = cur
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchStalls records every stretch of at least half a second in which no
// copy counted anything (the sum of their topk_aggregator_listens_total,
// polled every 100 ms, a copy that went away keeping its last value).
func watchStalls(ctx context.Context, copies func() []*benchkit.Process, t0 time.Time, add func(event)) {
	last := map[*benchkit.Process]float64{}
	lastRise := time.Now()
	for ctx.Err() == nil {
		for _, p := range copies() {
			m, err := p.Metrics()
			if v := sumPrefix(m, "topk_aggregator_listens_total"); err == nil && v > last[p] {
				last[p] = v
				now := time.Now()
				if gap := now.Sub(lastRise); gap >= 500*time.Millisecond {
					add(event{at: lastRise.Sub(t0), until: now.Sub(t0),
						what: fmt.Sprintf("no copy counted a listen for %.1f s (until %.1f s)", gap.Seconds(), now.Sub(t0).Seconds())})
				}
				lastRise = now
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
