// The Sink: New, Run (the consumer group, its retries and gauges), Check,
// and what it tracks of each claimed partition (lag, oldest unwritten
// record) through sarama's handler.

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

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/kafka"
)

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
