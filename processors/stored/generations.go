package stored

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/kafka"
)

// Generations is the api's record of the stored topic: per user, the
// position of the latest notice, for charts.Config.Generations. It reads
// the notices of the last Horizon when it starts, then every new one.
type Generations struct {
	cfg GenerationsConfig

	mu    sync.RWMutex
	users map[string]generation
	read  map[int32]int64 // per partition, the offset after the last notice read

	ready atomic.Bool
}

type generation struct {
	gen int64
	at  time.Time // the notice's time, for pruning
}

// GenerationsConfig configures Generations.
type GenerationsConfig struct {
	Brokers []string
	Topic   string
	// Horizon is how far back the notices are read at start, and how long
	// a user's generation is kept after its last notice: at least the
	// answers' cache TTL (an answer cached before a notice is expired
	// when the generation is forgotten). Default 2 minutes.
	Horizon time.Duration
	// Sarama overrides the client settings (default kafka.NewSaramaConfig).
	Sarama *sarama.Config
	Log    *slog.Logger
	Now    func() time.Time
}

// NewGenerations makes the record; Run fills it.
func NewGenerations(cfg GenerationsConfig) *Generations {
	if cfg.Horizon <= 0 {
		cfg.Horizon = 2 * time.Minute
	}
	if cfg.Sarama == nil {
		cfg.Sarama = kafka.NewSaramaConfig("topk-api-stored")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Generations{cfg: cfg, users: map[string]generation{}, read: map[int32]int64{}}
}

// Generation is the user's latest notice read: its partition and offset
// (partition<<48 | offset+1: no two notices share it), 0 when none was
// read within the horizon.
func (g *Generations) Generation(user string) int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.users[user].gen
}

// Users is how many users have a generation.
func (g *Generations) Users() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.users)
}

// ReadTo is the offset after the last notice read in partition p (0
// when none was): the record holds every notice before it.
func (g *Generations) ReadTo(p int32) int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.read[p]
}

// Check is its readiness: the notices present at start are read.
func (g *Generations) Check(context.Context) error {
	if !g.ready.Load() {
		return errors.New("reading the stored topic's recent notices")
	}
	return nil
}

// Run reads the topic until ctx ends, connecting again after an error
// (Kafka down, the topic not created yet).
func (g *Generations) Run(ctx context.Context) error {
	prune := time.NewTicker(g.cfg.Horizon / 4)
	defer prune.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-prune.C:
				g.prune()
			}
		}
	}()
	for {
		err := g.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		g.cfg.Log.Warn("reading the stored topic", "topic", g.cfg.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// prune forgets the users whose last notice is older than the horizon.
func (g *Generations) prune() {
	cut := g.cfg.Now().Add(-g.cfg.Horizon)
	g.mu.Lock()
	defer g.mu.Unlock()
	for u, x := range g.users {
		if x.at.Before(cut) {
			delete(g.users, u)
		}
	}
}

func (g *Generations) runOnce(ctx context.Context) error {
	client, err := sarama.NewClient(g.cfg.Brokers, g.cfg.Sarama)
	if err != nil {
		return err
	}
	defer client.Close()
	parts, err := client.Partitions(g.cfg.Topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", g.cfg.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	since := g.cfg.Now().Add(-g.cfg.Horizon).UnixMilli()
	errs := make(chan error, len(parts))
	var caughtUp sync.WaitGroup
	for _, p := range parts {
		start, err := client.GetOffset(g.cfg.Topic, p, since)
		if err != nil {
			return fmt.Errorf("offset of %s/%d at %d: %w", g.cfg.Topic, p, since, err)
		}
		end, err := client.GetOffset(g.cfg.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		if start < 0 { // no notice since: from the end
			start = end
		}
		pc, err := consumer.ConsumePartition(g.cfg.Topic, p, start)
		if err != nil {
			return fmt.Errorf("consume %s/%d: %w", g.cfg.Topic, p, err)
		}
		caughtUp.Add(1)
		go func() {
			defer pc.AsyncClose()
			done := start >= end
			if done {
				caughtUp.Done()
			}
			for {
				select {
				case <-ctx.Done():
					if !done {
						caughtUp.Done()
					}
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					g.note(m)
					if !done && m.Offset+1 >= end {
						done = true
						caughtUp.Done()
					}
				case err, ok := <-pc.Errors():
					if ok {
						if !done {
							caughtUp.Done()
						}
						errs <- err
						return
					}
				}
			}
		}()
	}
	go func() {
		caughtUp.Wait()
		if ctx.Err() == nil {
			g.ready.Store(true)
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// note records a notice.
func (g *Generations) note(m *sarama.ConsumerMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.read[m.Partition] = m.Offset + 1
	if len(m.Key) == 0 {
		return
	}
	at := m.Timestamp
	if at.IsZero() {
		at = g.cfg.Now()
	}
	// The latest notice read wins: any new one gives a generation no key
	// had before (another offset), which is all the keys need.
	g.users[string(m.Key)] = generation{gen: int64(m.Partition)<<48 | (m.Offset + 1), at: at}
}
