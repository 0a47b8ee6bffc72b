package aggregator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

const groupName = "topk-aggregator"

// Group is the aggregator group of a namespace.
func Group(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, groupName))
}

// Table is the aggregator's table topic, "<group>-table".
func Table(namespace string) goka.Table { return goka.GroupTable(Group(namespace)) }

// Stage names this group in dead-letter headers and metrics.
const Stage = "aggregator"

// DefaultMaxPlaysPerDay caps the plays counted per user-day. A day has
// 86 400 seconds; a person listening around the clock plays about 500
// tracks. Beyond the cap, listens go to the DLQ (reason daily_cap), which
// also keeps a day's state far under Kafka's 1 MiB record limit.
const DefaultMaxPlaysPerDay = 2000

var (
	listens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_aggregator_listens_total",
		Help: "Records read by the aggregator, by outcome: listens counted, duplicate, over_cap, over_size, invalid; deletions deleted, deleted_album_unknown (counted before state version 3, album not known: no album lost a play), delete_not_found.",
	}, []string{"outcome"})
	rewrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_aggregator_rewrites_total",
		Help: "Unchanged states written again for a duplicate (at most once per key and assignment).",
	})
	stateBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "topk_aggregator_state_bytes",
		Help:    "Encoded size of a user-day state written to the table.",
		Buckets: prometheus.ExponentialBuckets(64, 4, 9),
	})
)

// The outcomes of listens, looked up once instead of per listen.
var (
	outcomeCounted   = listens.WithLabelValues("counted")
	outcomeDuplicate = listens.WithLabelValues("duplicate")
	outcomeOverCap   = listens.WithLabelValues("over_cap")
	outcomeOverSize  = listens.WithLabelValues("over_size")
	outcomeInvalid   = listens.WithLabelValues("invalid")

	outcomeDeleted      = listens.WithLabelValues("deleted")
	outcomeDeletedNoAlb = listens.WithLabelValues("deleted_album_unknown")
	outcomeDelMissing   = listens.WithLabelValues("delete_not_found")
)

// DefaultMaxStateBytes caps the encoded size of one user-day's state,
// well under Kafka's 1 MiB record limit: a listen that would make its
// user-day larger goes to the DLQ (reason state_size) instead of failing
// the changelog write and stopping the group.
const DefaultMaxStateBytes = 512 << 10

// Config configures the aggregator.
type Config struct {
	Namespace      string
	MaxPlaysPerDay int // default DefaultMaxPlaysPerDay
	MaxStateBytes  int // default DefaultMaxStateBytes
	// Partitions is the partition count of user.listen.valid. When set, a
	// record on another partition than the one Goka's hasher gives its key
	// goes to the DLQ (wrong_partition): counted there, it would fork its
	// user-day's state. New sets it from the topic; 0 skips the check
	// (Goka's tester has one partition).
	Partitions int32
	// RecentDays is the window of the recent topic (listen.Topics.Recent):
	// a user-day whose date is at most RecentDays days before today (UTC)
	// is also written there, for the api's views. Default
	// DefaultRecentDays; the views' window (TOPK_VIEW_DAYS) is the same
	// setting.
	RecentDays int
	// Now is the clock of the recent window. Default time.Now.
	Now func() time.Time
	// CacheBytes bounds the cache of decoded user-day states (see
	// cache.go). Default DefaultCacheBytes; negative: no cache.
	CacheBytes int
	// Log takes the warnings of deletions. Default slog.Default().
	Log *slog.Logger
}

// DefaultRecentDays is the default window of the recent topic: the api's
// view keeps 35 days (today, 7d, 30d, this_week, this_month).
const DefaultRecentDays = 35

// PlayOf reduces a listen to what a day's state keeps.
func PlayOf(l listen.Listen) Play {
	t := l.PlayedAt.UTC()
	artist, track, album := l.ItemKeys()
	return Play{
		Sec:       uint32(t.Hour()*3600 + t.Minute()*60 + t.Second()),
		TrackKey:  track,
		ArtistKey: artist,
		AlbumKey:  album,
		Track:     l.TrackName,
		Artist:    l.ArtistName,
		Album:     l.AlbumName,
	}
}

// Graph is the aggregator topology. The input is read as bytes and decoded
// in the callback, so a record that is not a listen goes to the DLQ instead
// of stopping the group.
func Graph(cfg Config) *goka.GroupGraph { return newCounter(cfg).graph() }

// counter is the aggregator's callback and what it remembers between
// messages: which keys it has written in this assignment.
type counter struct {
	cfg Config
	t   listen.Topics

	// cutoff is the oldest date written to the recent topic, for the UTC
	// day it was computed on (recomputed when the day changes).
	cutoff atomic.Pointer[recentCutoff]

	cache *stateCache

	mu sync.Mutex
	// written holds the keys whose state this processor has rewritten for
	// a duplicate since its partitions were assigned. Their local value
	// and the changelog agree (or the write fails and the processor
	// restarts, forgetting them), so another duplicate needs no rewrite.
	written map[string]struct{}
}

// maxWrittenKeys bounds counter.written; past it the set starts over, which
// only costs rewrites.
const maxWrittenKeys = 1 << 18

func newCounter(cfg Config) *counter {
	if cfg.MaxPlaysPerDay <= 0 {
		cfg.MaxPlaysPerDay = DefaultMaxPlaysPerDay
	}
	if cfg.MaxStateBytes <= 0 {
		cfg.MaxStateBytes = DefaultMaxStateBytes
	}
	if cfg.RecentDays <= 0 {
		cfg.RecentDays = DefaultRecentDays
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &counter{cfg: cfg, t: listen.NewTopics(cfg.Namespace), written: map[string]struct{}{},
		cache: newStateCache(cfg.CacheBytes)}
}

// reset forgets the written keys and the cached states: a new assignment
// may bring partitions whose local store is ahead of the changelog (a
// crash, a failed write), or that another copy advanced meanwhile.
func (c *counter) reset(goka.Assignment) {
	c.mu.Lock()
	c.written = map[string]struct{}{}
	c.mu.Unlock()
	c.cache.reset()
}

// firstWrite records key as written and reports whether it was not yet.
func (c *counter) firstWrite(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.written[key]; ok {
		return false
	}
	if len(c.written) >= maxWrittenKeys {
		c.written = map[string]struct{}{}
	}
	c.written[key] = struct{}{}
	return true
}

func (c *counter) graph() *goka.GroupGraph {
	return goka.DefineGroup(Group(c.cfg.Namespace),
		goka.Input(c.t.Valid, processors.RawCodec{}, c.process),
		goka.Persist(sizedCodec{}),
		goka.Output(c.t.DLQ, processors.RawCodec{}),
		goka.Output(c.t.Recent, processors.RawCodec{}),
	)
}

// recent reports whether key's day is in the recent topic's window: its
// date is at most RecentDays days before today (one more than a view of
// RecentDays days keeps, for clocks that disagree around midnight), or
// later.
func (c *counter) recent(key string) bool {
	if len(key) < len(listen.DayLayout) {
		return false
	}
	day := key[len(key)-len(listen.DayLayout):]
	now := c.cfg.Now().UTC()
	cut := c.cutoff.Load()
	if d := now.Unix() / 86400; cut == nil || cut.day != d {
		cut = &recentCutoff{day: d, date: now.AddDate(0, 0, -c.cfg.RecentDays).Format(listen.DayLayout)}
		c.cutoff.Store(cut)
	}
	return day >= cut.date
}

// recentCutoff is the first date (listen.DayLayout) of the recent window
// on a UTC day (Unix days).
type recentCutoff struct {
	day  int64
	date string
}

// write sets the user-day's new state and, for a recent day, writes the
// same bytes to the recent topic.
func (c *counter) write(ctx goka.Context, b []byte) {
	ctx.SetValue(encodedDay(b))
	if c.recent(ctx.Key()) {
		ctx.Emit(c.t.Recent, ctx.Key(), b)
	}
}

func (c *counter) process(ctx goka.Context, msg any) {
	t := c.t
	raw, _ := msg.([]byte)
	if n := c.cfg.Partitions; n > 0 {
		if want := KeyPartition(ctx.Key(), n); want != ctx.Partition() {
			processors.DeadLetter(ctx, t.DLQ, Stage, "wrong_partition",
				fmt.Sprintf("key %q belongs to partition %d of %d (Goka's hasher), read from partition %d", ctx.Key(), want, n, ctx.Partition()), raw)
			outcomeInvalid.Inc()
			return
		}
	}
	if listen.IsDelete(raw) {
		c.delete(ctx, raw)
		return
	}
	v, err := listen.Codec{}.Decode(raw)
	if err != nil {
		processors.DeadLetter(ctx, t.DLQ, Stage, "undecodable", err.Error(), raw)
		outcomeInvalid.Inc()
		return
	}
	l := v.(listen.Listen)
	if l.Key() != ctx.Key() {
		processors.DeadLetter(ctx, t.DLQ, Stage, "wrong_key", "key "+ctx.Key()+" but the listen belongs to "+l.Key(), raw)
		outcomeInvalid.Inc()
		return
	}
	key := ctx.Key()
	pc, d := c.state(ctx)
	p := PlayOf(l)
	switch {
	case d.Has(p):
		outcomeDuplicate.Inc()
		c.rewrite(ctx, pc, d)
		return
	case int(d.Total) >= c.cfg.MaxPlaysPerDay:
		processors.DeadLetter(ctx, t.DLQ, Stage, "daily_cap", "user-day reached its cap of counted plays", raw)
		outcomeOverCap.Inc()
		return
	}
	d.Add(p)
	b := d.Encode()
	if len(b) > c.cfg.MaxStateBytes {
		// d now differs from the stored state: not to be used again.
		pc.drop(key)
		processors.DeadLetter(ctx, t.DLQ, Stage, "state_size",
			fmt.Sprintf("user-day state would be %d bytes, over the limit of %d", len(b), c.cfg.MaxStateBytes), raw)
		outcomeOverSize.Inc()
		return
	}
	outcomeCounted.Inc()
	// Not recorded in written: that would cost a map insert per counted
	// listen; a later duplicate of this key rewrites it once instead.
	c.write(ctx, b)
	pc.put(key, d, len(b))
}

// state is the user-day's state (from the cache, else the table, else a
// new day) and the partition's cache.
func (c *counter) state(ctx goka.Context) (*partCache, *Day) {
	pc := c.cache.partition(ctx.Partition())
	d, ok := pc.get(ctx.Key())
	if !ok {
		d, _ = ctx.Value().(*Day)
		if d == nil {
			d = &Day{}
		}
	}
	return pc, d
}

// rewrite writes the unchanged state d again for a record that changed
// nothing (a duplicate listen, a deletion of a listen not counted), once
// per key and assignment. Goka writes the local store before the
// changelog write is acknowledged, so after a crash or a failed write the
// replayed record's change is already in the local state while the
// changelog (and the flusher, and the views) never saw it. Writing the
// value again closes that window; after that the changelog has what the
// store has. The rewritten state's Changed is empty: it is no change of
// its own, and the fan-out sends such a state's every item.
func (c *counter) rewrite(ctx goka.Context, pc *partCache, d *Day) {
	if !c.firstWrite(ctx.Key()) {
		return
	}
	rewrites.Inc()
	d.Changed = Touched{}
	b := d.Encode()
	c.write(ctx, b)
	pc.put(ctx.Key(), d, len(b))
}

// delete applies a delete record (listen.Delete): the counted listen of
// that second whose track has that msid leaves the seen set and the
// counts, and the day's Version grows; the flusher and the views follow
// the new state. A deletion that finds no such listen (never counted,
// deleted already, or a replay) changes nothing. A deleted listen that
// arrives again later counts again: it is no longer in the seen set.
func (c *counter) delete(ctx goka.Context, raw []byte) {
	del, err := listen.DecodeDelete(raw)
	if err != nil {
		processors.DeadLetter(ctx, c.t.DLQ, Stage, "undecodable", err.Error(), raw)
		outcomeInvalid.Inc()
		return
	}
	if del.Key() != ctx.Key() {
		processors.DeadLetter(ctx, c.t.DLQ, Stage, "wrong_key", "key "+ctx.Key()+" but the deletion belongs to "+del.Key(), raw)
		outcomeInvalid.Inc()
		return
	}
	pc, d := c.state(ctx)
	t := del.PlayedAt.UTC()
	switch d.DeleteWithAlbum(uint32(t.Hour()*3600+t.Minute()*60+t.Second()), del.MSID, del.Album) {
	case NotFound:
		outcomeDelMissing.Inc()
		c.rewrite(ctx, pc, d)
		return
	case RemovedAlbumUnknown:
		outcomeDeletedNoAlb.Inc()
		c.cfg.Log.Warn("deleted a listen counted before state version 3 whose album the day's counts do not tell: its album keeps the play",
			"key", ctx.Key(), "played_at", t, "recording_msid", del.MSID)
	default:
		outcomeDeleted.Inc()
	}
	b := d.Encode()
	c.write(ctx, b)
	pc.put(ctx.Key(), d, len(b))
}

// KeyPartition is the partition of key among n under Goka's hasher (FNV-1a,
// sarama's hash partitioner): where ingest's emits put a user-day.
// It runs for every listen, so it hashes the string in place instead of
// allocating a hash.Hash32 and a byte copy of the key.
func KeyPartition(key string, n int32) int32 {
	const offset32, prime32 = 2166136261, 16777619 // FNV-1a, as hash/fnv
	h := uint32(offset32)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= prime32
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

// encodedDay is a state the callback encoded already (to check its size);
// the table codec passes it through.
type encodedDay []byte

// sizedCodec is DayCodec recording the size of every value it encodes.
type sizedCodec struct{ DayCodec }

func (c sizedCodec) Encode(v any) ([]byte, error) {
	if e, ok := v.(encodedDay); ok {
		stateBytes.Observe(float64(len(e)))
		return e, nil
	}
	b, err := c.DayCodec.Encode(v)
	stateBytes.Observe(float64(len(b)))
	return b, err
}

// Setup creates or reconciles the aggregator's table topic and the recent
// topic of cfg (copartitioned with user.listen.valid) and waits until they
// serve: run it before New, so the topics exist before the Goka processor
// starts. It returns cfg with Partitions set to the input's partition
// count (for the wrong_partition check).
func Setup(ctx context.Context, s processors.Settings, cfg Config) (Config, error) {
	n, err := s.EnsureCopartitioned(ctx, listen.NewTopics(cfg.Namespace).Valid,
		s.TableSpec(Table(cfg.Namespace)), recentSpec(s, cfg.Namespace, cfg.RecentDays))
	if err != nil {
		return cfg, err
	}
	cfg.Partitions = n
	return cfg, nil
}

// New builds the aggregator processor with its storage in dir (see
// processors.StorageDir). It does no I/O of its own: run Setup first (its
// Config carries the input's partition count; Partitions 0 skips the
// wrong_partition check). Its metrics, the state cache's and the dead
// letters' go to s.Registerer.
func New(s processors.Settings, cfg Config, dir string, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	if err := s.RegisterDeadLetters(listens, stateBytes, rewrites, cacheLookups, cacheBytes); err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	c := newCounter(cfg)
	o := append(s.Options(string(Group(cfg.Namespace)), dir),
		goka.WithNilHandling(goka.NilProcess), goka.WithRebalanceCallback(c.reset))
	return goka.NewProcessor(s.Brokers, c.graph(), append(o, opts...)...)
}

// EnsureRecent creates or reconciles the recent topic of namespace
// (kafka.RecentTopic, the partitions of user.listen.valid) with a window
// of days (0: DefaultRecentDays). The aggregator and the api's views both
// set it up, so either may start first. It gives up when ctx ends.
func EnsureRecent(ctx context.Context, s processors.Settings, namespace string, days int) error {
	_, err := s.EnsureCopartitioned(ctx, listen.NewTopics(namespace).Valid, recentSpec(s, namespace, days))
	return err
}

// recentSpec is the recent topic's spec under s, for
// Settings.EnsureCopartitioned. s.MinInsync 0 leaves min.insync.replicas
// to the brokers.
func recentSpec(s processors.Settings, namespace string, days int) func(int32) kafka.TopicSpec {
	if days <= 0 {
		days = DefaultRecentDays
	}
	return func(n int32) kafka.TopicSpec {
		return kafka.RecentTopic(string(listen.NewTopics(namespace).Recent), n, s.MinInsync, days).WithMaxMessageBytes(s.MaxMessageBytes)
	}
}
