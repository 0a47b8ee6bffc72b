package charts

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/topk-charts/topk"
)

// Cost counts the Cassandra reads one request caused: partitions of
// items, day lists, pages of listens, searches. The api charges a client
// for them (a Cassandra-only range costs that client more of its rate
// limit than a chart the view serves). Reads of a fill several requests
// share count for the request that started it; answers from the view or
// the cache count none.
type Cost struct {
	reads atomic.Int64
	// Admit, when set, is asked before a tally's partitions are read
	// (reads: how many): an error refuses them, and the query fails with
	// it (wrapped with ErrOverBudget) before anything is read — the
	// api's rate limiter takes what the reads will cost up front, so a
	// client's burst of expensive ranges cannot all start at once.
	Admit func(reads int) error
}

// ErrOverBudget wraps a Cost.Admit refusal: the query was not run.
var ErrOverBudget = errors.New("over the client's budget")

// admit asks ctx's Cost (if any) to admit n more reads.
func admit(ctx context.Context, n int) error {
	c, ok := ctx.Value(costKey{}).(*Cost)
	if !ok || c.Admit == nil || n <= 0 {
		return nil
	}
	if err := c.Admit(n); err != nil {
		return fmt.Errorf("%w: %w", ErrOverBudget, err)
	}
	return nil
}

type costKey struct{}

// WithCost returns ctx carrying a new Cost, which the service's store
// reads under it add to.
func WithCost(ctx context.Context) (context.Context, *Cost) {
	c := &Cost{}
	return context.WithValue(ctx, costKey{}, c), c
}

// Reads is the number of Cassandra reads counted so far.
func (c *Cost) Reads() int64 { return c.reads.Load() }

func addReads(ctx context.Context, n int) {
	if c, ok := ctx.Value(costKey{}).(*Cost); ok {
		c.reads.Add(int64(n))
	}
}

// counted is the service's Store: every read adds one to the context's
// Cost and runs holding one of reads (nil: no bound). The fills' slots
// (Config.MaxCassandra) bound how many answers are read at once; each
// reads up to 16 partitions at a time, and decoding them is CPU work in
// this process: 8 fills of 16 reads were 128 goroutines decoding on two
// cores, and every view-served request queued behind them (bench-api:
// the Go scheduler's runnable waits reached 134 ms). reads bounds the
// partitions read and decoded at once in the whole process.
type counted struct {
	Store
	reads chan struct{}
}

// read accounts for one store read under ctx and waits for a free read;
// the function returned gives it back. When ctx ends first it returns at
// once, and the store's call fails with ctx's error.
func (s counted) read(ctx context.Context) (done func()) {
	addReads(ctx, 1)
	if s.reads == nil {
		return func() {}
	}
	select {
	case s.reads <- struct{}{}:
		return func() { <-s.reads }
	case <-ctx.Done():
		return func() {}
	}
}

func (s counted) FirstDay(ctx context.Context, user string) (time.Time, bool, error) {
	defer s.read(ctx)()
	return s.Store.FirstDay(ctx, user)
}

func (s counted) UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	defer s.read(ctx)()
	return s.Store.UserDays(ctx, user, from, to)
}

func (s counted) Items(ctx context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error) {
	defer s.read(ctx)()
	return s.Store.Items(ctx, p, user, e)
}

func (s counted) Listens(ctx context.Context, user string, day time.Time, after *topk.ListenPos, limit int) ([]topk.Listen, error) {
	defer s.read(ctx)()
	return s.Store.Listens(ctx, user, day, after, limit)
}

func (s counted) SearchUsers(ctx context.Context, prefix string, limit int) ([]string, error) {
	defer s.read(ctx)()
	return s.Store.SearchUsers(ctx, prefix, limit)
}
