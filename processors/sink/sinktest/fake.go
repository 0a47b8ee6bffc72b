package sinktest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// Session is a sarama.ConsumerGroupSession without Kafka: it records the
// offsets of the messages marked, in order. With a Claim it drives a sink
// in unit tests (sink.Sink.ConsumeClaim).
type Session struct {
	ctx    context.Context
	mu     sync.Mutex
	marked []int64
}

// NewSession is a session that ends when ctx does.
func NewSession(ctx context.Context) *Session { return &Session{ctx: ctx} }

func (s *Session) Claims() map[string][]int32 { return nil }
func (s *Session) MemberID() string           { return "m" }
func (s *Session) GenerationID() int32        { return 1 }
func (s *Session) MarkOffset(string, int32, int64, string) {
	panic("the sink marks messages, not offsets")
}
func (s *Session) Commit()                                  {}
func (s *Session) ResetOffset(string, int32, int64, string) { panic("no reset") }
func (s *Session) Context() context.Context                 { return s.ctx }

// MarkMessage records m's offset.
func (s *Session) MarkMessage(m *sarama.ConsumerMessage, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marked = append(s.marked, m.Offset)
}

// Marked returns the offsets marked so far, in order.
func (s *Session) Marked() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.marked...)
}

// Claim is a sarama.ConsumerGroupClaim the test feeds: send to Msgs (close
// it to end the claim); HWM is the high-water mark it reports.
type Claim struct {
	Part int32
	Msgs chan *sarama.ConsumerMessage
	HWM  atomic.Int64
}

// NewClaim is a claim of partition from the oldest offset, its channel
// buffering buf messages.
func NewClaim(partition int32, buf int, hwm int64) *Claim {
	c := &Claim{Part: partition, Msgs: make(chan *sarama.ConsumerMessage, buf)}
	c.HWM.Store(hwm)
	return c
}

func (c *Claim) Topic() string                            { return "t" }
func (c *Claim) Partition() int32                         { return c.Part }
func (c *Claim) InitialOffset() int64                     { return sarama.OffsetOldest }
func (c *Claim) HighWaterMarkOffset() int64               { return c.HWM.Load() }
func (c *Claim) Messages() <-chan *sarama.ConsumerMessage { return c.Msgs }
