package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/kafka"
)

// Writer stores records. It is the one thing a sink's user writes.
type Writer interface {
	// Write stores a batch: records of one partition, in offset order, never
	// empty. A nil error means every record is durably stored; the sink then
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
	// on autocommit of marked offsets (every second unless set). While a
	// batch is written, sarama keeps fetching the next records into its
	// channel buffer (ChannelBufferSize, default 256 per partition).
	Sarama *sarama.Config
}

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
	if c.BatchSize < 0 || c.Linger < 0 || c.OutageLimit < 0 {
		errs = append(errs, errors.New("sink: BatchSize, Linger and OutageLimit must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 500
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

	var group sarama.ConsumerGroup
	err := outage.Retry(ctx, s.kafka, s.cfg.Backoff, func(context.Context) error {
		g, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Group, &sc)
		if err != nil {
			return fmt.Errorf("consumer group: %w", err)
		}
		// The one commit rule of every topk consumer: only a prefix of
		// done messages is committed (batches are sequential here, so
		// this holds by construction; the wrapper makes it checked).
		group = kafka.OrderedCommits(g)
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
	s.log.Info("sink started", "batch_size", s.cfg.BatchSize, "linger", s.cfg.Linger)
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
}

func (s *Sink) refreshGauges() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var age time.Duration
	now := time.Now()
	for _, p := range s.parts {
		if l, ok := p.lag(); ok {
			lag.WithLabelValues(s.cfg.Name, p.label).Set(l)
		}
		p.mu.Lock()
		if !p.oldest.IsZero() {
			age = max(age, now.Sub(p.oldest))
		}
		p.mu.Unlock()
	}
	oldestUnwritten.WithLabelValues(s.cfg.Name).Set(age.Seconds())
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

// consume is one claimed partition: collect a batch (BatchSize records or
// Linger from its first record), write it until it succeeds, mark it, repeat.
// It returns nil when the claim is released or the session ends; a batch not
// yet written is then dropped unmarked. It returns an error when a batch has
// kept failing for longer than OutageLimit (also dropped unmarked).
func (s *Sink) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	log := s.log.With("partition", claim.Partition())
	p := s.track(claim, log)
	defer s.untrack(p)
	log.Debug("partition claimed", "initial_offset", claim.InitialOffset())
	ctx := sess.Context()
	msgs := claim.Messages()
	batch := make([]*sarama.ConsumerMessage, 0, s.cfg.BatchSize)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if len(batch) == 0 {
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
			batch = append(batch, m)
			full = len(batch) >= s.cfg.BatchSize
		case <-linger.C:
			full = len(batch) > 0
		}
		if !full {
			continue
		}
		linger.Stop()
		if ok, err := s.write(ctx, p, log, batch); !ok {
			return err
		}
		last := batch[len(batch)-1]
		p.mu.Lock()
		p.next, p.oldest = last.Offset+1, time.Time{}
		p.mu.Unlock()
		for _, m := range batch { // each message: kafka.OrderedCommits
			sess.MarkMessage(m, "")
		}
		if l, ok := p.lag(); ok {
			lag.WithLabelValues(s.cfg.Name, p.label).Set(l)
		}
		messagesWritten.WithLabelValues(s.cfg.Name).Add(float64(len(batch)))
		batchesWritten.WithLabelValues(s.cfg.Name).Inc()
		batchSize.WithLabelValues(s.cfg.Name).Observe(float64(len(batch)))
		batch = make([]*sarama.ConsumerMessage, 0, s.cfg.BatchSize)
	}
}

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
