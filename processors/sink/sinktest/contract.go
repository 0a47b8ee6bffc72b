package sinktest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Writer is the method set of sink.Writer, declared here because package
// sink's own tests import this package (sink's tests check that the two
// stay the same).
type Writer interface {
	Write(ctx context.Context, batch []*sarama.ConsumerMessage) error
}

// WriterSubject is one sink.Writer implementation on one store (a fake in
// unit tests, the real Cassandra in integration tests), as
// WriterContract drives it.
type WriterSubject struct {
	// NewWriter returns a writer on the store under test. Every call is a
	// new instance (a restart, another member of the group) on the same
	// store.
	NewWriter func(t *testing.T) Writer
	// FailingWriter returns a writer whose store fails every request.
	FailingWriter func(t *testing.T) Writer
	// BlockingWriter, when set, returns a writer whose store's requests
	// block until their context ends.
	BlockingWriter func(t *testing.T) Writer
	// Records returns records of one partition in offset order, all about
	// users whose ids start with prefix: valid ones the writer stores
	// (duplicates and replays welcome), and unusable ones it can never
	// store (bad keys, undecodable values, tombstones).
	Records func(prefix string) (valid, unusable []*sarama.ConsumerMessage)
	// Stored reports what the store holds about the users whose ids start
	// with prefix, as text equal for equal content; "" for nothing.
	Stored func(t *testing.T, prefix string) string
	// Skipped is the writer's count of the records it skipped (a counter
	// of the default registry: Metric).
	Skipped func(t *testing.T) float64
}

// contractTimeout bounds every Write of the contract: a Write that does
// not return by then blocks its partition.
const contractTimeout = 30 * time.Second

// WriterContract checks what the sink relies on of a Writer (sink.Writer's
// doc): a batch written again, by the same instance or another, leaves the
// store as it was (idempotence) and is left unchanged by Write; a failing
// store is an error, not a panic; a cancelled context ends Write with an
// error; records it cannot use are skipped and counted, never an error or
// a wait, and do not keep the others of their batch from being written.
func WriterContract(t *testing.T, s WriterSubject) {
	t.Run("RewriteIsIdempotent", func(t *testing.T) {
		valid, _ := s.Records("idem")
		before := snapshot(valid)
		w := s.NewWriter(t)
		mustWrite(t, w, valid, "first write")
		first := s.Stored(t, "idem")
		if first == "" {
			t.Fatal("nothing stored after a successful Write")
		}
		if got := snapshot(valid); got != before {
			t.Fatalf("Write changed its batch:\n%s\nwant\n%s", got, before)
		}
		mustWrite(t, w, valid, "the same batch again")
		if got := s.Stored(t, "idem"); got != first {
			t.Errorf("after writing the batch again the store holds\n%s\nwant\n%s", got, first)
		}
		mustWrite(t, s.NewWriter(t), valid, "the same batch by another instance")
		if got := s.Stored(t, "idem"); got != first {
			t.Errorf("after another instance wrote the batch again the store holds\n%s\nwant\n%s", got, first)
		}
	})

	t.Run("FailingStoreIsAnError", func(t *testing.T) {
		valid, _ := s.Records("fail")
		if err := write(t, s.FailingWriter(t), context.Background(), valid); err == nil {
			t.Error("Write on a failing store returned nil: the sink would mark a batch not stored")
		}
	})

	t.Run("CancelledContextEndsWrite", func(t *testing.T) {
		valid, _ := s.Records("cancel")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := write(t, s.NewWriter(t), ctx, valid); err == nil {
			// Only right if the whole batch was stored.
			got := s.Stored(t, "cancel")
			mustWrite(t, s.NewWriter(t), valid, "the batch again")
			if want := s.Stored(t, "cancel"); got != want {
				t.Errorf("Write with a cancelled context returned nil, the store holding\n%s\nwant\n%s", got, want)
			}
		}
		if s.BlockingWriter == nil {
			return
		}
		ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := write(t, s.BlockingWriter(t), ctx, valid); err == nil {
			t.Error("Write on a store that never answered returned nil")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Write returned %v after its context ended", took-100*time.Millisecond)
		}
	})

	t.Run("UnusableRecordsAreSkipped", func(t *testing.T) {
		valid, unusable := s.Records("bad")
		if len(unusable) == 0 {
			t.Fatal("Records returned no unusable records")
		}
		skipped := s.Skipped(t)
		mustWrite(t, s.NewWriter(t), unusable, "a batch of unusable records")
		if n := s.Skipped(t) - skipped; n != float64(len(unusable)) {
			t.Errorf("%v records counted as skipped, want %d", n, len(unusable))
		}
		if got := s.Stored(t, "bad"); got != "" {
			t.Errorf("unusable records stored:\n%s", got)
		}
		// Interleaved with valid records, which are all written: writing
		// them again adds nothing.
		var mixed []*sarama.ConsumerMessage
		for i := range max(len(valid), len(unusable)) {
			for _, part := range [][]*sarama.ConsumerMessage{valid, unusable} {
				if i < len(part) {
					m := *part[i]
					m.Offset = int64(len(mixed))
					mixed = append(mixed, &m)
				}
			}
		}
		mustWrite(t, s.NewWriter(t), mixed, "valid and unusable records")
		got := s.Stored(t, "bad")
		mustWrite(t, s.NewWriter(t), valid, "the valid records alone")
		if want := s.Stored(t, "bad"); got != want {
			t.Errorf("the unusable records kept valid ones from being written: the store held\n%s\nwant\n%s", got, want)
		}
	})
}

// write runs w.Write within contractTimeout and turns a panic into a test
// failure.
func write(t *testing.T, w Writer, ctx context.Context, batch []*sarama.ConsumerMessage) (err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, contractTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
				t.Errorf("Write panicked: %v", p)
			}
		}()
		done <- w.Write(ctx, batch)
	}()
	select {
	case err = <-done:
		return err
	case <-time.After(contractTimeout + 5*time.Second):
		t.Fatalf("Write did not return %v after its context ended", 5*time.Second)
		return nil
	}
}

func mustWrite(t *testing.T, w Writer, batch []*sarama.ConsumerMessage, what string) {
	t.Helper()
	if err := write(t, w, context.Background(), batch); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// snapshot is the content of batch as text.
func snapshot(batch []*sarama.ConsumerMessage) string {
	var b bytes.Buffer
	for _, m := range batch {
		fmt.Fprintf(&b, "%d/%d %q %x\n", m.Partition, m.Offset, m.Key, m.Value)
	}
	return b.String()
}
