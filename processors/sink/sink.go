package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/kafka"
)

// Writer stores records. It is the one thing a sink's user writes.
type Writer interface {
	// Write stores a batch: records of one partition, in offset order (a
	// Coalescer's: one record per key, see Coalescer), never empty. A nil error means every record is durably stored; the sink then
	// marks the batch's offsets. After an error the sink calls Write again
	// with the same batch, and after a restart or a rebalance the records
	// may come again: Write must be idempotent. It skips (and counts) records
	// it cannot ever store instead of failing on them, or their partition
	// stalls. ctx ends on shutdown and on rebalance: Write should then
	// return soon. Write must not keep the batch after it returns.
	Write(ctx context.Context, batch []*sarama.ConsumerMessage) error
}

// Config configures a sink.
type Config struct {
	// Name labels the sink's metrics and logs ("raw_writer", "flusher").
	Name string
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Group is the consumer group, already namespaced.
	Group string
	// Topic is the one topic consumed.
	Topic string
	// BatchSize is the most records per Write. Default 500.
	BatchSize int
	// MaxBatchBytes is the most bytes per Write: a batch is written once
	// the next record would take it past this many bytes of keys, values
	// and headers (RecordBytes), or once it reaches it. A record larger
	// than this is written alone, in a batch of one, never refused. It
	// bounds what a claimed partition holds while it collects or retries a
	// batch. Default DefaultMaxBatchBytes (TOPK_SINK_BATCH_BYTES).
	MaxBatchBytes int
	// ReadAhead is how many records sarama may hold per claimed partition
	// beyond the batch (its ChannelBufferSize): they are fetched while the
	// batch is written. With records of up to R bytes a claimed partition
	// holds at most MaxBatchBytes + (ReadAhead + 5)·R (kafka.OrderedCommits
	// passes records on through a buffer of 4), plus its part of the fetch
	// response being handed over (at most MaxBatchBytes, or one record
	// batch if larger). Default: the Sarama config's (sarama's 256).
	ReadAhead int
	// Linger is how long a batch may wait, from its first record, for more
	// records before it is written anyway. Default 200 ms. Longer means
	// bigger batches (and, for the flusher, more coalescing), shorter means
	// fresher data in the store.
	Linger time.Duration
	// Backoff spaces retries of a failed batch. Default DefaultBackoff.
	Backoff Backoff
	// OutageLimit is how long a partition's batch may keep failing, or the
	// consumer group keep failing to reach Kafka, before Run gives up and
	// returns an error (the service exits non-zero with it). Default
	// outage.DefaultLimit (5 minutes).
	OutageLimit time.Duration
	// Log receives the sink's logs. Default slog.Default().
	Log *slog.Logger
	// Sarama is the client configuration. Default kafka.NewSaramaConfig
	// (protocol ≥ 2.1, oldest offset for a new group); the sink always turns
	// on autocommit of marked offsets (every second unless set) and sets
	// ChannelBufferSize to ReadAhead when that is set.
	Sarama *sarama.Config
	// Registerer takes the topk_sink_* metrics (registered by New; every
	// sink registering on it shares them, labelled by Name); nil:
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// orderedBuffer is what kafka.OrderedCommits may hold per claimed partition
// beyond ReadAhead: a few records, as sink records may be user-day states of
// up to 512 KiB.
const orderedBuffer = 4

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("sink: Name is empty"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("sink: no Brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("sink: Group is empty"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("sink: Topic is empty"))
	}
	if c.BatchSize < 0 || c.MaxBatchBytes < 0 || c.ReadAhead < 0 || c.Linger < 0 || c.OutageLimit < 0 {
		errs = append(errs, errors.New("sink: BatchSize, MaxBatchBytes, ReadAhead, Linger and OutageLimit must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Linger == 0 {
		c.Linger = 200 * time.Millisecond
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.OutageLimit == 0 {
		c.OutageLimit = outage.DefaultLimit
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Sarama == nil {
		c.Sarama = kafka.NewSaramaConfig(c.Group)
	}
	return c
}

// A Coalescer is a Writer whose records are successive states of their
// keys, of which only the newest needs writing (the flusher: a user-day's
// state on the aggregator's changelog). The sink then keeps, while it
// collects a batch, one record per key: of two records with equal keys
// that Rank ranks, the one of higher rank, the later on a tie. The other
// is marked with the batch and never written, and MaxBatchBytes counts
// only the records kept. A batch a Coalescer writes holds each ranked key
// once, in the order of the key's first record in the batch.
type Coalescer interface {
	Writer
	// Rank ranks a record among the records of its key; ok false keeps
	// the record as it is (written, not coalesced: one the Writer will
	// skip and count, say). It is called once per record, as it is read.
	Rank(m *sarama.ConsumerMessage) (rank int64, ok bool)
}

// DefaultMaxBatchBytes is Config.MaxBatchBytes unless set: 4 MiB, the
// default of TOPK_SINK_BATCH_BYTES.
const DefaultMaxBatchBytes = 4 << 20

// RecordBytes is what a record counts against Config.MaxBatchBytes: its
// key, value and headers.
func RecordBytes(m *sarama.ConsumerMessage) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		if h != nil {
			n += len(h.Key) + len(h.Value)
		}
	}
	return n
}

// detach copies a record's key, value and headers out of the fetch
// response they are slices of.
type detach struct{}

func (detach) OnConsume(m *sarama.ConsumerMessage) {
	m.Key = bytes.Clone(m.Key)
	m.Value = bytes.Clone(m.Value)
	for i, h := range m.Headers {
		if h != nil {
			m.Headers[i] = &sarama.RecordHeader{Key: bytes.Clone(h.Key), Value: bytes.Clone(h.Value)}
		}
	}
}

// Sink consumes one topic with a consumer group and writes it through a
// Writer. Build it with New; Run it once.
type Sink struct {
	cfg   Config
	w     Writer
	log   *slog.Logger
	kafka *outage.Tracker // the consumer group reaching Kafka

	mu    sync.Mutex
	parts map[int32]*partition
	stop  context.CancelFunc // ends Run's consumption (set while Run runs)
	fatal error              // why Run gives up: a partition failing past the outage limit
}

// New checks cfg and returns a sink writing through w.
func New(cfg Config, w Writer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("sink: nil Writer")
	}
	if err := registerMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	cfg = cfg.withDefaults()
	log := cfg.Log.With("sink", cfg.Name, "group", cfg.Group, "topic", cfg.Topic)
	return &Sink{
		cfg:   cfg,
		w:     w,
		log:   log,
		kafka: &outage.Tracker{Name: "kafka", Limit: cfg.OutageLimit, Log: log},
		parts: map[int32]*partition{},
	}, nil
}

// giveUp records why Run must stop (the first reason wins) and ends its
// consumption.
func (s *Sink) giveUp(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == nil {
		s.fatal = err
	}
	if s.stop != nil {
		s.stop()
	}
}

func (s *Sink) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// Run consumes until ctx ends, then returns nil. A batch being written or
// retried when ctx ends is abandoned unmarked (it is written again after a
// restart: Writers are idempotent); every marked offset is committed before
// Run returns. Kafka being unreachable and a failing batch are retried with
// backoff; only when either lasts longer than OutageLimit does Run return
// an error (an *outage.LimitError naming Kafka or the partition, with the
// last error), the failing batch unmarked.
func (s *Sink) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.stop, s.fatal = cancel, nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stop = nil
		s.mu.Unlock()
	}()

	sc := *s.cfg.Sarama // a copy: the caller's config stays theirs
	sc.Consumer.Offsets.AutoCommit.Enable = true
	if sc.Consumer.Offsets.AutoCommit.Interval <= 0 {
		sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	}
	sc.Consumer.Return.Errors = true
	if s.cfg.ReadAhead > 0 {
		sc.ChannelBufferSize = s.cfg.ReadAhead
	}
	// A record's key and value are slices of the fetch response they came
	// in (up to Fetch.MaxBytes, 50 MiB by default): one record kept in a
	// batch would keep the whole response. Each record gets its own copy
	// as sarama hands it over, and a response is at most MaxBatchBytes, so
	// what a partition holds is what MaxBatchBytes and ReadAhead count.
	sc.Consumer.Interceptors = append(slices.Clip(sc.Consumer.Interceptors), detach{})
	sc.Consumer.Fetch.MaxBytes = min(sc.Consumer.Fetch.MaxBytes, int32(min(s.cfg.MaxBatchBytes, math.MaxInt32)))

	var group sarama.ConsumerGroup
	err := outage.Retry(ctx, s.kafka, s.cfg.Backoff, func(context.Context) error {
		g, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Group, &sc)
		if err != nil {
			return fmt.Errorf("consumer group: %w", err)
		}
		// The one commit rule of every topk consumer: only a prefix of
		// done messages is committed (batches are sequential here, so
		// this holds by construction; the wrapper makes it checked).
		group = kafka.OrderedCommits(g, orderedBuffer)
		return nil
	})
	if err != nil {
		if parent.Err() != nil {
			return nil
		}
		return fmt.Errorf("sink %s: %w", s.cfg.Name, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // runs last: the goroutines end once the group is closed and tctx cancelled
	defer func() {
		if err := group.Close(); err != nil {
			s.log.Warn("closing the consumer group", "err", err)
		}
	}()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		// One warning per burst: losing the broker fails every partition
		// at once; the rest of the burst (and everything while Kafka is
		// known to be down) is debug.
		var lastWarn time.Time
		for err := range group.Errors() {
			groupErrors.WithLabelValues(s.cfg.Name).Inc()
			if s.kafka.Err() != nil || time.Since(lastWarn) < 10*time.Second {
				s.log.Debug("consumer group error", "err", err)
			} else {
				lastWarn = time.Now()
				s.log.Warn("consumer group error (more within 10 s are logged at debug)", "err", err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
				s.refreshGauges()
			}
		}
	}()
	s.log.Info("sink started", "batch_size", s.cfg.BatchSize, "batch_bytes", s.cfg.MaxBatchBytes,
		"read_ahead", sc.ChannelBufferSize, "linger", s.cfg.Linger)
	h := handler{s}
	for {
		err := group.Consume(ctx, []string{s.cfg.Topic}, h)
		if fatal := s.fatalErr(); fatal != nil {
			return fatal
		}
		if ctx.Err() != nil {
			s.log.Info("sink stopped")
			return nil
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return fmt.Errorf("sink %s: %w", s.cfg.Name, err)
		}
		if err == nil { // a rebalance ended the session: join the next one
			continue
		}
		if lerr := s.kafka.Fail(fmt.Errorf("consumer group session: %w", err)); lerr != nil {
			return fmt.Errorf("sink %s: %w", s.cfg.Name, lerr)
		}
		d := s.kafka.Delay(s.cfg.Backoff)
		s.log.Debug("consumer group session failed; rejoining", "retry_in", d, "err", err)
		if !outage.Sleep(ctx, d) {
			if fatal := s.fatalErr(); fatal != nil {
				return fatal
			}
			return nil
		}
	}
}

// Check reports Kafka being unreachable and the partitions whose current
// batch keeps failing (a sink retrying is alive but not doing its work).
func (s *Sink) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if err := s.kafka.Err(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range s.parts {
		p.mu.Lock()
		if p.attempt > 0 {
			errs = append(errs, fmt.Errorf("partition %d: batch failed %d times, last: %w", p.id, p.attempt, p.lastErr))
		}
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

// partition is what the sink knows about one claimed partition: enough to
// compute its lag and the age of its oldest unwritten record.
type partition struct {
	id     int32
	label  string
	hwm    func() int64
	writes *outage.Tracker // this claim's writes: down while a batch keeps failing

	mu      sync.Mutex
	next    int64     // offset of the first unwritten record; -1 unknown yet
	oldest  time.Time // timestamp of the oldest record read and not written
	attempt int       // failed attempts of the current batch
	lastErr error

	bytes atomic.Int64 // RecordBytes of the batch being collected or written
}

func (p *partition) lag() (float64, bool) {
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	h := p.hwm()
	if next < 0 || h < 0 {
		return 0, false
	}
	return float64(max(h-next, 0)), true
}

func (s *Sink) track(claim sarama.ConsumerGroupClaim, log *slog.Logger) *partition {
	next := claim.InitialOffset()
	if next < 0 { // OffsetOldest/OffsetNewest: learnt from the first record
		next = -1
	}
	p := &partition{id: claim.Partition(), label: strconv.Itoa(int(claim.Partition())), hwm: claim.HighWaterMarkOffset, next: next,
		writes: &outage.Tracker{Name: "writes", Limit: s.cfg.OutageLimit, Log: log}}
	s.mu.Lock()
	s.parts[p.id] = p
	s.mu.Unlock()
	return p
}

func (s *Sink) untrack(p *partition) {
	s.mu.Lock()
	if s.parts[p.id] == p {
		delete(s.parts, p.id)
		lag.DeleteLabelValues(s.cfg.Name, p.label)
	}
	s.mu.Unlock()
	s.refreshGauges()
}

func (s *Sink) refreshGauges() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var age time.Duration
	var bytes int64
	now := time.Now()
	for _, p := range s.parts {
		if l, ok := p.lag(); ok {
			lag.WithLabelValues(s.cfg.Name, p.label).Set(l)
		}
		bytes += p.bytes.Load()
		p.mu.Lock()
		if !p.oldest.IsZero() {
			age = max(age, now.Sub(p.oldest))
		}
		p.mu.Unlock()
	}
	oldestUnwritten.WithLabelValues(s.cfg.Name).Set(age.Seconds())
	batchBytes.WithLabelValues(s.cfg.Name).Set(float64(bytes))
}

// handler is the sarama side of a sink.
type handler struct{ s *Sink }

// Setup: a session was joined, so Kafka answers.
func (h handler) Setup(sarama.ConsumerGroupSession) error {
	h.s.kafka.OK()
	return nil
}

// Cleanup commits what was marked; sarama commits once more when the
// session's offset manager closes.
func (h handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	return nil
}

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if err := h.s.consume(sess, claim); err != nil {
		h.s.giveUp(err)
	}
	return nil
}

// ConsumeClaim consumes one claimed partition as Run's consumer group
// does (see consume): it returns nil when the claim's messages end or
// sess's context does, and the error Run would end with when a batch has
// kept failing past OutageLimit. Tests drive a sink through it with a fake
// session and claim (package sinktest).
func (s *Sink) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	return s.consume(sess, claim)
}

// consume is one claimed partition: collect a batch (BatchSize records,
// MaxBatchBytes bytes, or Linger from its first record), write it until it
// succeeds, mark it, repeat. A record that would take the batch past
// MaxBatchBytes is held while the batch is written, then starts the next
// one; so a batch is at most MaxBatchBytes, or one record. For a
// Coalescer, the bytes are those of the records still to be written (see
// collecting.add). It returns nil when the claim is released or the
// session ends; a batch not yet written is then dropped unmarked. It
// returns an error when a batch has kept failing for longer than
// OutageLimit (also dropped unmarked).
func (s *Sink) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	log := s.log.With("partition", claim.Partition())
	p := s.track(claim, log)
	defer s.untrack(p)
	log.Debug("partition claimed", "initial_offset", claim.InitialOffset())
	ctx := sess.Context()
	msgs := claim.Messages()
	b := s.newBatch()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	// flush writes and marks the batch; false: consume must return err.
	flush := func() (bool, error) {
		linger.Stop()
		if ok, err := s.write(ctx, p, log, b.live); !ok {
			return false, err
		}
		last := b.all[len(b.all)-1]
		p.mu.Lock()
		p.next, p.oldest = last.Offset+1, time.Time{}
		p.mu.Unlock()
		if l, ok := p.lag(); ok {
			lag.WithLabelValues(s.cfg.Name, p.label).Set(l)
		}
		messagesWritten.WithLabelValues(s.cfg.Name).Add(float64(len(b.all)))
		batchesWritten.WithLabelValues(s.cfg.Name).Inc()
		batchSize.WithLabelValues(s.cfg.Name).Observe(float64(len(b.all)))
		batchSizeBytes.WithLabelValues(s.cfg.Name).Observe(float64(b.bytes))
		if n := len(b.all) - len(b.live); n > 0 {
			coalesced.WithLabelValues(s.cfg.Name).Add(float64(n))
		}
		// Marked after the metrics, so whoever sees the marks (tests) sees
		// the batch counted.
		for _, m := range b.all { // each message: kafka.OrderedCommits
			sess.MarkMessage(m, "")
		}
		// A new batch: the Writer may not keep the old one, but its arrays
		// must not pin records until the next batch overwrites them.
		b = s.newBatch()
		p.bytes.Store(0)
		return true, nil
	}
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			add := b.plan(m)
			if add.delta > 0 && b.liveAfter(add) > 1 && b.bytes+add.delta > s.cfg.MaxBatchBytes {
				// m does not fit: the batch so far is written first, and m
				// starts the next one.
				if ok, err := flush(); !ok {
					return err
				}
				add = placement{at: -1, ranked: add.ranked, rank: add.rank, delta: RecordBytes(m)}
			}
			if len(b.all) == 0 {
				linger.Reset(s.cfg.Linger)
				p.mu.Lock()
				if p.next < 0 {
					p.next = m.Offset
				}
				p.oldest = m.Timestamp
				if p.oldest.IsZero() {
					p.oldest = time.Now()
				}
				p.mu.Unlock()
			}
			b.add(m, add)
			p.bytes.Store(int64(b.bytes))
			full = len(b.all) >= s.cfg.BatchSize || b.bytes >= s.cfg.MaxBatchBytes
		case <-linger.C:
			full = len(b.all) > 0
		}
		if !full {
			continue
		}
		if ok, err := flush(); !ok {
			return err
		}
	}
}

// collecting is the batch a partition collects: every record read (all,
// marked once written) and those to write (live). They are the same unless
// the Writer is a Coalescer: then live keeps, of the records it ranks with
// equal keys, the one of highest rank (on a tie the later), in the place
// of its key's first record; the others are marked, never written, and
// their keys and values dropped at once.
type collecting struct {
	c     Coalescer // nil: no coalescing
	all   []*sarama.ConsumerMessage
	live  []*sarama.ConsumerMessage
	bytes int              // RecordBytes of live
	rank  []int64          // of live, when ranked
	index map[string]int32 // key → its place in live (ranked records only)
}

func (s *Sink) newBatch() *collecting {
	n := min(s.cfg.BatchSize, 1024)
	b := &collecting{all: make([]*sarama.ConsumerMessage, 0, n)}
	if c, ok := s.w.(Coalescer); ok {
		b.c, b.index, b.rank = c, map[string]int32{}, make([]int64, 0, n)
		b.live = make([]*sarama.ConsumerMessage, 0, n)
	}
	return b
}

// placement is where a record goes: appended to live (at -1), in place of
// live[at], or nowhere (drop: a record of its key in live outranks it);
// delta is what it adds to the batch's bytes.
type placement struct {
	at     int
	drop   bool
	ranked bool
	rank   int64
	delta  int
}

func (b *collecting) plan(m *sarama.ConsumerMessage) placement {
	size := RecordBytes(m)
	if b.c == nil {
		return placement{at: -1, delta: size}
	}
	rank, ok := b.c.Rank(m)
	if !ok {
		return placement{at: -1, delta: size}
	}
	i, seen := b.index[string(m.Key)]
	switch {
	case !seen:
		return placement{at: -1, ranked: true, rank: rank, delta: size}
	case rank < b.rank[i]:
		return placement{drop: true}
	default:
		return placement{at: int(i), ranked: true, rank: rank, delta: size - RecordBytes(b.live[i])}
	}
}

// liveAfter is how many records live would hold with pl.
func (b *collecting) liveAfter(pl placement) int {
	if pl.drop || pl.at >= 0 {
		return len(b.live)
	}
	return len(b.live) + 1
}

func (b *collecting) add(m *sarama.ConsumerMessage, pl placement) {
	b.all = append(b.all, m)
	b.bytes += pl.delta
	if b.c == nil {
		b.live = b.all
		return
	}
	switch {
	case pl.drop:
		forget(m)
	case pl.at >= 0:
		forget(b.live[pl.at])
		b.live[pl.at], b.rank[pl.at] = m, pl.rank
	default:
		if pl.ranked {
			b.index[string(m.Key)] = int32(len(b.live))
		}
		b.live = append(b.live, m)
		b.rank = append(b.rank, pl.rank)
	}
}

// forget drops what a record not to be written holds; what marking needs
// (topic, partition, offset) stays.
func forget(m *sarama.ConsumerMessage) { m.Key, m.Value, m.Headers = nil, nil, nil }

// write calls the Writer with batch until it succeeds (true), ctx ends
// (false, nil) or the batch has kept failing for longer than OutageLimit
// (false and the *outage.LimitError). It never skips a batch. The log says
// when the partition's writes start failing and when they work again; the
// attempts in between are debug lines.
func (s *Sink) write(ctx context.Context, p *partition, log *slog.Logger, batch []*sarama.ConsumerMessage) (bool, error) {
	first, last := batch[0].Offset, batch[len(batch)-1].Offset
	defer func() {
		p.mu.Lock()
		if p.attempt > 0 {
			retrying.WithLabelValues(s.cfg.Name).Dec()
		}
		p.attempt, p.lastErr = 0, nil
		p.mu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.w.Write(ctx, batch)
		if err == nil {
			writeSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(start).Seconds())
			if attempt > 1 {
				log.Debug("batch written after retries", "attempts", attempt, "first_offset", first, "last_offset", last)
			}
			p.writes.OK()
			return true, nil
		}
		if ctx.Err() != nil {
			log.Info("batch abandoned unmarked: session ended", "first_offset", first, "last_offset", last, "err", err)
			return false, nil
		}
		writeFailures.WithLabelValues(s.cfg.Name).Inc()
		p.mu.Lock()
		if p.attempt == 0 {
			retrying.WithLabelValues(s.cfg.Name).Inc()
		}
		p.attempt, p.lastErr = attempt, err
		p.mu.Unlock()
		if lerr := p.writes.Fail(err); lerr != nil {
			return false, fmt.Errorf("sink %s: partition %d (offsets %d–%d left unmarked): %w", s.cfg.Name, p.id, first, last, lerr)
		}
		d := p.writes.Delay(s.cfg.Backoff)
		log.Debug("write failed; retrying the same batch", "attempt", attempt, "retry_in", d,
			"first_offset", first, "last_offset", last, "records", len(batch), "err", err)
		if !outage.Sleep(ctx, d) {
			log.Info("batch abandoned unmarked: session ended", "first_offset", first, "last_offset", last)
			return false, nil
		}
	}
}
