package sitewide

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// DefaultKeyBytes bounds one key's encoded Value: about 400 listeners of
// 10-byte user ids. A hot item's day spills into child keys (Spill)
// instead of growing one value that every Count of it rewrites.
const DefaultKeyBytes = 8 << 10

// DefaultMaxStateBytes is the aggregator's default (TOPK_MAX_STATE_BYTES),
// well under Kafka's 1 MiB record limit: KeyBytes may be at most a third
// of it.
const DefaultMaxStateBytes = 512 << 10

// DefaultRecentDays is the window of the SitewideRecent topic, the
// aggregator's recent window (TOPK_VIEW_DAYS).
const DefaultRecentDays = 35

// minKeyBytes is the least KeyBytes Validate accepts: a key must hold one
// listener with short names.
const minKeyBytes = 64

// Config configures the sitewide group.
type Config struct {
	Namespace string
	// KeyBytes bounds the encoded Value of one key: a new user that would
	// pass it goes to a child key (Spill). Default DefaultKeyBytes, or a
	// third of MaxStateBytes if that is less; at most a third of
	// MaxStateBytes.
	KeyBytes int
	// MaxStateBytes is the aggregator's bound of a table value
	// (TOPK_MAX_STATE_BYTES, under Kafka's message limit). Default
	// DefaultMaxStateBytes.
	MaxStateBytes int
	// Partitions is the partition count of the counts topic. When set, a
	// Count on another partition than the one Hasher gives its key goes
	// to the DLQ (wrong_partition): counted there, it would fork its
	// key's value. Setup sets it from the topic; 0 skips the check
	// (Goka's tester has one partition).
	Partitions int32
	// RecentDays is the window of the SitewideRecent topic: a key whose
	// day is at most RecentDays days before today (UTC) is also written
	// there, for the api's sitewide view. Default DefaultRecentDays; the
	// same setting as the view's (TOPK_VIEW_DAYS).
	RecentDays int
	// Now is the clock of the recent window. Default time.Now.
	Now func() time.Time
}

// WithDefaults is c with its defaults filled in.
func (c Config) WithDefaults() Config {
	if c.MaxStateBytes <= 0 {
		c.MaxStateBytes = DefaultMaxStateBytes
	}
	if c.KeyBytes <= 0 {
		c.KeyBytes = min(DefaultKeyBytes, c.MaxStateBytes/3)
	}
	if c.RecentDays <= 0 {
		c.RecentDays = DefaultRecentDays
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a KeyBytes out of bounds (after defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.KeyBytes < minKeyBytes || c.KeyBytes > c.MaxStateBytes/3 {
		return fmt.Errorf("sitewide: key bytes %d not within %d…%d (a third of the state limit %d)",
			c.KeyBytes, minKeyBytes, c.MaxStateBytes/3, c.MaxStateBytes)
	}
	return nil
}

var (
	counts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_sitewide_counts_total",
		Help: "Counts read by the sitewide group, by outcome: applied (the key's value changed), stale (the key holds the user at that version or later), forwarded (to a child key: the key is full), moved (the user's update did not fit: it left the key for the child), dead_lettered.",
	}, []string{"outcome"})
	keysFull = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_keys_full_total",
		Help: "Keys the sitewide group marked full (their new users go to child keys from then on).",
	})
	rewrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_sitewide_rewrites_total",
		Help: "Unchanged values written again for a stale or forwarded Count (at most once per key and assignment).",
	})
	valueBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "topk_sitewide_value_bytes",
		Help:    "Encoded size of a sitewide value written to the table.",
		Buckets: prometheus.ExponentialBuckets(64, 2, 12),
	})
)

var (
	outcomeApplied   = counts.WithLabelValues("applied")
	outcomeStale     = counts.WithLabelValues("stale")
	outcomeForwarded = counts.WithLabelValues("forwarded")
	outcomeMoved     = counts.WithLabelValues("moved")
	outcomeDead      = counts.WithLabelValues("dead_lettered")
)

// Graph is the sitewide group's topology. Counts are read as bytes and
// decoded in the callback, so a record that is not one goes to the DLQ
// instead of stopping the group. Run it with goka.WithHasher(Hasher).
func Graph(cfg Config) *goka.GroupGraph { return newGroup(cfg).graph() }

// group is the callback and what it remembers between messages.
type group struct {
	cfg Config
	t   listen.Topics

	mu sync.Mutex
	// written holds the keys whose value this processor has rewritten for
	// a stale or forwarded Count since its partitions were assigned (see
	// rewrite).
	written map[string]struct{}
}

// maxWrittenKeys bounds group.written; past it the set starts over, which
// only costs rewrites.
const maxWrittenKeys = 1 << 18

func newGroup(cfg Config) *group {
	cfg = cfg.WithDefaults()
	return &group{cfg: cfg, t: listen.NewTopics(cfg.Namespace), written: map[string]struct{}{}}
}

func (g *group) graph() *goka.GroupGraph {
	return goka.DefineGroup(Group(g.cfg.Namespace),
		goka.Input(g.t.Counts, processors.RawCodec{}, g.process),
		goka.Persist(valueCodec{}),
		goka.Output(g.t.Counts, processors.RawCodec{}),
		goka.Output(g.t.SitewideRecent, processors.RawCodec{}),
		goka.Output(g.t.DLQ, processors.RawCodec{}),
	)
}

// reset forgets the rewritten keys: a new assignment may bring partitions
// whose local store is ahead of the changelog.
func (g *group) reset(goka.Assignment) {
	g.mu.Lock()
	g.written = map[string]struct{}{}
	g.mu.Unlock()
}

func (g *group) firstWrite(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.written[key]; ok {
		return false
	}
	if len(g.written) >= maxWrittenKeys {
		g.written = map[string]struct{}{}
	}
	g.written[key] = struct{}{}
	return true
}

func (g *group) dead(ctx goka.Context, reason, detail string, raw []byte) {
	processors.DeadLetter(ctx, g.t.DLQ, Stage, reason, detail, raw)
	outcomeDead.Inc()
}

func (g *group) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	if raw == nil {
		g.dead(ctx, "undecodable", "no value", raw)
		return
	}
	k, err := ParseKey(ctx.Key())
	if err != nil {
		g.dead(ctx, "bad_key", err.Error(), raw)
		return
	}
	if n := g.cfg.Partitions; n > 0 {
		if want := KeyPartition(ctx.Key(), n); want != ctx.Partition() {
			g.dead(ctx, "wrong_partition",
				fmt.Sprintf("key %q belongs to partition %d of %d (sitewide.Hasher), read from partition %d", ctx.Key(), want, n, ctx.Partition()), raw)
			return
		}
	}
	c, err := DecodeCount(raw)
	if err != nil {
		g.dead(ctx, "undecodable", err.Error(), raw)
		return
	}
	if c.User == "" {
		g.dead(ctx, "undecodable", "sitewide count: no user", raw)
		return
	}
	if !OnPath(k.Bucket, c.User) {
		g.dead(ctx, "wrong_bucket", fmt.Sprintf("bucket %d is not on user %q's spill path from bucket %d", k.Bucket, c.User, BucketOf(c.User)), raw)
		return
	}
	old, _ := ctx.Value().([]byte)
	res, out, err := apply(old, &c, []byte(c.User), g.cfg.KeyBytes)
	if err != nil {
		g.dead(ctx, "corrupt_value", fmt.Sprintf("the key's stored value: %v", err), raw)
		return
	}
	switch res {
	case applied:
		outcomeApplied.Inc()
		g.write(ctx, k, out)
	case stale:
		outcomeStale.Inc()
		g.rewrite(ctx, k, old)
	case forward, filled, moved:
		child, ok := Spill(k.Bucket, c.User)
		if !ok {
			g.dead(ctx, "spill_depth", fmt.Sprintf("key %s is full and bucket %d has no child level left", ctx.Key(), k.Bucket), raw)
			return
		}
		switch res {
		case forward:
			outcomeForwarded.Inc()
			g.rewrite(ctx, k, old)
		case filled:
			outcomeForwarded.Inc()
			keysFull.Inc()
			g.write(ctx, k, out)
		case moved:
			outcomeMoved.Inc()
			if !rawFull(old) {
				keysFull.Inc()
			}
			g.write(ctx, k, out)
		}
		ck := k
		ck.Bucket = child
		ctx.Emit(g.t.Counts, ck.String(), raw)
	}
}

func rawFull(b []byte) bool { return len(b) > 1 && b[1]&1 != 0 }

// write sets the key's new value and, for a recent day, writes the same
// bytes to the SitewideRecent topic.
func (g *group) write(ctx goka.Context, k Key, b []byte) {
	ctx.SetValue(encodedValue(b))
	if g.recent(k.Day) {
		ctx.Emit(g.t.SitewideRecent, ctx.Key(), b)
	}
}

// rewrite writes the unchanged value b again for a Count that changed
// nothing (stale, or forwarded from a full key), once per key and
// assignment. Goka writes the local store before the changelog write is
// acknowledged, so after a crash or a failed write the replayed Count's
// change (a listener, the Full flag) is already in the local value while
// the changelog, the flusher and the view never saw it; a Full flag
// missing from the changelog would let a copy that recovers from it take
// a user its child already counts. Writing the value again closes that
// window, as the aggregator's duplicate rewrite does.
func (g *group) rewrite(ctx goka.Context, k Key, b []byte) {
	if len(b) == 0 || !g.firstWrite(ctx.Key()) {
		return
	}
	rewrites.Inc()
	g.write(ctx, k, b)
}

// recent reports whether day is in the SitewideRecent topic's window: at
// most RecentDays days before today (UTC, one more than a view of
// RecentDays days keeps, for clocks that disagree around midnight), or
// later — the aggregator's rule.
func (g *group) recent(day time.Time) bool {
	today := g.cfg.Now().Unix() / 86400
	return day.Unix()/86400 >= today-int64(g.cfg.RecentDays)
}

// encodedValue is a value the callback encoded; the table codec passes it
// through.
type encodedValue []byte

// valueCodec is the table's codec: encoded values pass through (recording
// their size), and the callback reads the bytes (ctx.Value() is a []byte,
// nil for a new key). DecodeValue reads them.
type valueCodec struct{}

func (valueCodec) Encode(v any) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case encodedValue:
		b = x
	case []byte:
		b = x
	case *Value:
		b = AppendValue(nil, x)
	default:
		return nil, fmt.Errorf("sitewide value codec: cannot encode %T", v)
	}
	valueBytes.Observe(float64(len(b)))
	return b, nil
}

func (valueCodec) Decode(b []byte) (any, error) { return b, nil }

// Setup creates or reconciles the group's table topic and the
// SitewideRecent topic of cfg (copartitioned with the counts topic) and
// waits until they serve: run it before New. It returns cfg with
// Partitions set to the counts topic's partition count (for the
// wrong_partition check).
func Setup(ctx context.Context, s processors.Settings, cfg Config) (Config, error) {
	n, err := s.EnsureCopartitioned(ctx, listen.NewTopics(cfg.Namespace).Counts,
		s.TableSpec(Table(cfg.Namespace)), RecentSpec(s, cfg.Namespace, cfg.RecentDays))
	if err != nil {
		return cfg, err
	}
	cfg.Partitions = n
	return cfg, nil
}

// EnsureRecent creates or reconciles the SitewideRecent topic of
// namespace (kafka.RecentTopic, the partitions of the counts topic) with
// a window of days (0: DefaultRecentDays). The group and the api's
// sitewide view both set it up, so either may start first. It gives up
// when ctx ends.
func EnsureRecent(ctx context.Context, s processors.Settings, namespace string, days int) error {
	_, err := s.EnsureCopartitioned(ctx, listen.NewTopics(namespace).Counts, RecentSpec(s, namespace, days))
	return err
}

// RecentSpec is the SitewideRecent topic's spec under s with a window of
// days (0: DefaultRecentDays), for Settings.EnsureCopartitioned and `topk
// topics`.
func RecentSpec(s processors.Settings, namespace string, days int) func(int32) kafka.TopicSpec {
	if days <= 0 {
		days = DefaultRecentDays
	}
	return func(n int32) kafka.TopicSpec {
		return kafka.RecentTopic(string(listen.NewTopics(namespace).SitewideRecent), n, s.MinInsync, days).WithMaxMessageBytes(s.MaxMessageBytes)
	}
}

// New builds the sitewide group's processor with its storage in dir (see
// processors.StorageDir), partitioned by Hasher. It does no I/O of its
// own: run Setup first. Its metrics and the dead letters' go to
// s.Registerer.
func New(s processors.Settings, cfg Config, dir string, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := s.RegisterDeadLetters(counts, keysFull, rewrites, valueBytes); err != nil {
		return nil, fmt.Errorf("sitewide: %w", err)
	}
	g := newGroup(cfg)
	o := append(s.Options(string(Group(cfg.Namespace)), dir),
		goka.WithHasher(Hasher), goka.WithNilHandling(goka.NilProcess), goka.WithRebalanceCallback(g.reset))
	return goka.NewProcessor(s.Brokers, g.graph(), append(o, opts...)...)
}
