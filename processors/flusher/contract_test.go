package flusher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// ContractRecords are the records the writer contract (sinktest.WriterContract)
// gives the flusher; exported for the integration tests.
var ContractRecords = contractRecords

// contractRecords: two users' states of days across a year and a month,
// each growing, with an older state replayed last; and four records the
// flusher skips (a key without a day, a tombstone, an undecodable state, an
// empty one).
func contractRecords(prefix string) (valid, unusable []*sarama.ConsumerMessage) {
	var replays []*sarama.ConsumerMessage
	for _, user := range []string{prefix + "ann", prefix + "ben"} {
		for d, day := range []string{"2025-12-31", "2026-01-01", "2026-02-01"} {
			key := user + "|" + day
			state := &aggregator.Day{}
			for i := range 2 + d {
				state.Add(play(uint32(i), fmt.Sprintf("Track %d", (i+d)%3)))
				valid = append(valid, recOf(key, state))
				if i == 0 {
					replays = append(replays, recOf(key, state))
				}
			}
		}
	}
	valid = append(valid, replays...)
	unusable = []*sarama.ConsumerMessage{
		{Key: []byte(prefix + "ann"), Value: dayWith(1).Encode()},
		{Key: []byte(prefix + "ann|2026-01-01")},
		{Key: []byte(prefix + "ben|2026-01-01"), Value: []byte{1, 2, 3}},
		recOf(prefix+"ben|2026-01-02", &aggregator.Day{}),
	}
	for _, batch := range [][]*sarama.ConsumerMessage{valid, unusable} {
		for i, m := range batch {
			m.Offset = int64(i)
		}
	}
	return valid, unusable
}

// dump is what m holds of the users whose ids start with prefix.
func (m *memStore) dump(prefix string) string {
	items, days := m.snapshot()
	var lines []string
	for k, rows := range items {
		if _, rest, _ := strings.Cut(k, "|"); strings.HasPrefix(rest, prefix) {
			for _, r := range rows {
				lines = append(lines, fmt.Sprintf("%s %+v", k, r))
			}
		}
	}
	for k, plays := range days {
		if strings.HasPrefix(k, prefix) {
			lines = append(lines, fmt.Sprintf("user_days|%s %d", k, plays))
		}
	}
	return sinktest.Dump(lines)
}

// blockingStore's writes never answer before their context ends.
type blockingStore struct{ *memStore }

func (blockingStore) WriteItems(ctx context.Context, _ topk.Period, _ string, _ []topk.EntityItem, _ int64) error {
	<-ctx.Done()
	return ctx.Err()
}

// The flusher on the model store passes the sink writers' contract.
func TestWriterContract(t *testing.T) {
	if err := registerMetrics(nil); err != nil { // as New does: Skipped reads the default registry
		t.Fatal(err)
	}
	st, failing := newMemStore(1), newMemStore(2)
	failing.fail.Store(1000)
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:      func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), st) },
		FailingWriter:  func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), failing) },
		BlockingWriter: func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), blockingStore{st}) },
		Records:        contractRecords,
		Stored:         func(_ *testing.T, prefix string) string { return st.dump(prefix) },
		Skipped:        func(t *testing.T) float64 { return sinktest.Metric(t, "topk_flusher_records_skipped_total") },
	})
}
