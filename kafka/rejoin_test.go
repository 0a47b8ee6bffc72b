package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeGroup's Consume returns the next result after holding the session
// for hold.
type fakeGroup struct {
	sarama.ConsumerGroup
	results []error
	calls   int
	hold    time.Duration
}

func (f *fakeGroup) Consume(ctx context.Context, _ []string, _ sarama.ConsumerGroupHandler) error {
	f.calls++
	time.Sleep(f.hold)
	if len(f.results) == 0 {
		<-ctx.Done()
		return nil
	}
	r := f.results[0]
	f.results = f.results[1:]
	return r
}

func TestRejoinAtOnce(t *testing.T) {
	boom := errors.New("boom")
	// Sessions ended by rebalances are joined again at once, inside
	// Consume; an error returns.
	f := &fakeGroup{results: []error{nil, nil, boom}, hold: minSession}
	start := time.Now()
	if err := RejoinAtOnce(f).Consume(context.Background(), nil, nil); !errors.Is(err, boom) || f.calls != 3 {
		t.Fatalf("err %v after %d calls, want boom after 3", err, f.calls)
	}
	if d := time.Since(start); d > 3*minSession+500*time.Millisecond {
		t.Fatalf("took %v: sessions of a second must be rejoined without a pause", d)
	}
	// Short sessions are spaced by minSession, and a cancelled context
	// ends Consume with nil.
	f = &fakeGroup{results: []error{nil, nil}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*minSession)
	defer cancel()
	start = time.Now()
	if err := RejoinAtOnce(f).Consume(ctx, nil, nil); err != nil {
		t.Fatalf("cancelled: %v", err)
	}
	if f.calls != 3 || time.Since(start) < 2*minSession {
		t.Fatalf("%d calls in %v: short sessions must be spaced", f.calls, time.Since(start))
	}
}
