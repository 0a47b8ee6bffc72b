package flusher

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/aggregator"
)

// gatedStore holds the user_days writes of a user until its gate is
// closed: that user's flush is "still writing its days".
type gatedStore struct {
	*memStore
	gates map[string]chan struct{}
	gate  chan struct{} // the first user's
}

func (g *gatedStore) WriteUserDays(ctx context.Context, user string, days []topk.DayTotal) error {
	if gate := g.gates[user]; gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.memStore.WriteUserDays(ctx, user, days)
}

// rollerFlusher is a flusher on a store gating gateUsers whose rounds wait
// up to linger, with a 1 s flush interval.
func rollerFlusher(linger time.Duration, gateUsers ...string) (*Flusher, *gatedStore) {
	st := &gatedStore{memStore: newMemStore(1), gates: map[string]chan struct{}{}}
	for _, u := range gateUsers {
		st.gates[u] = make(chan struct{})
	}
	if len(gateUsers) > 0 {
		st.gate = st.gates[gateUsers[0]]
	}
	cfg := quietConfig()
	cfg.FlushInterval, cfg.RollupLinger = time.Second, linger
	return newFlusher(cfg, st), st
}

func partRec(p int32, key string, d *aggregator.Day) *sarama.ConsumerMessage {
	m := recOf(key, d)
	m.Partition = p
	return m
}

// writeAsync runs a Write and reports its error and how long it took.
type result struct {
	err  error
	took time.Duration
}

func writeAsync(f *Flusher, recs ...*sarama.ConsumerMessage) chan result {
	c := make(chan result, 1)
	go func() {
		start := time.Now()
		err := f.Write(context.Background(), recs)
		c <- result{err, time.Since(start)}
	}()
	return c
}

func (r result) check(t *testing.T, what string, atMost time.Duration) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	if r.took > atMost {
		t.Errorf("%s took %v, want at most %v", what, r.took, atMost)
	}
}

// A partition writing its days when another submits is waited for: one
// round serves both, and each (user, year) is recomputed once.
func TestRoundWaitsForAPartitionWritingItsDays(t *testing.T) {
	f, st := rollerFlusher(time.Second, "ben")
	r0, w0 := testutil.ToFloat64(rounds), testutil.ToFloat64(rollupsWritten.WithLabelValues("year"))
	slow := writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(2)), partRec(1, "ann|2026-03-02", dayWith(1)))
	time.Sleep(20 * time.Millisecond) // ben's flush is writing (held at user_days)
	fast := writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-fast:
		t.Fatalf("partition 0's flush returned (%v) while partition 1 was still writing its days", r.err)
	default:
	}
	close(st.gate)
	(<-fast).check(t, "partition 0's flush", 900*time.Millisecond)
	(<-slow).check(t, "partition 1's flush", 900*time.Millisecond)
	if n := testutil.ToFloat64(rounds) - r0; n != 1 {
		t.Errorf("%v rounds, want 1", n)
	}
	if n := testutil.ToFloat64(rollupsWritten.WithLabelValues("year")) - w0; n != 2 {
		t.Errorf("%v year rollups written, want 2 (ann's and ben's 2026, once each)", n)
	}
	if got := st.total(yearItems, "ann", 2026); got != 4 {
		t.Errorf("ann's year total %d, want 4", got)
	}
}

// The wait is bounded: a partition that keeps writing its days longer than
// the linger does not hold the others' flushes beyond it.
func TestRoundWaitIsBoundedByTheLinger(t *testing.T) {
	const linger = 150 * time.Millisecond
	f, st := rollerFlusher(linger, "ben")
	slow := writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(2)))
	time.Sleep(20 * time.Millisecond)
	fast := writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))
	var r result
	select {
	case r = <-fast:
	case <-time.After(5 * time.Second):
		t.Fatal("partition 0's flush waited for partition 1's days beyond the linger")
	}
	r.check(t, "partition 0's flush", linger+700*time.Millisecond)
	if r.took < linger {
		t.Errorf("partition 0's flush took %v: the round did not wait (linger %v) for partition 1, writing", r.took, linger)
	}
	close(st.gate)
	(<-slow).check(t, "partition 1's flush", 2*time.Second)
	if got := st.total(yearItems, "ben", 2026); got != 2 {
		t.Errorf("ben's year total %d, want 2", got)
	}
}

// While catching up, partitions finish writing their days seconds apart:
// a round waits longer than the linger when its own flushes took longer
// than that to write their days, up to as long as they took.
func TestRoundWaitsAsLongAsItsFlushesTookToWriteTheirDays(t *testing.T) {
	const linger = 100 * time.Millisecond
	f, st := rollerFlusher(linger, "ann", "ben")
	r0 := testutil.ToFloat64(rounds)
	first := writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))
	late := writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(2)))
	time.Sleep(400 * time.Millisecond) // partition 0 writes its days for 400 ms
	close(st.gates["ann"])
	time.Sleep(200 * time.Millisecond) // partition 1, 200 ms more (past the linger)
	close(st.gates["ben"])
	(<-first).check(t, "partition 0's flush", time.Second)
	(<-late).check(t, "partition 1's flush", time.Second)
	if n := testutil.ToFloat64(rounds) - r0; n != 1 {
		t.Errorf("%v rounds, want 1", n)
	}

	// bounded: a partition still writing after that long is not waited for
	f, st = rollerFlusher(linger, "ann", "ben")
	first = writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))
	late = writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(2)))
	time.Sleep(300 * time.Millisecond)
	close(st.gates["ann"])
	var r result
	select {
	case r = <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("partition 0's flush waited for partition 1's days beyond as long as it wrote its own")
	}
	r.check(t, "partition 0's flush", 300*time.Millisecond+300*time.Millisecond+500*time.Millisecond)
	if r.took < 2*300*time.Millisecond {
		t.Errorf("partition 0's flush took %v, want at least twice its 300 ms of day writes", r.took)
	}
	close(st.gates["ben"])
	(<-late).check(t, "partition 1's flush", 2*time.Second)
}

// A partition collecting a batch while catching up (its last one was full)
// is waited for; one whose batches go out on their timer is not, until
// its timer is about to fire; nor is one with nothing to write.
func TestRoundWaitsForAFillingPartitionNotATrickle(t *testing.T) {
	f, _ := rollerFlusher(time.Second)
	r0 := testutil.ToFloat64(rounds)
	f.Rank(partRec(2, "cat|2026-03-01", dayWith(1))) // partition 2 starts a batch; never written yet: filling
	fast := writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))
	time.Sleep(60 * time.Millisecond)
	select {
	case r := <-fast:
		t.Fatalf("partition 0's flush returned (%v) while partition 2 was filling a batch", r.err)
	default:
	}
	writeAsync(f, partRec(2, "cat|2026-03-01", dayWith(1)))
	(<-fast).check(t, "partition 0's flush", 900*time.Millisecond)
	if n := testutil.ToFloat64(rounds) - r0; n != 1 {
		t.Errorf("%v rounds, want 1", n)
	}

	// Partition 3's last batch went out on its timer (a tenth early or
	// less): it trickles.
	f.Rank(partRec(3, "dan|2026-03-01", dayWith(1)))
	f.roll.mu.Lock()
	f.roll.parts[3].batchFrom = time.Now().Add(-950 * time.Millisecond)
	f.roll.mu.Unlock()
	if err := f.Write(context.Background(), []*sarama.ConsumerMessage{partRec(3, "dan|2026-03-01", dayWith(1))}); err != nil {
		t.Fatal(err)
	}
	if f.roll.parts[3].filling {
		t.Fatal("a batch written on its timer counted as full")
	}
	f.Rank(partRec(3, "dan|2026-03-02", dayWith(1))) // its next batch, due in a second
	time.Sleep(150 * time.Millisecond)               // partitions 0 and 2, released, start nothing
	(<-writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(4)))).check(t, "partition 0's flush beside a trickling partition", 600*time.Millisecond)

	// Within grace (a tenth of the linger) of its timer, it is waited for.
	f.roll.mu.Lock()
	f.roll.parts[3].batchFrom = time.Now().Add(-950 * time.Millisecond)
	f.roll.mu.Unlock()
	fast = writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(5)))
	time.Sleep(60 * time.Millisecond)
	select {
	case r := <-fast:
		t.Fatalf("partition 0's flush returned (%v) while partition 3's timer was about to fire", r.err)
	default:
	}
	if err := f.Write(context.Background(), []*sarama.ConsumerMessage{partRec(3, "dan|2026-03-02", dayWith(1))}); err != nil {
		t.Fatal(err)
	}
	(<-fast).check(t, "partition 0's flush", 900*time.Millisecond)
}

// A partition a round released is expected to start its next batch at
// once; when it does not (nothing to read), the next round waits for it
// no longer than grace.
func TestReleasedPartitionWithNothingToWriteIsWaitedForBriefly(t *testing.T) {
	f, _ := rollerFlusher(time.Second)
	a := writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(1)))
	b := writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(1)))
	(<-a).check(t, "partition 0's flush", time.Second)
	(<-b).check(t, "partition 1's flush", time.Second)
	(<-writeAsync(f, partRec(1, "ben|2026-03-02", dayWith(1)))).check(t, "partition 1's next flush", 600*time.Millisecond)
}

// No linger (negative): a round starts as soon as the previous one ended.
func TestNoLinger(t *testing.T) {
	f, st := rollerFlusher(-1, "ben")
	slow := writeAsync(f, partRec(1, "ben|2026-03-01", dayWith(2)))
	time.Sleep(20 * time.Millisecond)
	(<-writeAsync(f, partRec(0, "ann|2026-03-01", dayWith(3)))).check(t, "partition 0's flush", 500*time.Millisecond)
	close(st.gate)
	(<-slow).check(t, "partition 1's flush", time.Second)
}
