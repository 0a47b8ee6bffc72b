// The view's configuration and life: Config, New, the Goka view it builds
// and rebuilds (Run), readiness (Recovered, Check) and the maintenance
// loop. The index (index.go) and the reads (read.go) are apart.

package sitewide

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/views"
)

// DefaultDays is R, the days the view keeps (TOPK_VIEW_DAYS, the per-user
// view's): today and the 34 before cover today, 7d, 30d, this_week and
// this_month.
const DefaultDays = 35

// DefaultMaxBytes is the default memory bound of the view.
const DefaultMaxBytes = 512 << 20

// Config configures the sitewide view.
type Config struct {
	// Namespace of the sitewide group whose recent topic is read (tests).
	Namespace string
	// Days is R: the view keeps today, the R−1 days before and any later
	// day (played_at may be up to 10 minutes ahead). Default DefaultDays.
	Days int
	// ClientID names the view's Kafka client. Default
	// "topk-api-sitewide-view".
	ClientID string
	// Ensure sets the recent topic up before each Goka view is built, so
	// the api may start before the sitewide group. Default (nil, with
	// brokers): create or reconcile it as kafka.RecentTopic with Days and
	// the partitions of user.listen.valid (`topk topics` makes it; the
	// counts topic and so the group's partitions are its, see
	// fanout.EnsureCounts), so the api needs nothing of the sitewide
	// pipeline to start; cmd may pass the group's own set-up instead.
	Ensure func(ctx context.Context) error
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
	// OutageLimit is how long Kafka may stay unreachable before Run gives
	// up with an error. Default outage.DefaultLimit (5 minutes).
	OutageLimit time.Duration
	// Backoff spaces the rebuilds of the Goka view after it stopped.
	// Default 500 ms doubling to 15 s.
	Backoff sink.Backoff
	// MaxBytes bounds the memory of what the view holds (the stored
	// records, the index and the user table, estimated). Past it the view
	// keeps the newest days that fit in 90% of it (never fewer than today
	// and later) and FirstDay moves up, so the api reads the older days of
	// its window from Cassandra; the move lasts until a restart. Default
	// DefaultMaxBytes.
	MaxBytes int64
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Days < 0 || c.Days > 3660 {
		errs = append(errs, fmt.Errorf("sitewide view: Days %d is not within 1…3660 (0: the default %d)", c.Days, DefaultDays))
	}
	if c.Maintain < 0 || c.OutageLimit < 0 || c.MaxBytes < 0 {
		errs = append(errs, errors.New("sitewide view: Maintain, OutageLimit and MaxBytes must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.ClientID == "" {
		c.ClientID = "topk-api-sitewide-view"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Maintain == 0 {
		c.Maintain = 30 * time.Second
	}
	c.Registerer = metrics.Registerer(c.Registerer)
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

// View is a Goka view of the sitewide group's recent topic that keeps the
// recent R days in memory, indexed for the sitewide charts. Keys of older
// days are skipped as they arrive, and days that leave the window as the
// date rolls over are dropped by a periodic prune. Reads check Recovered
// first: a view that is (re)connecting serves partial data.
//
// Kafka being away is waited out inside Run, as the per-user view does:
// the Goka view is built again with backoff, the in-memory days are kept,
// and each partition resumes from its store's offset. Run returns an error
// only when Kafka stays away for longer than OutageLimit.
type View struct {
	cfg      Config
	settings processors.Settings
	opts     []goka.ViewOption
	log      *slog.Logger

	// life builds, rebuilds and maintains the Goka view (views.Runner).
	life views.Runner

	mu     sync.Mutex
	stores map[int32]*views.MemStore

	// imu guards the index (index.go).
	imu sync.RWMutex
	ix  index
	// memFirst is the first day the memory bound leaves in the view (days
	// since 1970-01-01; 0: no cut yet); it only moves up. shrink asks the
	// maintenance loop to prune now.
	memFirst atomic.Int32
	shrink   chan struct{}

	lag     prometheus.Gauge
	skipped *prometheus.CounterVec
	updates prometheus.Counter
}

// New returns the sitewide view of cfg.Namespace. It does not talk to
// Kafka: Run sets the topic up and runs the Goka view. opts are appended
// to Goka's options (tests pass goka's tester; settings without brokers
// skip the topic set-up).
func New(s processors.Settings, cfg Config, opts ...goka.ViewOption) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := &View{cfg: cfg, settings: s, opts: opts, log: cfg.Log.With("component", "sitewide-view"),
		stores: map[int32]*views.MemStore{}, ix: newIndex(), shrink: make(chan struct{}, 1)}
	v.lag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_sitewide_view_lag", Help: "Records of the sitewide recent topic the api's sitewide view has not applied yet (sum over partitions).",
	})
	recovered := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_sitewide_view_recovered", Help: "1 when the api's sitewide view has caught up with the sitewide recent topic, else 0.",
	})
	v.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sitewide_view_skipped_total", Help: "Records the sitewide view did not keep, by reason (old: before the window; memory: before the days the memory bound leaves; bad_key; undecodable).",
	}, []string{"reason"})
	v.updates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_view_updates_total", Help: "Records the sitewide view applied.",
	})
	restarts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_view_restarts_total", Help: "Rebuilds of the api's sitewide Goka view after its set-up failed or it stopped on an error (Kafka unreachable).",
	})
	gauge := func(name, help string, f func(st stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(v.stats()) })
	}
	v.life = views.Runner{Name: "sitewide view", Build: v.newGoka, Maintain: v.maintain, Every: cfg.Maintain, Shrink: v.shrink, Backoff: cfg.Backoff,
		Kafka: &outage.Tracker{Name: "kafka", Limit: cfg.OutageLimit, Log: v.log}, Recovered: recovered, Restarts: restarts}
	cs := []prometheus.Collector{v.lag, recovered, v.skipped, v.updates, restarts,
		gauge("topk_sitewide_view_keys", "Keys (entity|item|day|bucket) the api's sitewide view holds.", func(st stats) float64 { return float64(st.keys) }),
		gauge("topk_sitewide_view_users", "Distinct listeners of the keys the api's sitewide view holds (its user table).", func(st stats) float64 { return float64(st.users) }),
		gauge("topk_sitewide_view_bytes", "Estimated memory of what the api's sitewide view holds (bounded by its MaxBytes).", func(st stats) float64 { return float64(st.bytes) }),
	}
	if err := metrics.Register(cfg.Registerer, cs...); err != nil {
		return nil, fmt.Errorf("sitewide view: metrics: %w", err)
	}
	return v, nil
}

// ensure sets the recent topic up: Config.Ensure, or the default
// (copartitioned with user.listen.valid, as the counts topic is).
func (v *View) ensure(ctx context.Context) error {
	if v.cfg.Ensure != nil {
		return v.cfg.Ensure(ctx)
	}
	s := v.settings
	t := listen.NewTopics(v.cfg.Namespace)
	_, err := s.EnsureCopartitioned(ctx, t.Valid, func(n int32) kafka.TopicSpec {
		return kafka.RecentTopic(string(t.SitewideRecent), n, s.MinInsync, v.cfg.Days).WithMaxMessageBytes(s.MaxMessageBytes)
	})
	return err
}

// newGoka sets the recent topic up and builds a Goka view of it, without
// Goka's auto-reconnect: when it stops, Run builds the next one with its
// own backoff and outage limit. release closes the Kafka clients the Goka
// view made (Goka closes neither its consumer nor its topic manager).
func (v *View) newGoka(ctx context.Context) (gv *goka.View, release func(), err error) {
	s := v.settings
	if len(s.Brokers) > 0 {
		if err := v.ensure(ctx); err != nil {
			return nil, nil, fmt.Errorf("sitewide recent topic: %w", err)
		}
	}
	o, release := views.KafkaViewOptions(s, v.cfg.ClientID)
	o = append(o, v.opts...)
	o = append(o, goka.WithViewHasher(sitewide.Hasher), goka.WithViewStorageBuilder(v.storage), goka.WithViewCallback(v.update))
	topic := listen.NewTopics(v.cfg.Namespace).SitewideRecent
	gv, err = goka.NewView(s.Brokers, goka.Table(topic), new(codec.Bytes), o...)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("goka view: %w", err)
	}
	return gv, release, nil
}

// storage gives one partition its views.MemStore: a new one the first time, the
// same one to every later Goka view, so a rebuilt view keeps the days and
// resumes from the store's offset.
func (v *View) storage(_ string, partition int32) (storage.Storage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if st := v.stores[partition]; st != nil {
		return st, nil
	}
	st := views.NewMemStore()
	v.stores[partition] = st
	return st, nil
}

// Goka is the Goka view running now, for Goka's monitor (nil before Run
// built the first; another one after a rebuild).
func (v *View) Goka() *goka.View { return v.life.Goka() }

// Days is R.
func (v *View) Days() int { return v.cfg.Days }

// FirstDay is the oldest day the view holds at now: today − R + 1 (UTC),
// or later when the memory bound cut the oldest days of the window. It
// holds every later day.
func (v *View) FirstDay(now time.Time) time.Time {
	t := now.UTC()
	first := time.Date(t.Year(), t.Month(), t.Day()-(v.cfg.Days-1), 0, 0, 0, 0, time.UTC)
	if m := v.memFirst.Load(); m != 0 && m > dayNumber(first) {
		return dayTime(m)
	}
	return first
}

// Recovered reports whether every partition caught up with the topic.
// Check it per request: while the view reconnects it serves partial data.
func (v *View) Recovered() bool { return v.life.Ready() }

// Check is the api's readiness: nil once recovered; otherwise why not.
func (v *View) Check(ctx context.Context) error { return v.life.Check(ctx, v.Lag) }

// Run runs the view until ctx ends (nil): it sets the topic up, runs a
// Goka view and, when that fails or stops on an error (Kafka away),
// builds and runs the next one with backoff, keeping the days it holds
// (Recovered is false meanwhile). It returns an error only when Kafka has
// been away for longer than OutageLimit. It also prunes old days and
// refreshes the metrics every Maintain (views.Runner).
func (v *View) Run(ctx context.Context) error { return v.life.Run(ctx) }

func (v *View) maintain(ctx context.Context) {
	if n := v.Prune(v.cfg.Now()); n > 0 {
		v.log.Debug("pruned keys of days that left the window", "keys", n)
	}
	v.life.SetRecovered()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v.lag.Set(float64(v.Lag(sctx)))
}

// Lag is the number of records the view has not applied, summed over
// partitions, from Goka's partition stats (read once a minute by Goka:
// records that arrive and wait show up to a minute late).
func (v *View) Lag(ctx context.Context) int64 {
	gv := v.Goka()
	if gv == nil {
		return 0
	}
	return recordsBehind(gv.Stats(ctx))
}

// recordsBehind sums the partitions' lags. Goka's OffsetLag is the
// high-water mark minus the offset of the last record applied, so a
// caught-up partition reads 1, not 0.
func recordsBehind(st *goka.ViewStats) int64 {
	var lag int64
	for _, p := range st.Partitions {
		if p != nil && p.Input != nil && p.Input.OffsetLag > 1 {
			lag += p.Input.OffsetLag - 1
		}
	}
	return lag
}
