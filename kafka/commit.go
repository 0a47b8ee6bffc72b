package kafka

import (
	"context"
	"sync"

	"github.com/IBM/sarama"
)

// OrderedCommits wraps a consumer group so that a partition's committed
// offset only ever advances to just past the longest prefix of delivered
// messages that are all marked done, whatever order the handler marks them
// in.
//
// Why: Goka marks a message once its own emits are acknowledged, and
// sarama's marks only move forward, so a later message marked first would
// commit past an earlier one whose emit is still in flight or failed — a
// crash or a restart then skips it for good. Behind this wrapper a mark is
// "this message is done", never "everything before it is done": a message
// that is never marked (its emit failed, the session ended first) holds its
// partition's commit where it is, and the partition restarts from it.
//
// The handler must mark every message it is given (MarkMessage, or
// MarkOffset with the message's offset + 1), one by one; a batch marked by
// its last message alone would hold the commit at the batch's first
// message. Marks of messages the wrapper did not deliver are ignored.
// Everything else (Close, Errors, Pause, …) is the wrapped group's.
//
// Each claim's messages pass through a forwarder that may hold buffer
// messages ahead of the handler, on top of sarama's own channel
// (ChannelBufferSize). For small messages and a fast handler a buffer
// saves handing over each message in lockstep: ingest ran at 140k
// listens/s with 64 and 105k with 4 (bench-ingest). For large ones it is
// memory: the flusher's messages are user-day states of up to 512 KiB,
// and 64 of them per partition were most of its memory while catching up.
func OrderedCommits(g sarama.ConsumerGroup, buffer int) sarama.ConsumerGroup {
	return orderedGroup{g, max(buffer, 0)}
}

type orderedGroup struct {
	sarama.ConsumerGroup
	buffer int
}

func (g orderedGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &orderedHandler{h: h, buffer: g.buffer, sessions: map[sarama.ConsumerGroupSession]*orderedSession{}})
}

// orderedHandler gives the wrapped handler one orderedSession per sarama
// session (Setup, ConsumeClaim and Cleanup of a session see the same one)
// and claims whose messages are recorded as delivered on their way.
type orderedHandler struct {
	h        sarama.ConsumerGroupHandler
	buffer   int
	mu       sync.Mutex
	sessions map[sarama.ConsumerGroupSession]*orderedSession
}

func (o *orderedHandler) session(s sarama.ConsumerGroupSession) *orderedSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	os, ok := o.sessions[s]
	if !ok {
		os = &orderedSession{ConsumerGroupSession: s, parts: map[topicPartition]*doneTracker{}}
		o.sessions[s] = os
	}
	return os
}

func (o *orderedHandler) Setup(s sarama.ConsumerGroupSession) error {
	return o.h.Setup(o.session(s))
}

func (o *orderedHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	err := o.h.Cleanup(o.session(s))
	o.mu.Lock()
	delete(o.sessions, s)
	o.mu.Unlock()
	return err
}

// ConsumeClaim hands the wrapped handler a claim whose messages pass
// through a tracker: each is recorded as delivered before the handler can
// see it, so its mark can never be reached before it is known.
func (o *orderedHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	os := o.session(s)
	tr := os.track(c.Topic(), c.Partition())
	out := make(chan *sarama.ConsumerMessage, o.buffer)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		in := c.Messages()
		for {
			select {
			case m, ok := <-in:
				if !ok {
					return
				}
				tr.deliver(m.Offset)
				select {
				case out <- m:
				case <-stop:
					return
				case <-s.Context().Done():
					return
				}
			case <-stop:
				return
			case <-s.Context().Done():
				return
			}
		}
	}()
	err := o.h.ConsumeClaim(os, orderedClaim{c, out})
	close(stop)
	<-done
	return err
}

type orderedClaim struct {
	sarama.ConsumerGroupClaim
	out chan *sarama.ConsumerMessage
}

func (c orderedClaim) Messages() <-chan *sarama.ConsumerMessage { return c.out }

type topicPartition struct {
	topic     string
	partition int32
}

// orderedSession turns marks of single messages into forward-only marks of
// each partition's done prefix.
type orderedSession struct {
	sarama.ConsumerGroupSession
	mu    sync.Mutex
	parts map[topicPartition]*doneTracker
}

func (s *orderedSession) track(topic string, partition int32) *doneTracker {
	s.mu.Lock()
	defer s.mu.Unlock()
	tp := topicPartition{topic, partition}
	t := &doneTracker{}
	s.parts[tp] = t
	return t
}

func (s *orderedSession) tracker(topic string, partition int32) *doneTracker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[topicPartition{topic, partition}]
}

// MarkOffset marks the message at offset-1 done (sarama's convention: the
// offset marked is the next one to read). The session's commit moves to
// the end of the done prefix if that grew.
func (s *orderedSession) MarkOffset(topic string, partition int32, offset int64, metadata string) {
	t := s.tracker(topic, partition)
	if t == nil {
		return
	}
	if next, ok := t.done(offset - 1); ok {
		s.ConsumerGroupSession.MarkOffset(topic, partition, next, metadata)
	}
}

// MarkMessage marks one message done.
func (s *orderedSession) MarkMessage(m *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(m.Topic, m.Partition, m.Offset+1, metadata)
}

// doneTracker is one claimed partition: the offsets delivered and not yet
// part of the done prefix, in delivery order, and which of them are done.
type doneTracker struct {
	mu      sync.Mutex
	pending []int64 // delivered, oldest first; pending[head:] is live
	head    int
	marked  map[int64]struct{} // done, but an earlier offset is not
}

func (t *doneTracker) deliver(offset int64) {
	t.mu.Lock()
	t.pending = append(t.pending, offset)
	t.mu.Unlock()
}

// done records offset as done. When the oldest pending offsets are now all
// done it returns the offset just past them (the new commit) and true.
func (t *doneTracker) done(offset int64) (next int64, advanced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.pending[t.head:]
	if len(live) == 0 || offset < live[0] || offset > live[len(live)-1] {
		return 0, false // not delivered here, or already in the prefix
	}
	if offset != live[0] {
		if t.marked == nil {
			t.marked = map[int64]struct{}{}
		}
		t.marked[offset] = struct{}{}
		return 0, false
	}
	next = offset + 1
	t.head++
	for t.head < len(t.pending) {
		o := t.pending[t.head]
		if _, ok := t.marked[o]; !ok {
			break
		}
		delete(t.marked, o)
		next = o + 1
		t.head++
	}
	// Reuse the slice once most of it is behind the head.
	if t.head > 1024 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending = t.pending[:n]
		t.head = 0
	}
	return next, true
}
