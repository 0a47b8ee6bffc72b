package kafka

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/IBM/sarama"
)

// fakeSession records the forward-only marks sarama would commit.
type fakeSession struct {
	sarama.ConsumerGroupSession // nil: calling anything else panics
	ctx                         context.Context
	mu                          sync.Mutex
	marks                       []int64
}

func (s *fakeSession) Context() context.Context { return s.ctx }
func (s *fakeSession) MarkOffset(_ string, _ int32, offset int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.marks); n > 0 && offset <= s.marks[n-1] {
		panic("a mark went backwards or repeated")
	}
	s.marks = append(s.marks, offset)
}

// committed is what sarama would commit: the last mark, or -1.
func (s *fakeSession) committed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.marks) == 0 {
		return -1
	}
	return s.marks[len(s.marks)-1]
}

type fakeClaim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c fakeClaim) Topic() string                            { return "t" }
func (c fakeClaim) Partition() int32                         { return 3 }
func (c fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// handlerFunc is a ConsumeClaim; Setup and Cleanup do nothing.
type handlerFunc func(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim) error

func (handlerFunc) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (handlerFunc) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (f handlerFunc) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	return f(s, c)
}

// run delivers offsets (gaps allowed, as compaction leaves them) to a
// handler that receives them all, then marks them with mark; it returns
// the committed offset.
func run(t *testing.T, offsets []int64, mark func(sess sarama.ConsumerGroupSession, got []*sarama.ConsumerMessage)) int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeSession{ctx: ctx}
	in := make(chan *sarama.ConsumerMessage, len(offsets))
	for _, o := range offsets {
		in <- &sarama.ConsumerMessage{Topic: "t", Partition: 3, Offset: o}
	}
	close(in)
	oh := &orderedHandler{sessions: map[sarama.ConsumerGroupSession]*orderedSession{}}
	oh.h = handlerFunc(func(sess sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
		var got []*sarama.ConsumerMessage
		for m := range c.Messages() {
			got = append(got, m)
		}
		mark(sess, got)
		return nil
	})
	if err := oh.Setup(fs); err != nil {
		t.Fatal(err)
	}
	if err := oh.ConsumeClaim(fs, fakeClaim{msgs: in}); err != nil {
		t.Fatal(err)
	}
	if err := oh.Cleanup(fs); err != nil {
		t.Fatal(err)
	}
	return fs.committed()
}

func TestOrderedCommitsInOrder(t *testing.T) {
	got := run(t, []int64{10, 11, 12, 15, 16}, func(s sarama.ConsumerGroupSession, ms []*sarama.ConsumerMessage) {
		for _, m := range ms {
			s.MarkMessage(m, "")
		}
	})
	if got != 17 {
		t.Fatalf("committed %d, want 17", got)
	}
}

func TestOrderedCommitsAcksOutOfOrder(t *testing.T) {
	for seed := range uint64(200) {
		offsets := []int64{0, 1, 2, 5, 6, 7, 9, 20, 21, 22}
		r := rand.New(rand.NewPCG(seed, 1))
		got := run(t, offsets, func(s sarama.ConsumerGroupSession, ms []*sarama.ConsumerMessage) {
			r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			for _, m := range ms {
				s.MarkOffset(m.Topic, m.Partition, m.Offset+1, "")
			}
		})
		if got != 23 {
			t.Fatalf("seed %d: committed %d, want 23", seed, got)
		}
	}
}

// A message whose emit failed is never marked: whatever is marked after
// it, the commit stays at it, so the partition restarts from it.
func TestOrderedCommitsFailureInTheMiddle(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		offsets := []int64{100, 101, 102, 103, 104, 105, 106, 107}
		failed := offsets[r.IntN(len(offsets))]
		got := run(t, offsets, func(s sarama.ConsumerGroupSession, ms []*sarama.ConsumerMessage) {
			r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			for _, m := range ms {
				if m.Offset != failed {
					s.MarkMessage(m, "")
				}
			}
		})
		want := failed
		if failed == 100 {
			want = -1 // nothing done before it: no commit at all
		}
		if got != want {
			t.Fatalf("seed %d: failed %d, committed %d, want %d", seed, failed, got, want)
		}
	}
}

// A revoke in the middle: the session ends with messages delivered and
// not done; the commit stays before the first of them, and late marks on
// the ended session change nothing in the next one.
func TestOrderedCommitsRevokeInTheMiddle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fs := &fakeSession{ctx: ctx}
	in := make(chan *sarama.ConsumerMessage, 10)
	for o := int64(0); o < 10; o++ {
		in <- &sarama.ConsumerMessage{Topic: "t", Partition: 3, Offset: o}
	}
	oh := &orderedHandler{sessions: map[sarama.ConsumerGroupSession]*orderedSession{}}
	var kept []*sarama.ConsumerMessage
	var old sarama.ConsumerGroupSession
	oh.h = handlerFunc(func(sess sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
		old = sess
		for range 6 {
			kept = append(kept, <-c.Messages())
		}
		sess.MarkMessage(kept[0], "")
		sess.MarkMessage(kept[1], "")
		sess.MarkMessage(kept[4], "") // 2 and 3 still in flight
		cancel()                      // the revoke
		<-sess.Context().Done()
		return nil
	})
	_ = oh.Setup(fs)
	_ = oh.ConsumeClaim(fs, fakeClaim{msgs: in})
	_ = oh.Cleanup(fs)
	if got := fs.committed(); got != 2 {
		t.Fatalf("committed %d after the revoke, want 2", got)
	}
	// In-flight emits finish after the session ended: they reach the old
	// session only, which sarama has closed.
	old.MarkMessage(kept[2], "")
	old.MarkMessage(kept[3], "")
	if _, ok := oh.sessions[fs]; ok {
		t.Fatal("the ended session is still tracked")
	}
}

func TestOrderedCommitsIgnoresUnknownMarks(t *testing.T) {
	got := run(t, []int64{5, 6, 7}, func(s sarama.ConsumerGroupSession, ms []*sarama.ConsumerMessage) {
		s.MarkOffset("t", 3, 100, "") // never delivered
		s.MarkOffset("t", 9, 6, "")   // another partition
		s.MarkMessage(ms[1], "")
		s.MarkMessage(ms[1], "") // twice
		s.MarkMessage(ms[0], "")
		s.MarkMessage(ms[0], "") // already in the prefix
	})
	if got != 7 {
		t.Fatalf("committed %d, want 7", got)
	}
}

func TestDoneTrackerReusesItsSlice(t *testing.T) {
	var tr doneTracker
	for o := int64(0); o < 100000; o++ {
		tr.deliver(o)
		if next, ok := tr.done(o); !ok || next != o+1 {
			t.Fatalf("offset %d: next %d %v", o, next, ok)
		}
	}
	if cap(tr.pending) > 4096 {
		t.Fatalf("pending grew to %d", cap(tr.pending))
	}
}
