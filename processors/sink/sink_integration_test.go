//go:build integration

package sink_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// recorder is a Writer that fails the first failFirst attempts of every
// batch, and fails every batch of a partition after it wrote stopAfter
// batches there (0: never). It records what it wrote.
type recorder struct {
	failFirst int
	stopAfter int

	mu       sync.Mutex
	attempts map[int32]int     // failed attempts of the current batch
	stuck    map[int32]int     // attempts refused after stopAfter
	written  map[int32][]int64 // offsets written, in order
	batches  map[int32]int
	values   map[int32][]string
}

func newRecorder(failFirst, stopAfter int) *recorder {
	return &recorder{failFirst: failFirst, stopAfter: stopAfter, attempts: map[int32]int{},
		stuck: map[int32]int{}, written: map[int32][]int64{}, batches: map[int32]int{}, values: map[int32][]string{}}
}

func (r *recorder) Write(_ context.Context, batch []*sarama.ConsumerMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := batch[0].Partition
	if r.stopAfter > 0 && r.batches[p] >= r.stopAfter {
		r.stuck[p]++
		return errors.New("injected: partition stuck")
	}
	if r.attempts[p] < r.failFirst {
		r.attempts[p]++
		return fmt.Errorf("injected failure %d", r.attempts[p])
	}
	r.attempts[p] = 0
	r.batches[p]++
	for _, m := range batch {
		if m.Partition != p {
			return fmt.Errorf("batch mixes partitions %d and %d", p, m.Partition)
		}
		r.written[p] = append(r.written[p], m.Offset)
		r.values[p] = append(r.values[p], string(m.Value))
	}
	return nil
}

func (r *recorder) snapshot() (written map[int32][]int64, batches, stuck map[int32]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	written, batches, stuck = map[int32][]int64{}, map[int32]int{}, map[int32]int{}
	for p, w := range r.written {
		written[p] = append([]int64(nil), w...)
	}
	for p, n := range r.batches {
		batches[p] = n
	}
	for p, n := range r.stuck {
		stuck[p] = n
	}
	return
}

// A Writer failing twice per batch, then stuck after three batches: every
// record is written exactly once, in order; the committed offset is right
// after the last written batch while it is stuck and after shutdown; a
// second consumer in the same group resumes exactly there and writes the
// rest.
func TestIntegrationSinkRetriesAndResumesAfterLastWrittenBatch(t *testing.T) {
	cfg := testenv.Config(t)
	const partitions, perPartition = 3, 60
	topic := listen.Namespaced(cfg.Namespace, "sink.test")
	group := listen.Namespaced(cfg.Namespace, "topk-sink-test")
	sinktest.Topic(t, cfg, kafka.TopicSpec{Name: topic, Partitions: partitions,
		Config: map[string]string{"cleanup.policy": "delete"}}, group)
	a := sinktest.Admin(t, cfg)

	var msgs []*sarama.ProducerMessage
	for p := range int32(partitions) {
		for i := range perPartition {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p,
				Value: sarama.StringEncoder(strconv.Itoa(int(p)) + "/" + strconv.Itoa(i))})
		}
	}
	sinktest.Send(t, sinktest.Producer(t, cfg, true), msgs)

	newSink := func(w sink.Writer) *sink.Sink {
		s, err := sink.New(sink.Config{
			Name: "test_" + cfg.Namespace, Brokers: cfg.Kafka.Brokers, Group: group, Topic: topic,
			BatchSize: 10, Linger: 100 * time.Millisecond,
			Backoff: sink.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
			Log:     testenv.Logger(t),
		}, w)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	run := func(s *sink.Sink) (cancel func() error) {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return func() error {
			stop()
			select {
			case err := <-done:
				return err
			case <-time.After(20 * time.Second):
				return errors.New("Run did not return within 20 s of cancellation")
			}
		}
	}

	// First consumer: 2 failures per batch, stuck after 3 batches.
	r1 := newRecorder(2, 3)
	stop1 := run(newSink(r1))
	sinktest.Eventually(t, 30*time.Second, "first consumer writes 3 batches per partition and gets stuck", func() bool {
		_, batches, stuck := r1.snapshot()
		for p := range int32(partitions) {
			if batches[p] < 3 || stuck[p] < 2 {
				return false
			}
		}
		return true
	})
	written1, _, _ := r1.snapshot()
	for p := range int32(partitions) {
		w := written1[p]
		for i, off := range w {
			if off != int64(i) {
				t.Fatalf("partition %d: first consumer wrote offsets %v, want 0, 1, 2, … each once", p, w)
			}
		}
	}
	// While stuck, the committed offset is right after the last written
	// batch (autocommit runs every second): never beyond.
	sinktest.Eventually(t, 10*time.Second, "committed offsets reach the last written batch", func() bool {
		c := sinktest.Committed(t, a, group, topic, partitions)
		for p := range int32(partitions) {
			if c[p] != int64(len(written1[p])) {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond) // more autocommits while stuck
	c := sinktest.Committed(t, a, group, topic, partitions)
	for p := range int32(partitions) {
		if c[p] != int64(len(written1[p])) {
			t.Fatalf("partition %d: committed %d while stuck, want %d (after the last written batch)", p, c[p], len(written1[p]))
		}
	}
	if err := stop1(); err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	c = sinktest.Committed(t, a, group, topic, partitions)
	for p := range int32(partitions) {
		if c[p] != int64(len(written1[p])) {
			t.Fatalf("partition %d: committed %d after shutdown, want %d", p, c[p], len(written1[p]))
		}
	}

	// Second consumer, same group: resumes right after the last written batch.
	r2 := newRecorder(0, 0)
	stop2 := run(newSink(r2))
	sinktest.Eventually(t, 30*time.Second, "second consumer writes the rest", func() bool {
		w, _, _ := r2.snapshot()
		for p := range int32(partitions) {
			if len(w[p]) < perPartition-len(written1[p]) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // nothing more may come
	if err := stop2(); err != nil {
		t.Fatalf("second consumer: %v", err)
	}
	written2, _, _ := r2.snapshot()
	for p := range int32(partitions) {
		first := int64(len(written1[p]))
		w := written2[p]
		if len(w) != perPartition-int(first) {
			t.Fatalf("partition %d: second consumer wrote %d records, want %d", p, len(w), perPartition-int(first))
		}
		for i, off := range w {
			if off != first+int64(i) {
				t.Fatalf("partition %d: second consumer wrote offsets %v, want %d..%d each once", p, w, first, perPartition-1)
			}
		}
	}
	c = sinktest.Committed(t, a, group, topic, partitions)
	for p := range int32(partitions) {
		if c[p] != perPartition {
			t.Errorf("partition %d: committed %d at the end, want %d", p, c[p], perPartition)
		}
	}
}

// Run waits for a topic that does not exist yet, and still stops on
// cancellation.
func TestIntegrationSinkWaitsForMissingTopicAndStops(t *testing.T) {
	cfg := testenv.Config(t)
	s, err := sink.New(sink.Config{
		Name: "test_missing", Brokers: cfg.Kafka.Brokers,
		Group: listen.Namespaced(cfg.Namespace, "g"), Topic: listen.Namespaced(cfg.Namespace, "never.created"),
		Backoff: sink.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}, Log: testenv.Logger(t),
	}, sinkWriterFunc(func(context.Context, []*sarama.ConsumerMessage) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run took %v to stop", d)
	}
}

type sinkWriterFunc func(context.Context, []*sarama.ConsumerMessage) error

func (f sinkWriterFunc) Write(ctx context.Context, b []*sarama.ConsumerMessage) error {
	return f(ctx, b)
}
