// Runner: the life the api's Goka views share (this package's View and
// views/sitewide's): built and rebuilt through Kafka outages, readiness,
// the maintenance loop, and the Goka options that close what they open.

package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sink"
)

// Runner runs one of the api's Goka views: Run builds a Goka view (Build)
// and runs it; when the build fails or the Goka view stops on an error
// (Kafka away), it builds and runs the next one with Backoff, until Kafka
// has been away for longer than Kafka's limit. Ready is true from the
// moment a Goka view has recovered until it stops. Beside it Maintain runs
// every Every, once at the start and whenever Shrink receives.
//
// The fields are set before Run and not changed after.
type Runner struct {
	// Name starts Run's error ("views", "sitewide view").
	Name string
	// Build makes a Goka view and the func releasing its Kafka clients
	// (tests replace it); ctx bounds the topic set-up.
	Build func(ctx context.Context) (*goka.View, func(), error)
	// Maintain is the periodic work (pruning days, metrics).
	Maintain func(ctx context.Context)
	// Every spaces Maintain's runs; Shrink (may be nil) asks for one now.
	Every  time.Duration
	Shrink chan struct{}
	// Backoff spaces the rebuilds; Kafka is the outage tracker whose limit
	// ends Run.
	Backoff sink.Backoff
	Kafka   *outage.Tracker
	// Recovered is set to 1 while Ready, else 0; Restarts counts rebuilds.
	Recovered prometheus.Gauge
	Restarts  prometheus.Counter

	// cur is the Goka view running now (nil before the first build);
	// ready is true once it has recovered, until it stops.
	cur   atomic.Pointer[goka.View]
	ready atomic.Bool
}

// Goka is the Goka view running now, for Goka's monitor (nil before Run
// built the first; another one after a rebuild).
func (r *Runner) Goka() *goka.View { return r.cur.Load() }

// Ready reports whether the running Goka view caught up with its topic.
func (r *Runner) Ready() bool { return r.ready.Load() }

// Check is the api's readiness: nil once ready; otherwise why not (Kafka
// down for how long, starting, or lag(ctx) records still to recover).
func (r *Runner) Check(ctx context.Context, lag func(context.Context) int64) error {
	if r.Ready() {
		return nil
	}
	if err := r.Kafka.Err(); err != nil {
		return fmt.Errorf("reconnecting: %w", err)
	}
	if r.Goka() == nil {
		return errors.New("starting")
	}
	return fmt.Errorf("recovering, %d records behind", lag(ctx))
}

// Run runs the Goka views until ctx ends (nil), or returns the error that
// ended them: Kafka away for longer than its limit.
func (r *Runner) Run(ctx context.Context) error {
	// The Goka views run under gctx, which ends only once the maintenance
	// loop has stopped: Maintain reads Goka's Stats, and a Goka view
	// closing (at the end of its Run) sets the partitions Stats reads
	// without a lock — a data race the race detector caught at shutdown.
	gctx, stopViews := context.WithCancel(context.WithoutCancel(ctx))
	defer stopViews()
	mctx, stopMaintain := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer stopViews()
		defer close(done)
		t := time.NewTicker(r.Every)
		defer t.Stop()
		for {
			r.Maintain(mctx)
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			case <-r.Shrink:
			}
		}
	}()
	defer func() { stopMaintain(); <-done }()
	if err := outage.Rerun(gctx, r.Kafka, r.Backoff, r.runOnce, r.Restarts.Inc); err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	return nil
}

// runOnce builds one Goka view and runs it until it stops; once it has
// recovered, the view is ready and Kafka counts as back.
func (r *Runner) runOnce(ctx context.Context) error {
	gv, release, err := r.Build(ctx)
	if err != nil {
		return err
	}
	defer release()
	r.cur.Store(gv)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-gv.WaitRunning():
			r.ready.Store(true)
			r.Recovered.Set(1)
			r.Kafka.OK()
		case <-rctx.Done():
		}
	}()
	err = gv.Run(rctx)
	r.ready.Store(false)
	r.Recovered.Set(0)
	cancel()
	<-watched
	r.ready.Store(false)
	return err
}

// SetRecovered sets the Recovered gauge from Ready (for Maintain).
func (r *Runner) SetRecovered() {
	if r.Ready() {
		r.Recovered.Set(1)
	} else {
		r.Recovered.Set(0)
	}
}

// KafkaViewOptions are s's Goka options for a view named clientID whose
// Kafka clients (the table consumer and the topic manager, which Goka
// closes neither of) release closes. Without brokers (tests) they are
// s.ViewOptions alone.
func KafkaViewOptions(s processors.Settings, clientID string) (o []goka.ViewOption, release func()) {
	var (
		mu      sync.Mutex
		clients []io.Closer
	)
	keep := func(c io.Closer) {
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
	}
	release = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range clients {
			_ = c.Close() // a topic manager Goka closed already says so
		}
		clients = nil
	}
	o = s.ViewOptions(clientID, "")
	if len(s.Brokers) == 0 {
		return o, release
	}
	// The builders of Settings.ViewOptions, remembering what they make.
	sc := s.SaramaConfig(clientID)
	consumer := s.TableConsumerBuilder(clientID)
	tmgr := goka.TopicManagerBuilderWithConfig(sc, processors.TopicManagerConfig(s.Replication))
	o = append(o,
		goka.WithViewConsumerSaramaBuilder(func(brokers []string, clientID string) (sarama.Consumer, error) {
			c, err := consumer(brokers, clientID)
			if err == nil {
				keep(c)
			}
			return c, err
		}),
		goka.WithViewTopicManagerBuilder(func(brokers []string) (goka.TopicManager, error) {
			tm, err := tmgr(brokers)
			if err == nil {
				keep(tm)
			}
			return tm, err
		}))
	return o, release
}
