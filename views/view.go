// The View's configuration and life: Config, New, the Goka view it builds
// and rebuilds (Run), readiness (Recovered, Check) and the maintenance
// loop.

package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
)

// DefaultDays is R, the days the view keeps: today and the 34 before cover
// today, 7d, 30d, this_week and this_month.
const DefaultDays = 35

// Config configures the view.
type Config struct {
	// Namespace of the aggregator whose table is read (tests).
	Namespace string
	// Days is R: the view keeps today, the R−1 days before and any later
	// day (played_at may be up to 10 minutes ahead). Default DefaultDays.
	Days int
	// ClientID names the view's Kafka client. Default "topk-api-view".
	ClientID string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Maintain is how often days that left the window are dropped and the
	// metrics refreshed. Default 30 s.
	Maintain time.Duration
	// Registerer takes the view's metrics. Default
	// prometheus.DefaultRegisterer; a second view in one process needs its
	// own.
	Registerer prometheus.Registerer
	// Log receives the view's logs. Default slog.Default().
	Log *slog.Logger
	// OutageLimit is how long Kafka may stay unreachable (the table topic
	// cannot be set up, or the Goka view keeps stopping on errors without
	// recovering in between) before Run gives up with an error. Default
	// outage.DefaultLimit (5 minutes).
	OutageLimit time.Duration
	// Backoff spaces the rebuilds of the Goka view after it stopped.
	// Default 500 ms doubling to 15 s.
	Backoff sink.Backoff
	// MaxBytes bounds the memory of the days the view holds (decoded
	// days and the stores' encoded copies, estimated). Past it the view
	// keeps the newest days that fit in 90% of it (never fewer than today
	// and later) and FirstDay moves up, so the api reads the older days of
	// its window from Cassandra; the move lasts until a restart. Default
	// DefaultMaxBytes.
	MaxBytes int64
}

// DefaultMaxBytes is the default memory bound of a view (TOPK_VIEW_MAX_MB).
const DefaultMaxBytes = 1 << 30

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Days < 0 || c.Days > 3660 {
		errs = append(errs, fmt.Errorf("views: Days %d is not within 1…3660 (0: the default %d)", c.Days, DefaultDays))
	}
	if c.Maintain < 0 || c.OutageLimit < 0 || c.MaxBytes < 0 {
		errs = append(errs, errors.New("views: Maintain, OutageLimit and MaxBytes must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.ClientID == "" {
		c.ClientID = "topk-api-view"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Maintain == 0 {
		c.Maintain = 30 * time.Second
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.DefaultRegisterer
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.OutageLimit == 0 {
		c.OutageLimit = outage.DefaultLimit
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = 500 * time.Millisecond
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = 15 * time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return c
}

// View is a Goka view of the aggregator's table that keeps only the recent
// R days, in memory. Keys of older days are skipped as they arrive (the
// table holds every day ever, so recovery reads years of history and keeps
// a few weeks), and days that leave the window as the date rolls over are
// dropped by a periodic prune. Reads check Recovered first: a view that is
// (re)connecting serves partial data.
//
// Kafka being away is waited out inside Run: the table topic's set-up and
// the Goka view are built again, with backoff, whenever they fail or the
// Goka view stops on an error; the in-memory days are kept and the new
// Goka view resumes each partition from the offset its store holds. Run
// returns an error only when Kafka stays away for longer than OutageLimit.
type View struct {
	cfg      Config
	settings processors.Settings
	opts     []goka.ViewOption
	log      *slog.Logger

	// life builds, rebuilds and maintains the Goka view (runner.go).
	life Runner

	mu     sync.Mutex
	stores map[int32]*MemStore

	// days are the stores' values decoded once, by key: reads never
	// decode. Values are immutable; a write replaces them.
	dmu  sync.RWMutex
	days map[string]*Day
	// sizes are the estimated bytes of each held key, bytes their sum,
	// byDate their sums per date (DayLayout).
	sizes  map[string]int64
	bytes  int64
	byDate map[string]int64
	// memFirst is the first date the memory bound leaves in the view
	// (DayLayout; nil: no cut yet); it only moves up. shrink asks the
	// maintenance loop to prune now.
	memFirst atomic.Pointer[string]
	shrink   chan struct{}

	lag      prometheus.Gauge
	userDays prometheus.Gauge
	skipped  *prometheus.CounterVec
	updates  prometheus.Counter
	memBytes prometheus.GaugeFunc
}

// New returns the view of the aggregator table of cfg.Namespace. It does
// not talk to Kafka: Run sets the table topic up (creating it when the
// aggregator has not yet, so the api can start first) and runs the Goka
// view. opts are appended to Goka's options (tests pass goka's tester;
// settings without brokers skip the topic set-up).
func New(s processors.Settings, cfg Config, opts ...goka.ViewOption) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := &View{cfg: cfg, settings: s, opts: opts, log: cfg.Log.With("component", "view"), stores: map[int32]*MemStore{}, days: map[string]*Day{},
		sizes: map[string]int64{}, byDate: map[string]int64{}, shrink: make(chan struct{}, 1)}
	v.lag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_view_lag", Help: "Records of the aggregator table the api's view has not applied yet (sum over partitions).",
	})
	recovered := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_view_recovered", Help: "1 when the api's view has caught up with the aggregator table, else 0.",
	})
	v.userDays = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_view_user_days", Help: "User-days the api's view holds (the recent R days).",
	})
	v.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_view_skipped_total", Help: "Records the view did not keep, by reason (old: before the window; memory: before the days the memory bound leaves; bad_key; undecodable).",
	}, []string{"reason"})
	v.updates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_view_updates_total", Help: "Table records the view applied.",
	})
	restarts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_view_restarts_total", Help: "Rebuilds of the api's Goka view after its set-up failed or it stopped on an error (Kafka unreachable).",
	})
	v.memBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "topk_view_bytes", Help: "Estimated memory of the user-days the api's view holds (bounded by TOPK_VIEW_MAX_MB).",
	}, func() float64 { v.dmu.RLock(); defer v.dmu.RUnlock(); return float64(v.bytes) })
	v.life = Runner{Name: "views", Build: v.newGoka, Maintain: v.maintain, Every: cfg.Maintain, Shrink: v.shrink, Backoff: cfg.Backoff,
		Kafka: &outage.Tracker{Name: "kafka", Limit: cfg.OutageLimit, Log: v.log}, Recovered: recovered, Restarts: restarts}
	for _, c := range []prometheus.Collector{v.lag, recovered, v.userDays, v.skipped, v.updates, restarts, v.memBytes} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("views: metrics: %w", err)
		}
	}
	return v, nil
}

// newGoka sets the table topic up and builds a Goka view of it, without
// Goka's auto-reconnect: when it stops, Run builds the next one with its
// own backoff and outage limit. release closes the Kafka clients the Goka
// view made (Goka closes neither its consumer nor its topic manager).
func (v *View) newGoka(ctx context.Context) (gv *goka.View, release func(), err error) {
	s := v.settings
	topic := listen.NewTopics(v.cfg.Namespace).Recent
	if len(s.Brokers) > 0 {
		if err := aggregator.EnsureRecent(ctx, s, v.cfg.Namespace, v.cfg.Days); err != nil {
			return nil, nil, fmt.Errorf("recent topic: %w", err)
		}
	}
	o, release := KafkaViewOptions(s, v.cfg.ClientID)
	o = append(o, v.opts...)
	o = append(o, goka.WithViewStorageBuilder(v.storage), goka.WithViewCallback(v.update))
	gv, err = goka.NewView(s.Brokers, goka.Table(topic), aggregator.DayCodec{}, o...)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("goka view: %w", err)
	}
	return gv, release, nil
}

// storage gives one partition its MemStore: a new one the first time, the
// same one to every later Goka view, so a rebuilt view keeps the days and
// resumes from the store's offset.
func (v *View) storage(_ string, partition int32) (storage.Storage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if st := v.stores[partition]; st != nil {
		return st, nil
	}
	st := newDayStore(v)
	v.stores[partition] = st
	return st, nil
}

// Goka is the Goka view running now, for Goka's monitor (nil before Run
// built the first; another one after a rebuild).
func (v *View) Goka() *goka.View { return v.life.Goka() }

// Days is R.
func (v *View) Days() int { return v.cfg.Days }

// FirstDay is the oldest day the view holds at now: today − R + 1 (UTC),
// or later when the memory bound cut the oldest days of the window.
func (v *View) FirstDay(now time.Time) time.Time {
	t := now.UTC()
	first := time.Date(t.Year(), t.Month(), t.Day()-(v.cfg.Days-1), 0, 0, 0, 0, time.UTC)
	if m := v.memFirst.Load(); m != nil {
		if d, err := time.Parse(listen.DayLayout, *m); err == nil && d.After(first) {
			return d
		}
	}
	return first
}

// Recovered reports whether every partition caught up with the table.
// Check it per request: while the view reconnects it serves partial data.
func (v *View) Recovered() bool { return v.life.Ready() }

// Check is the api's readiness: nil once recovered; otherwise why not
// (Kafka down for how long, starting, or records still to recover).
func (v *View) Check(ctx context.Context) error { return v.life.Check(ctx, v.Lag) }

// Run runs the view until ctx ends (nil): it sets the table topic up, runs
// a Goka view and, when that fails or stops on an error (Kafka away),
// builds and runs the next one with backoff, keeping the days it holds
// (Recovered is false meanwhile). It returns an error only when Kafka has
// been away for longer than OutageLimit: from the first failure, without
// a recovered view since. It also prunes old days and refreshes the
// metrics every Maintain (Runner).
func (v *View) Run(ctx context.Context) error { return v.life.Run(ctx) }

func (v *View) maintain(ctx context.Context) {
	if n := v.Prune(v.cfg.Now()); n > 0 {
		v.log.Debug("pruned days that left the window", "user_days", n)
	}
	v.userDays.Set(float64(v.size()))
	v.life.SetRecovered()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v.lag.Set(float64(v.Lag(sctx)))
}
