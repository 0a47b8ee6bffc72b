package rawwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/topk-charts/topk/processors/stored"

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
		Help: "Records of user.listen.valid not written, by reason: undecodable (not a listen nor a delete), wrong_key (the key is not the listen's or delete's user_id|day). The aggregator dead-letters both.",
	}, []string{"reason"})
	deletes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_raw_writer_deletes_total",
		Help: "Listen deletes written to raw_listens, by result: applied (it found its row, or a listen of its batch), not_found (no such listen: never sent, or already deleted, as when a delete is redelivered). Deletes of one listen in one batch count once; a retried or redelivered batch counts again.",
	}, []string{"result"})
)

// registerMetrics registers the raw writer's metrics on reg (nil: the
// default registerer); again is a no-op.
func registerMetrics(reg prometheus.Registerer) error {
	return metrics.Register(reg, rowsWritten, cqlBatches, usersWritten, skipped, deletes)
}

// Config configures the raw writer.
type Config struct {
	// Namespace prefixes the topic and the group (tests); empty in production.
	Namespace string
	// Stored tells the api's caches about every write that changed a day
	// before yesterday (processors/stored), after the write and before the
	// input's offsets are marked; nil: nobody is told.
	Stored *stored.Publisher
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
// a fake in the unit tests. Every write must be idempotent, and writes
// of one row must take effect in the order of their write times.
type store interface {
	// WriteListens writes listens, all of the partition (user, day), as
	// one unlogged single-partition batch, each at its WriteTime.
	WriteListens(ctx context.Context, user string, day time.Time, listens []cassandra.RawListen) error
	// DeleteListen deletes the listen of d from the partition (user, day)
	// at d.WriteTime and returns how many rows it found (0: none, no error).
	DeleteListen(ctx context.Context, user string, day time.Time, d cassandra.RawDelete) (int, error)
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

// partitionGroup is what a batch writes to one Cassandra partition
// (user_id, day): its listens, one per identity, and its deletes, one per
// deleted listen (second and msid), each at the write time of its record
// (writeTimes). A delete takes back the listens of the batch before it
// (they are left out) and the row Cassandra holds (DeleteListen); a
// listen after it is written at a later time, so it stays whatever order
// the writes run in.
type partitionGroup struct {
	user    string
	day     time.Time
	listens []cassandra.RawListen
	deletes []deleteOp
}

// deleteOp is a delete of a group and whether it took back a listen of
// the batch (then it counts as applied even if Cassandra had no row).
type deleteOp struct {
	cassandra.RawDelete
	inBatch bool
}

// rejected is a record of the batch that is not written, and why.
type rejected struct {
	msg    *sarama.ConsumerMessage
	reason string
	err    error
}

// deleteTarget names the listen a delete takes back within a partition.
type deleteTarget struct {
	sec  int64
	msid string
}

// builder collects one group in record order.
type builder struct {
	g       *partitionGroup
	index   map[listen.Identity]int // listens[i] holds the identity, not taken back
	gone    []bool                  // listens[i] was taken back by a later delete
	msids   []string                // listen.MSID of listens[i], computed when a delete asks
	targets map[deleteTarget]int    // deletes[i] takes back the target
}

// add adds a listen: merged into the earlier copy of its identity (they
// are the same row), unless a delete took that copy back since.
func (b *builder) add(l listen.Listen, at int64) {
	id := l.Identity()
	if i, ok := b.index[id]; ok {
		b.g.listens[i] = cassandra.RawListen{Listen: merge(b.g.listens[i].Listen, l), WriteTime: at}
		return
	}
	b.index[id] = len(b.g.listens)
	b.g.listens = append(b.g.listens, cassandra.RawListen{Listen: l, WriteTime: at})
	b.gone = append(b.gone, false)
	b.msids = append(b.msids, "")
}

// remove adds a delete: the listens of the batch so far with its second
// and msid are left out, and the row is deleted at the delete's time (the
// latest delete of a listen in the batch: one tombstone covers the
// earlier ones).
func (b *builder) remove(d listen.Delete, at int64) {
	sec := d.PlayedAt.Unix()
	inBatch := false
	for i := range b.g.listens {
		l := b.g.listens[i].Listen
		if b.gone[i] || l.PlayedAt.Unix() != sec {
			continue
		}
		if b.msids[i] == "" {
			b.msids[i] = listen.MSID(l.ArtistName, l.TrackName)
		}
		if b.msids[i] == d.MSID {
			b.gone[i] = true
			delete(b.index, l.Identity())
			inBatch = true
		}
	}
	t := deleteTarget{sec, d.MSID}
	if i, ok := b.targets[t]; ok {
		op := &b.g.deletes[i]
		op.WriteTime, op.inBatch = at, op.inBatch || inBatch
		return
	}
	b.targets[t] = len(b.g.deletes)
	b.g.deletes = append(b.g.deletes, deleteOp{
		RawDelete: cassandra.RawDelete{PlayedAt: time.Unix(sec, 0).UTC(), MSID: d.MSID, WriteTime: at},
		inBatch:   inBatch,
	})
}

// done drops the listens taken back.
func (b *builder) done() {
	kept := b.g.listens[:0]
	for i, l := range b.g.listens {
		if !b.gone[i] {
			kept = append(kept, l)
		}
	}
	b.g.listens = kept
}

// minRecordTime is the earliest record timestamp taken as one; a record
// without a timestamp (zero, or Kafka's -1) is given the writer's clock.
var minRecordTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// writeTimeScale is the write times' units per millisecond (writeTimes).
const writeTimeScale = 1_000_000

// writeTimes are the Cassandra write times of the batch's records,
// strictly increasing in record order: the record's Kafka timestamp (ms,
// set when ingest produced it) × 10⁶ + its offset mod 10⁶, so that
// records of one millisecond follow their order and a redelivered record
// gets the same time again; at least the previous record's + 1 (a
// producer clock that stepped back). So a listen sent again after its
// delete is written after the tombstone, and a delete after its listen
// removes it, whatever order the CQL requests run in, whichever batches
// the two fall in, and however often a batch is written again. (Until
// stop 28 the factor was 1,000: two records of one millisecond whose
// offsets straddled a multiple of 1,000, in different batches, got times
// in the wrong order — ingest replaying a backlog emits hundreds of
// records a millisecond — and a delete's tombstone came out older than
// its listen: the service-kills chaos test once kept five deleted
// listens' rows. 10⁶ records of one partition in one millisecond do not
// happen, and the times stay within int64 until the year 2262.) The
// times also beat those of every row written before: gocql's client
// clock (µs) and the factor 1,000. A record written before the change
// and redelivered after it gets the new, larger time.
func writeTimes(batch []*sarama.ConsumerMessage, now time.Time) []int64 {
	out := make([]int64, len(batch))
	var prev int64
	for i, m := range batch {
		ts := m.Timestamp
		if ts.Before(minRecordTime) {
			ts = now
		}
		at := ts.UnixMilli()*writeTimeScale + m.Offset%writeTimeScale
		if i > 0 && at <= prev {
			at = prev + 1
		}
		out[i], prev = at, at
	}
	return out
}

// group decodes a batch and groups it by (user_id, day) in record order
// (see partitionGroup and builder). Records that do not decode, or whose
// key is not their listen's (or delete's) user_id|day, are returned apart:
// the aggregator dead-letters them without counting them, so raw_listens
// leaves them out too.
func group(batch []*sarama.ConsumerMessage, now time.Time) (groups []*partitionGroup, bad []rejected) {
	byKey := map[string]*builder{}
	var builders []*builder
	get := func(user string, at time.Time, key string) *builder {
		b := byKey[key]
		if b == nil {
			t := at.UTC()
			b = &builder{
				g:       &partitionGroup{user: user, day: time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)},
				index:   map[listen.Identity]int{},
				targets: map[deleteTarget]int{},
			}
			byKey[key] = b
			builders = append(builders, b)
		}
		return b
	}
	times := writeTimes(batch, now)
	for i, m := range batch {
		if listen.IsDelete(m.Value) {
			d, err := listen.DecodeDelete(m.Value)
			if err != nil {
				bad = append(bad, rejected{m, "undecodable", err})
				continue
			}
			if d.Key() != string(m.Key) {
				bad = append(bad, rejected{m, "wrong_key", fmt.Errorf("the delete belongs to %s", d.Key())})
				continue
			}
			get(d.UserID, d.PlayedAt, d.Key()).remove(d, times[i])
			continue
		}
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
		get(l.UserID, l.PlayedAt, l.Key()).add(l, times[i])
	}
	for _, b := range builders {
		b.done()
		groups = append(groups, b.g)
	}
	return groups, bad
}

// Write implements sink.Writer: when it returns nil, every decodable
// listen of batch is in raw_listens unless a later delete of the batch
// took it back, and every delete's listen is gone unless a later copy of
// it was sent again.
func (w *Writer) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	groups, bad := group(batch, time.Now())
	for _, r := range bad {
		skipped.WithLabelValues(r.reason).Inc()
		w.log.Warn("skipping a record of the valid topic", "reason", r.reason,
			"partition", r.msg.Partition, "offset", r.msg.Offset, "key", string(r.msg.Key), "err", r.err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.Concurrency)
	for _, pg := range groups {
		for _, d := range pg.deletes {
			g.Go(func() error { return w.deleteListen(gctx, pg, d) })
		}
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
	changed := map[string][]time.Time{}
	for _, pg := range groups {
		if len(pg.listens) > 0 || len(pg.deletes) > 0 {
			changed[pg.user] = append(changed[pg.user], pg.day)
		}
	}
	return w.cfg.Stored.Publish(ctx, changed)
}

// distinctUsers lists the users of the groups that write listens once
// each, in order (a delete adds no user to the search).
func distinctUsers(groups []*partitionGroup) []string {
	seen := map[string]bool{}
	var out []string
	for _, pg := range groups {
		if len(pg.listens) > 0 && !seen[pg.user] {
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

// deleteListen deletes the row of a delete and counts it.
func (w *Writer) deleteListen(ctx context.Context, pg *partitionGroup, d deleteOp) error {
	n, err := w.store.DeleteListen(ctx, pg.user, pg.day, d.RawDelete)
	if err != nil {
		return fmt.Errorf("raw_listens %s %s: delete %s at %s: %w", pg.user, pg.day.Format(listen.DayLayout), d.MSID,
			d.PlayedAt.Format(time.RFC3339), err)
	}
	if n > 0 || d.inBatch {
		deletes.WithLabelValues("applied").Inc()
	} else {
		deletes.WithLabelValues("not_found").Inc()
	}
	return nil
}

func (w *Writer) writeChunk(ctx context.Context, pg *partitionGroup, listens []cassandra.RawListen) error {
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
