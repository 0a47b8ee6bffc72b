package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
)

// DefaultDays is R, the days the view keeps: today and the 34 before cover
// today, 7d, 30d, this_week and this_month.
const DefaultDays = 35

// Entity is an item kind (the aggregator's, as stored in Cassandra).
type Entity = aggregator.Entity

// The three entities.
const (
	Tracks  = aggregator.Tracks
	Artists = aggregator.Artists
	Albums  = aggregator.Albums
)

// Item is one track, artist or album of a user-day.
type Item struct {
	Key uint64
	// Name and Artist (tracks and albums) are the spellings of the latest
	// played_at of the day.
	Name, Artist string
	Plays        int64
}

// Day is one user-day of the view.
type Day struct {
	Date  time.Time // midnight UTC
	Plays int64
	// Tracks, Artists, Albums are in no particular order.
	Tracks, Artists, Albums []Item
}

// Items returns the items of an entity.
func (d *Day) Items(e Entity) []Item {
	switch e {
	case Tracks:
		return d.Tracks
	case Artists:
		return d.Artists
	case Albums:
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
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Days < 0 || c.Days > 3660 {
		errs = append(errs, fmt.Errorf("views: Days %d is not within 1…3660 (0: the default %d)", c.Days, DefaultDays))
	}
	if c.Maintain < 0 {
		errs = append(errs, errors.New("views: Maintain must not be negative"))
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
	return c
}

// View is a Goka view of the aggregator's table that keeps only the recent
// R days, in memory. Keys of older days are skipped as they arrive (the
// table holds every day ever, so recovery reads years of history and keeps
// a few weeks), and days that leave the window as the date rolls over are
// dropped by a periodic prune. Reads check Recovered first: a view that is
// (re)connecting serves partial data.
type View struct {
	cfg  Config
	view *goka.View
	log  *slog.Logger

	mu     sync.Mutex
	stores map[int32]*dayStore

	// days are the stores' values decoded once, by key: reads never
	// decode. Values are immutable; a write replaces them.
	dmu  sync.RWMutex
	days map[string]*Day

	lag       prometheus.Gauge
	recovered prometheus.Gauge
	userDays  prometheus.Gauge
	skipped   *prometheus.CounterVec
	updates   prometheus.Counter
}

// New builds the view of the aggregator table of cfg.Namespace. It creates
// the table topic when the aggregator has not yet (so the api can start
// first). opts are appended to Goka's options (tests pass goka's tester;
// settings without brokers skip the topic set-up).
func New(s processors.Settings, cfg Config, opts ...goka.ViewOption) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := &View{cfg: cfg, log: cfg.Log.With("component", "view"), stores: map[int32]*dayStore{}, days: map[string]*Day{}}
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
		Name: "topk_view_skipped_total", Help: "Table records the view did not keep, by reason (old: before the window; bad_key; undecodable).",
	}, []string{"reason"})
	v.updates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_view_updates_total", Help: "Table records the view applied.",
	})
	for _, c := range []prometheus.Collector{v.lag, v.recovered, v.userDays, v.skipped, v.updates} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("views: metrics: %w", err)
		}
	}

	table := aggregator.Table(cfg.Namespace)
	if len(s.Brokers) > 0 {
		if _, err := s.EnsureTable(table, listen.NewTopics(cfg.Namespace).Valid); err != nil {
			return nil, fmt.Errorf("views: %w", err)
		}
	}
	o := append(s.ViewOptions(cfg.ClientID, ""), goka.WithViewAutoReconnect())
	o = append(o, opts...)
	o = append(o, goka.WithViewStorageBuilder(v.storage), goka.WithViewCallback(v.update))
	gv, err := goka.NewView(s.Brokers, table, aggregator.DayCodec{}, o...)
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	v.view = gv
	return v, nil
}

// storage builds one partition's dayStore and keeps it for pruning.
func (v *View) storage(_ string, partition int32) (storage.Storage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := newDayStore(v)
	v.stores[partition] = st
	return st, nil
}

// Goka is the underlying view, for Goka's monitor.
func (v *View) Goka() *goka.View { return v.view }

// Days is R.
func (v *View) Days() int { return v.cfg.Days }

// FirstDay is the oldest day the view holds at now: today − R + 1 (UTC).
func (v *View) FirstDay(now time.Time) time.Time {
	t := now.UTC()
	return time.Date(t.Year(), t.Month(), t.Day()-(v.cfg.Days-1), 0, 0, 0, 0, time.UTC)
}

// Recovered reports whether every partition caught up with the table.
// Check it per request: while the view reconnects it serves partial data.
func (v *View) Recovered() bool { return v.view.Recovered() }

// update is the view's callback: it keeps the user-days of the window,
// without their seen sets (the view needs counts and names, not the
// dedup state), and skips or drops the others.
func (v *View) update(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	_, day, ok := listen.SplitKey(key)
	if !ok {
		v.skipped.WithLabelValues("bad_key").Inc()
		return nil
	}
	if day.Before(v.FirstDay(v.cfg.Now())) {
		v.skipped.WithLabelValues("old").Inc()
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
	lean := &aggregator.Day{Tracks: d.Tracks, Artists: d.Artists, Albums: d.Albums, Total: d.Total}
	v.updates.Inc()
	return s.Set(key, lean.Encode())
}

// set decodes a value a store keeps (the update callback wrote it: a
// lean encoding, no seen set) into the index.
func (v *View) set(key string, value []byte) {
	_, date, ok := listen.SplitKey(key)
	d, err := aggregator.DecodeDay(value)
	if !ok || err != nil {
		v.delete(key)
		return
	}
	out := &Day{Date: date, Plays: int64(d.Total)}
	conv := func(items []aggregator.Item) []Item {
		if len(items) == 0 {
			return nil
		}
		r := make([]Item, len(items))
		for i, it := range items {
			r[i] = Item{Key: it.Key, Name: it.Name, Artist: it.Artist, Plays: int64(it.Plays)}
		}
		return r
	}
	out.Tracks = conv(d.Items(aggregator.Tracks))
	out.Artists = conv(d.Artists)
	out.Albums = conv(d.Albums)
	v.dmu.Lock()
	v.days[key] = out
	v.dmu.Unlock()
}

func (v *View) delete(key string) {
	v.dmu.Lock()
	delete(v.days, key)
	v.dmu.Unlock()
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
	var lag int64
	for _, p := range v.view.Stats(ctx).Partitions {
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

// Run runs the view until ctx ends: it reconnects by itself when Kafka
// goes away (Recovered is false meanwhile), prunes old days and refreshes
// the metrics every Maintain.
func (v *View) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(v.cfg.Maintain)
		defer t.Stop()
		for {
			v.maintain(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	err := v.view.Run(ctx)
	<-done
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
