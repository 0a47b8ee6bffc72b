package stored

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
)

// Old reports whether day (a UTC midnight) is before yesterday at now: a
// change to it is late data the api may hold cached answers of.
func Old(day, now time.Time) bool {
	y, m, d := now.UTC().AddDate(0, 0, -1).Date()
	return day.Before(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

var notices = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "topk_stored_notices_total",
	Help: "Notices published to the stored topic (a user's older days changed in Cassandra), by writer.",
}, []string{"writer"})

// Publisher sends notices; the flusher and the raw writer each hold one.
// It connects on the first notice, so a writer starts with Kafka down.
type Publisher struct {
	brokers []string
	topic   string
	spec    kafka.TopicSpec
	repl    int16
	writer  string
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	producer sarama.SyncProducer
	ensured  bool
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Brokers []string
	// Topic is the stored topic (kafka.StoredTopic: it is created if
	// missing, with Replication: -1 the brokers' default).
	Topic       kafka.TopicSpec
	Replication int16
	// Writer names the writer in metrics ("flusher", "raw-writer").
	Writer string
	// Registerer takes topk_stored_notices_total (nil: none registered).
	Registerer prometheus.Registerer
	Now        func() time.Time
	Log        *slog.Logger
}

// NewPublisher makes a publisher; it does no I/O.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(notices); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Replication == 0 {
		cfg.Replication = -1
	}
	return &Publisher{brokers: cfg.Brokers, topic: cfg.Topic.Name, spec: cfg.Topic, repl: cfg.Replication, writer: cfg.Writer, now: cfg.Now, log: cfg.Log}, nil
}

// Publish sends a notice for every user with a day before yesterday in
// days (user → UTC midnights) and returns when Kafka acknowledged them
// all, or the error: the caller's write then fails and is done again.
func (p *Publisher) Publish(ctx context.Context, days map[string][]time.Time) error {
	if p == nil {
		return nil
	}
	now := p.now()
	var msgs []*sarama.ProducerMessage
	for user, ds := range days {
		var old []string
		for _, d := range ds {
			if Old(d, now) {
				old = append(old, d.UTC().Format(listen.DayLayout))
			}
		}
		if len(old) == 0 {
			continue
		}
		sort.Strings(old)
		old = compactStrings(old)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: p.topic, Key: sarama.StringEncoder(user), Value: sarama.StringEncoder(strings.Join(old, ","))})
	}
	if len(msgs) == 0 {
		return nil
	}
	prod, err := p.connect(ctx)
	if err != nil {
		return err
	}
	if err := prod.SendMessages(msgs); err != nil {
		p.drop()
		return fmt.Errorf("stored notices: %w", err)
	}
	notices.WithLabelValues(p.writer).Add(float64(len(msgs)))
	return ctx.Err()
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// connect makes the producer (and the topic, once) on first use.
func (p *Publisher) connect(ctx context.Context) (sarama.SyncProducer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		return p.producer, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := kafka.NewSaramaConfig("topk-" + p.writer + "-stored")
	if !p.ensured {
		admin, err := sarama.NewClusterAdmin(p.brokers, cfg)
		if err != nil {
			return nil, fmt.Errorf("stored topic: kafka %v: %w", p.brokers, err)
		}
		err = kafka.EnsureTopics(ctx, admin, p.repl, []kafka.TopicSpec{p.spec}, p.log)
		admin.Close()
		if err != nil {
			return nil, fmt.Errorf("stored topic: %w", err)
		}
		p.ensured = true
	}
	prod, err := sarama.NewSyncProducer(p.brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("stored notices: kafka %v: %w", p.brokers, err)
	}
	p.producer = prod
	return prod, nil
}

// drop closes the producer after an error: the next notice connects
// again.
func (p *Publisher) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		p.producer.Close()
		p.producer = nil
	}
}

// Close closes the producer.
func (p *Publisher) Close() error {
	if p == nil {
		return nil
	}
	p.drop()
	return nil
}
