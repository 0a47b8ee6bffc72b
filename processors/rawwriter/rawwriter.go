package rawwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/store/cassandra"
)

const groupName = "topk-raw-writer"

// Group is the raw writer's consumer group in a namespace.
func Group(namespace string) string { return listen.Namespaced(namespace, groupName) }

// Name labels the raw writer's sink metrics (topk_sink_*{sink="raw_writer"}).
const Name = "raw_writer"

var (
	rowsWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_raw_writer_rows_total",
		Help: "Raw listen rows written to Cassandra (a retried or redelivered listen counts again; the row is the same).",
	})
	cqlBatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_raw_writer_cql_batches_total",
		Help: "Single-partition CQL batches written.",
	})
	usersWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_raw_writer_known_users_total",
		Help: "users_by_prefix rows written (the user search); a user already written by this process is not written again.",
	})
	skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_raw_writer_skipped_total",
		Help: "Records of user.listen.valid not written, by reason: undecodable (not a listen), wrong_key (the key is not the listen's user_id|day). The aggregator dead-letters both.",
	}, []string{"reason"})
)

// registerMetrics registers the raw writer's metrics on reg (nil: the
// default registerer); again is a no-op.
func registerMetrics(reg prometheus.Registerer) error {
	return metrics.Register(reg, rowsWritten, cqlBatches, usersWritten, skipped)
}

// Config configures the raw writer.
type Config struct {
	// Namespace prefixes the topic and the group (tests); empty in production.
	Namespace string
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// BatchSize is the most listens per sink batch. Default 1000.
	BatchSize int
	// Linger is how long a partial batch waits for more listens. Default 100 ms.
	Linger time.Duration
	// MaxBatchBytes bounds a batch's keys and values (TOPK_SINK_BATCH_BYTES);
	// 0: sink.DefaultMaxBatchBytes.
	MaxBatchBytes int
	// Concurrency is how many (user, day) groups of a batch are written at
	// once. Default 8.
	Concurrency int
	// MaxRowsPerCQLBatch splits a large (user, day) group (a re-import of a
	// heavy day) into several batches. Default 200.
	MaxRowsPerCQLBatch int
	// Backoff spaces retries of a failed batch. Default sink.DefaultBackoff.
	Backoff sink.Backoff
	// OutageLimit is how long a partition's writes may keep failing
	// (Cassandra down), or Kafka stay unreachable, before Run returns an
	// error. Default outage.DefaultLimit (5 minutes); see sink.Config.
	OutageLimit time.Duration
	// Log receives the logs. Default slog.Default().
	Log *slog.Logger
	// Sarama overrides the Kafka client settings (default kafka.NewSaramaConfig).
	Sarama *sarama.Config
	// Registerer takes the raw writer's metrics and its sink's
	// (registered by New); nil: prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("rawwriter: no Brokers"))
	}
	if c.BatchSize < 0 || c.Linger < 0 || c.Concurrency < 0 || c.MaxRowsPerCQLBatch < 0 {
		errs = append(errs, errors.New("rawwriter: sizes and durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.Linger == 0 {
		c.Linger = 100 * time.Millisecond
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.MaxRowsPerCQLBatch == 0 {
		c.MaxRowsPerCQLBatch = 200
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Writer is the raw writer: New, then Run.
type Writer struct {
	cfg   Config
	store store
	log   *slog.Logger
	sink  *sink.Sink
	known knownUsers
}

// store is what the raw writer needs of Cassandra: cassandra.RawStore, or
// a fake in the unit tests. Both writes must be idempotent.
type store interface {
	// WriteListens writes listens, all of the partition (user, day), as
	// one unlogged single-partition batch.
	WriteListens(ctx context.Context, user string, day time.Time, listens []listen.Listen) error
	// WriteKnownUser records user for the api's user search.
	WriteKnownUser(ctx context.Context, user string) error
}

// knownUsers remembers the users whose users_by_prefix row this process
// wrote, so a user is written once, not once per batch. Bounded: when it
// is full it starts over (writing a row again is harmless).
type knownUsers struct {
	mu    sync.Mutex
	users map[string]struct{}
}

const maxKnownUsers = 100_000

func (k *knownUsers) missing(users []string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, u := range users {
		if _, ok := k.users[u]; !ok {
			out = append(out, u)
		}
	}
	return out
}

func (k *knownUsers) add(users []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.users == nil || len(k.users)+len(users) > maxKnownUsers {
		k.users = make(map[string]struct{}, len(users))
	}
	for _, u := range users {
		k.users[u] = struct{}{}
	}
}

// New returns a raw writer on session (opened on topk's keyspace by the
// caller, who closes it after Run returns).
func New(cfg Config, session *gocql.Session) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if session == nil {
		return nil, errors.New("rawwriter: nil Cassandra session")
	}
	if err := registerMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("rawwriter: %w", err)
	}
	w := newWriter(cfg, cassandra.NewRawStore(session))
	s, err := sink.New(w.sinkConfig(), w)
	if err != nil {
		return nil, err
	}
	w.sink = s
	return w, nil
}

// newWriter is a raw writer on st without its sink.
func newWriter(cfg Config, st store) *Writer {
	cfg = cfg.withDefaults()
	return &Writer{cfg: cfg, store: st, log: cfg.Log.With("component", Name)}
}

// sinkConfig is the configuration of the raw writer's sink.
func (w *Writer) sinkConfig() sink.Config {
	cfg := w.cfg
	return sink.Config{
		Name:          Name,
		Brokers:       cfg.Brokers,
		Group:         Group(cfg.Namespace),
		Topic:         string(listen.NewTopics(cfg.Namespace).Valid),
		BatchSize:     cfg.BatchSize,
		MaxBatchBytes: cfg.MaxBatchBytes,
		Linger:        cfg.Linger,
		Backoff:       cfg.Backoff,
		OutageLimit:   cfg.OutageLimit,
		Log:           cfg.Log,
		Sarama:        cfg.Sarama,
		Registerer:    cfg.Registerer,
	}
}

// Run writes listens until ctx ends; see sink.Sink.Run.
func (w *Writer) Run(ctx context.Context) error { return w.sink.Run(ctx) }

// Check reports Kafka unreachable and partitions whose writes keep failing
// (readiness: the writer is alive but not writing).
func (w *Writer) Check(ctx context.Context) error { return w.sink.Check(ctx) }

// partitionGroup is the listens of one Cassandra partition (user_id, day),
// one per identity.
type partitionGroup struct {
	user    string
	day     time.Time
	listens []listen.Listen
}

// rejected is a record of the batch that is not written, and why.
type rejected struct {
	msg    *sarama.ConsumerMessage
	reason string
	err    error
}

// group decodes a batch and groups it by (user_id, day), one listen per
// identity (they are the same row), merged as writing them in order would
// (see merge). Records that do not decode, or whose key is not their
// listen's user_id|day, are returned apart: the aggregator dead-letters
// them without counting them, so raw_listens leaves them out too.
func group(batch []*sarama.ConsumerMessage) (groups []*partitionGroup, bad []rejected) {
	byKey := map[string]*partitionGroup{}
	index := map[listen.Identity]int{}
	for _, m := range batch {
		v, err := listen.Codec{}.Decode(m.Value)
		if err != nil {
			bad = append(bad, rejected{m, "undecodable", err})
			continue
		}
		l := v.(listen.Listen)
		if l.Key() != string(m.Key) {
			bad = append(bad, rejected{m, "wrong_key", fmt.Errorf("the listen belongs to %s", l.Key())})
			continue
		}
		g := byKey[l.Key()]
		if g == nil {
			t := l.PlayedAt.UTC()
			g = &partitionGroup{user: l.UserID, day: time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)}
			byKey[l.Key()] = g
			groups = append(groups, g)
		}
		id := l.Identity()
		if i, ok := index[id]; ok {
			g.listens[i] = merge(g.listens[i], l)
			continue
		}
		index[id] = len(g.listens)
		g.listens = append(g.listens, l)
	}
	return groups, bad
}

// Write implements sink.Writer: every decodable listen of batch is in
// raw_listens when it returns nil.
func (w *Writer) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	groups, bad := group(batch)
	for _, r := range bad {
		skipped.WithLabelValues(r.reason).Inc()
		w.log.Warn("skipping a record of the valid topic", "reason", r.reason,
			"partition", r.msg.Partition, "offset", r.msg.Offset, "key", string(r.msg.Key), "err", r.err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.Concurrency)
	for _, pg := range groups {
		for start := 0; start < len(pg.listens); start += w.cfg.MaxRowsPerCQLBatch {
			chunk := pg.listens[start:min(start+w.cfg.MaxRowsPerCQLBatch, len(pg.listens))]
			g.Go(func() error { return w.writeChunk(gctx, pg, chunk) })
		}
	}
	users := w.known.missing(distinctUsers(groups))
	for _, u := range users {
		g.Go(func() error { return w.writeKnownUser(gctx, u) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w.known.add(users)
	return nil
}

// distinctUsers lists the users of the groups once each, in order.
func distinctUsers(groups []*partitionGroup) []string {
	seen := map[string]bool{}
	var out []string
	for _, pg := range groups {
		if !seen[pg.user] {
			seen[pg.user] = true
			out = append(out, pg.user)
		}
	}
	return out
}

// writeKnownUser records a user for the api's user search.
func (w *Writer) writeKnownUser(ctx context.Context, user string) error {
	if err := w.store.WriteKnownUser(ctx, user); err != nil {
		return fmt.Errorf("users_by_prefix %s: %w", user, err)
	}
	usersWritten.Inc()
	return nil
}

func (w *Writer) writeChunk(ctx context.Context, pg *partitionGroup, listens []listen.Listen) error {
	if err := w.store.WriteListens(ctx, pg.user, pg.day, listens); err != nil {
		return fmt.Errorf("raw_listens %s %s (%d rows): %w", pg.user, pg.day.Format(listen.DayLayout), len(listens), err)
	}
	cqlBatches.Inc()
	rowsWritten.Add(float64(len(listens)))
	return nil
}

// merge is what writing a then b into one row leaves: b's fields, except
// the optional ones b lacks (cassandra.RawStore leaves them unset: they
// keep a's).
func merge(a, b listen.Listen) listen.Listen {
	keep := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	keep(&b.AlbumName, a.AlbumName)
	keep(&b.TrackID, a.TrackID)
	keep(&b.ArtistID, a.ArtistID)
	keep(&b.AlbumID, a.AlbumID)
	keep(&b.Source, a.Source)
	keep(&b.EventID, a.EventID)
	if !cassandra.StoresDuration(b.DurationMS) {
		b.DurationMS = a.DurationMS
	}
	return b
}
