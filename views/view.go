package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
)

// DefaultDays is R, the days the view keeps: today and the 34 before cover
// today, 7d, 30d, this_week and this_month.
const DefaultDays = 35

// Day is one user-day of the view.
type Day struct {
	Date  time.Time // midnight UTC
	Plays int64
	// Tracks, Artists, Albums are in no particular order.
	Tracks, Artists, Albums []topk.Item
}

// Items returns the items of an entity.
func (d *Day) Items(e topk.Entity) []topk.Item {
	switch e {
	case topk.Tracks:
		return d.Tracks
	case topk.Artists:
		return d.Artists
	case topk.Albums:
		return d.Albums
	}
	return nil
}

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
	kafka    *outage.Tracker

	// build makes a Goka view and the func releasing its Kafka clients
	// (tests replace it); ctx bounds the topic set-up.
	build func(ctx context.Context) (*goka.View, func(), error)
	// cur is the Goka view running now (nil before the first build);
	// ready is true once it has recovered, until it stops.
	cur   atomic.Pointer[goka.View]
	ready atomic.Bool

	mu     sync.Mutex
	stores map[int32]*dayStore

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

	lag       prometheus.Gauge
	recovered prometheus.Gauge
	userDays  prometheus.Gauge
	skipped   *prometheus.CounterVec
	updates   prometheus.Counter
	restarts  prometheus.Counter
	memBytes  prometheus.GaugeFunc
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
	v := &View{cfg: cfg, settings: s, opts: opts, log: cfg.Log.With("component", "view"), stores: map[int32]*dayStore{}, days: map[string]*Day{},
		sizes: map[string]int64{}, byDate: map[string]int64{}, shrink: make(chan struct{}, 1)}
	v.kafka = &outage.Tracker{Name: "kafka", Limit: cfg.OutageLimit, Log: v.log}
	v.build = v.newGoka
	v.lag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_view_lag", Help: "Records of the aggregator table the api's view has not applied yet (sum over partitions).",
	})
	v.recovered = prometheus.NewGauge(prometheus.GaugeOpts{
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
	v.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_view_restarts_total", Help: "Rebuilds of the api's Goka view after its set-up failed or it stopped on an error (Kafka unreachable).",
	})
	v.memBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "topk_view_bytes", Help: "Estimated memory of the user-days the api's view holds (bounded by TOPK_VIEW_MAX_MB).",
	}, func() float64 { v.dmu.RLock(); defer v.dmu.RUnlock(); return float64(v.bytes) })
	for _, c := range []prometheus.Collector{v.lag, v.recovered, v.userDays, v.skipped, v.updates, v.restarts, v.memBytes} {
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
	o := s.ViewOptions(v.cfg.ClientID, "")
	if len(s.Brokers) > 0 {
		// The builders of Settings.ViewOptions, remembering what they make.
		sc := s.SaramaConfig(v.cfg.ClientID)
		consumer := s.TableConsumerBuilder(v.cfg.ClientID)
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
	}
	o = append(o, v.opts...)
	o = append(o, goka.WithViewStorageBuilder(v.storage), goka.WithViewCallback(v.update))
	gv, err = goka.NewView(s.Brokers, goka.Table(topic), aggregator.DayCodec{}, o...)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("goka view: %w", err)
	}
	return gv, release, nil
}

// storage gives one partition its dayStore: a new one the first time, the
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
func (v *View) Goka() *goka.View { return v.cur.Load() }

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
func (v *View) Recovered() bool { return v.ready.Load() }

// Check is the api's readiness: nil once recovered; otherwise why not
// (Kafka down for how long, starting, or records still to recover).
func (v *View) Check(ctx context.Context) error {
	if v.Recovered() {
		return nil
	}
	if err := v.kafka.Err(); err != nil {
		return fmt.Errorf("reconnecting: %w", err)
	}
	if v.Goka() == nil {
		return errors.New("starting")
	}
	return fmt.Errorf("recovering, %d records behind", v.Lag(ctx))
}

// update is the view's callback: it keeps the user-days of the window,
// without their seen sets (the view needs counts and names, not the
// dedup state), and skips or drops the others.
func (v *View) update(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	_, day, ok := listen.SplitKey(key)
	if !ok {
		v.skipped.WithLabelValues("bad_key").Inc()
		return nil
	}
	if first := v.FirstDay(v.cfg.Now()); day.Before(first) {
		reason := "old"
		if m := v.memFirst.Load(); m != nil && first.Format(listen.DayLayout) == *m {
			reason = "memory"
		}
		v.skipped.WithLabelValues(reason).Inc()
		return s.Delete(key) // it may have been kept while it was recent
	}
	if value == nil {
		return s.Delete(key)
	}
	d, err := aggregator.DecodeDay(value)
	if err != nil {
		// The aggregator wrote it, so this is a bug or a foreign record:
		// count it and go on rather than stop the view.
		v.skipped.WithLabelValues("undecodable").Inc()
		v.log.Warn("undecodable table record", "key", key, "err", err)
		return nil
	}
	v.updates.Inc()
	// Decoded once, into the index; the store keeps only the key (its
	// Get encodes the day again, for Goka's monitor and tests).
	v.put(key, toDay(day, d), int64(len(value)))
	return s.Set(key, nil)
}

// toDay keeps what the view serves of an aggregator day: counts and
// names, not the seen set.
func toDay(date time.Time, d *aggregator.Day) *Day {
	out := &Day{Date: date, Plays: int64(d.Total)}
	conv := func(items []aggregator.Item) []topk.Item {
		if len(items) == 0 {
			return nil
		}
		r := make([]topk.Item, len(items))
		for i, it := range items {
			r[i] = topk.Item{Key: it.Key, Name: it.Name, Artist: it.Artist, Plays: int64(it.Plays)}
		}
		return r
	}
	out.Tracks = conv(d.Items(topk.Tracks))
	out.Artists = conv(d.Artists)
	out.Albums = conv(d.Albums)
	return out
}

// encoded renders a held day as the store's value: the aggregator's
// encoding without the seen set (nil when the day is not held).
func (v *View) encoded(key string) []byte {
	v.dmu.RLock()
	d := v.days[key]
	v.dmu.RUnlock()
	if d == nil {
		return nil
	}
	back := func(items []topk.Item) []aggregator.Item {
		r := make([]aggregator.Item, len(items))
		for i, it := range items {
			r[i] = aggregator.Item{Key: it.Key, Name: it.Name, Artist: it.Artist, Plays: uint32(it.Plays)}
		}
		return r
	}
	lean := &aggregator.Day{Total: uint32(d.Plays), Artists: back(d.Artists), Tracks: back(d.Tracks), Albums: back(d.Albums)}
	return lean.Encode()
}

// set decodes a value written to a store by other code than the update
// callback (tests) into the index.
func (v *View) set(key string, value []byte) {
	_, date, ok := listen.SplitKey(key)
	d, err := aggregator.DecodeDay(value)
	if !ok || err != nil {
		v.delete(key)
		return
	}
	v.put(key, toDay(date, d), int64(len(value)))
}

// put holds a decoded day; encodedLen is the size of the record it came
// from (its names are substrings of it).
func (v *View) put(key string, d *Day, encodedLen int64) {
	size := dayBytes(key, d) + encodedLen
	v.dmu.Lock()
	v.days[key] = d
	v.account(key, size)
	over := v.bytes > v.cfg.MaxBytes
	v.dmu.Unlock()
	if over {
		v.cut()
	}
}

func (v *View) delete(key string) {
	v.dmu.Lock()
	delete(v.days, key)
	v.account(key, 0)
	v.dmu.Unlock()
}

// account sets key's estimated size (0: gone); v.dmu is held.
func (v *View) account(key string, size int64) {
	old := v.sizes[key]
	if size == old {
		return
	}
	date := key[len(key)-len(listen.DayLayout):] // held keys passed listen.SplitKey
	if size == 0 {
		delete(v.sizes, key)
	} else {
		v.sizes[key] = size
	}
	v.bytes += size - old
	if v.byDate[date] += size - old; v.byDate[date] <= 0 {
		delete(v.byDate, date)
	}
}

// dayBytes estimates the memory of a held user-day: the map entries, the
// Day, its item slices and their strings.
func dayBytes(key string, d *Day) int64 {
	const entry, day, item = 96, 112, 56
	n := int64(entry + 2*len(key) + day)
	for _, items := range [][]topk.Item{d.Tracks, d.Artists, d.Albums} {
		for _, it := range items {
			n += int64(item + len(it.Name) + len(it.Artist))
		}
	}
	return n
}

// cut moves memFirst up to the oldest date from which the newest dates fit
// in 90% of MaxBytes (today and later always stay), and asks the
// maintenance loop to prune. The update callback skips the days before it
// meanwhile.
func (v *View) cut() {
	today := v.cfg.Now().UTC().Format(listen.DayLayout)
	v.dmu.RLock()
	dates := make([]string, 0, len(v.byDate))
	for d := range v.byDate {
		dates = append(dates, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dates)))
	budget, sum, first := v.cfg.MaxBytes*9/10, int64(0), today
	for _, d := range dates {
		sum += v.byDate[d]
		if d < today && sum > budget {
			break
		}
		if d < first {
			first = d
		}
	}
	v.dmu.RUnlock()
	if cur := v.memFirst.Load(); cur != nil && *cur >= first {
		return
	}
	v.memFirst.Store(&first)
	v.log.Warn("view over its memory bound: older days of the window now come from Cassandra",
		"max_bytes", v.cfg.MaxBytes, "first_day", first)
	select {
	case v.shrink <- struct{}{}:
	default:
	}
}

// Get returns the user's day (nil when the view holds none). The day is
// shared: do not modify it. The caller checks Recovered.
func (v *View) Get(user string, day time.Time) *Day {
	key := listen.DayKey(user, day)
	v.dmu.RLock()
	d := v.days[key]
	v.dmu.RUnlock()
	return d
}

// Range returns the user's days in [from, to] that the view holds, oldest
// first; days before FirstDay are not asked for (the view does not have
// them). The days' items are shared: do not modify them. The caller checks
// Recovered.
func (v *View) Range(user string, from, to time.Time) ([]Day, error) {
	if first := v.FirstDay(v.cfg.Now()); from.Before(first) {
		from = first
	}
	var out []Day
	key := make([]byte, 0, len(user)+1+len(listen.DayLayout))
	key = append(append(key, user...), '|')
	n := len(key)
	v.dmu.RLock()
	defer v.dmu.RUnlock()
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		key = d.AppendFormat(key[:n], listen.DayLayout)
		if day := v.days[string(key)]; day != nil {
			out = append(out, *day)
		}
	}
	return out, nil
}

// Lag is the number of table records the view has not applied, summed
// over partitions.
func (v *View) Lag(ctx context.Context) int64 {
	gv := v.Goka()
	if gv == nil {
		return 0
	}
	var lag int64
	for _, p := range gv.Stats(ctx).Partitions {
		if p != nil && p.Input != nil && p.Input.OffsetLag > 0 {
			lag += p.Input.OffsetLag
		}
	}
	return lag
}

// Prune drops the days before FirstDay(now) and returns how many.
func (v *View) Prune(now time.Time) int {
	cutoff := v.FirstDay(now).Format(listen.DayLayout)
	n := 0
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.stores {
		n += st.prune(cutoff)
	}
	return n
}

// size is the number of user-days held.
func (v *View) size() int {
	v.dmu.RLock()
	defer v.dmu.RUnlock()
	return len(v.days)
}

// Run runs the view until ctx ends (nil): it sets the table topic up, runs
// a Goka view and, when that fails or stops on an error (Kafka away),
// builds and runs the next one with backoff, keeping the days it holds
// (Recovered is false meanwhile). It returns an error only when Kafka has
// been away for longer than OutageLimit: from the first failure, without
// a recovered view since. It also prunes old days and refreshes the
// metrics every Maintain.
func (v *View) Run(ctx context.Context) error {
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(v.cfg.Maintain)
		defer t.Stop()
		for {
			v.maintain(mctx)
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			case <-v.shrink:
			}
		}
	}()
	defer func() { stop(); <-done }()
	if err := outage.Rerun(ctx, v.kafka, v.cfg.Backoff, v.runOnce, v.restarts.Inc); err != nil {
		return fmt.Errorf("views: %w", err)
	}
	return nil
}

// runOnce builds one Goka view and runs it until it stops; once it has
// recovered, the view is ready and Kafka counts as back.
func (v *View) runOnce(ctx context.Context) error {
	gv, release, err := v.build(ctx)
	if err != nil {
		return err
	}
	defer release()
	v.cur.Store(gv)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-gv.WaitRunning():
			v.ready.Store(true)
			v.recovered.Set(1)
			v.kafka.OK()
		case <-rctx.Done():
		}
	}()
	err = gv.Run(rctx)
	v.ready.Store(false)
	v.recovered.Set(0)
	cancel()
	<-watched
	v.ready.Store(false)
	return err
}

func (v *View) maintain(ctx context.Context) {
	if n := v.Prune(v.cfg.Now()); n > 0 {
		v.log.Debug("pruned days that left the window", "user_days", n)
	}
	v.userDays.Set(float64(v.size()))
	if v.Recovered() {
		v.recovered.Set(1)
	} else {
		v.recovered.Set(0)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v.lag.Set(float64(v.Lag(sctx)))
}
