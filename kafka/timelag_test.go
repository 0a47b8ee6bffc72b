package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC)

func TestFirstRecordTime(t *testing.T) {
	// One batch from offset 5: the record at 7 is asked for.
	r := &sarama.FetchResponse{Version: 12}
	for i := int64(0); i < 4; i++ {
		r.AddRecordWithTimestamp("t", 0, nil, sarama.StringEncoder("v"), i, t0.Add(time.Duration(i)*time.Second))
	}
	r.GetBlock("t", 0).RecordsSet[0].RecordBatch.FirstOffset = 5
	if ts, ok := firstRecordTime(r.GetBlock("t", 0), 7); !ok || !ts.Equal(t0.Add(2*time.Second)) {
		t.Errorf("record at 7: %v %v, want %v", ts, ok, t0.Add(2*time.Second))
	}
	// Compaction removed 4: the first record after it counts.
	if ts, ok := firstRecordTime(r.GetBlock("t", 0), 4); !ok || !ts.Equal(t0) {
		t.Errorf("record at 4: %v %v, want %v", ts, ok, t0)
	}
	if _, ok := firstRecordTime(r.GetBlock("t", 0), 9); ok {
		t.Error("a record past the batch was found")
	}

	// A transaction marker is not a record; LogAppendTime takes the
	// batch's time.
	r = &sarama.FetchResponse{Version: 12, LogAppendTime: true, Timestamp: t0.Add(time.Minute)}
	r.AddControlRecordWithTimestamp("t", 1, 3, 1, sarama.ControlRecordCommit, t0)
	r.AddRecordBatchWithTimestamp("t", 1, nil, sarama.StringEncoder("v"), 4, 1, false, t0)
	if ts, ok := firstRecordTime(r.GetBlock("t", 1), 3); !ok || !ts.Equal(t0.Add(time.Minute)) {
		t.Errorf("log append time: %v %v", ts, ok)
	}

	// Message format 1.
	r = &sarama.FetchResponse{Version: 4}
	r.AddMessageWithTimestamp("t", 2, nil, sarama.StringEncoder("v"), 10, t0, 1)
	r.AddMessageWithTimestamp("t", 2, nil, sarama.StringEncoder("v"), 11, t0.Add(time.Second), 1)
	if ts, ok := firstRecordTime(r.GetBlock("t", 2), 11); !ok || !ts.Equal(t0.Add(time.Second)) {
		t.Errorf("message format 1: %v %v", ts, ok)
	}
	if _, ok := firstRecordTime(&sarama.FetchResponseBlock{}, 0); ok {
		t.Error("an empty block has a record")
	}
}

// groupTimeLag against sarama's mock broker: three partitions, high-water
// marks 10, 3 and 5; the records at 6 and 7 of partition 0 waited 40 s
// and 30 s, the record at 0 of partition 1 10 s. LagCollector reads the
// same commits in records.
func TestGroupTimeLagMockBroker(t *testing.T) {
	const topic, group = "tbl", "g"
	b := sarama.NewMockBroker(t, 1)
	defer b.Close()
	fetch := &sarama.FetchResponse{Version: 12}
	fetch.AddRecordBatchWithTimestamp(topic, 0, nil, sarama.StringEncoder("a"), 6, -1, false, t0.Add(-40*time.Second))
	fetch.AddRecordBatchWithTimestamp(topic, 0, nil, sarama.StringEncoder("b"), 7, -1, false, t0.Add(-30*time.Second))
	fetch.AddRecordBatchWithTimestamp(topic, 1, nil, sarama.StringEncoder("c"), 0, -1, false, t0.Add(-10*time.Second))
	cfg := NewSaramaConfig("test")
	cfg.ApiVersionsRequest = false
	cfg.Metadata.Retry.Max = 0
	for _, c := range []struct {
		name      string
		committed map[int32]int64 // absent: no commit
		want      time.Duration
		records   int64 // the lag in records (LagCollector)
	}{
		{"behind, no commit, caught up", map[int32]int64{0: 7, 2: 5}, 30 * time.Second, 6},
		{"no commit", map[int32]int64{0: 10, 2: 5}, 10 * time.Second, 3},
		{"caught up", map[int32]int64{0: 10, 1: 3, 2: 5}, 0, 0},
	} {
		offsets := sarama.NewMockOffsetFetchResponse(t)
		for p, o := range c.committed {
			offsets.SetOffset(group, topic, p, o, "", sarama.ErrNoError)
		}
		b.SetHandlerByMap(map[string]sarama.MockResponse{
			"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()).
				SetLeader(topic, 0, b.BrokerID()).SetLeader(topic, 1, b.BrokerID()).SetLeader(topic, 2, b.BrokerID()),
			"FindCoordinatorRequest": sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, group, b),
			"OffsetFetchRequest":     offsets,
			"OffsetRequest": sarama.NewMockOffsetResponse(t).
				SetOffset(topic, 0, sarama.OffsetNewest, 10).SetOffset(topic, 0, sarama.OffsetOldest, 0).
				SetOffset(topic, 1, sarama.OffsetNewest, 3).SetOffset(topic, 1, sarama.OffsetOldest, 0).
				SetOffset(topic, 2, sarama.OffsetNewest, 5).SetOffset(topic, 2, sarama.OffsetOldest, 0),
			"FetchRequest": sarama.NewMockWrapper(fetch),
		})
		client, err := sarama.NewClient([]string{b.Addr()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		lag, err := groupTimeLag(context.Background(), client, group, topic, func() time.Time { return t0 })
		client.Close()
		if err != nil || lag != c.want {
			t.Errorf("%s: lag %v, %v; want %v", c.name, lag, err, c.want)
		}

		// The same commits in records (a partition without a commit from
		// its oldest offset), as a registry gathers LagCollector.
		lc := NewLagCollector([]string{b.Addr()}, "aggregator", group, topic)
		lc.m.cfg = cfg
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(lc)
		want := fmt.Sprintf(`
# HELP topk_consumer_lag Records of the topic the consumer group has not committed yet (high-water mark minus committed offset, summed over partitions), measured when scraped.
# TYPE topk_consumer_lag gauge
topk_consumer_lag{component="aggregator",group="g",topic="tbl"} %d
`, c.records)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "topk_consumer_lag"); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		lc.Close()
	}
}

// The meter fails (unknown) rather than reporting 0 when Kafka cannot be
// reached, and within its context.
func TestTimeLagMeterKafkaDown(t *testing.T) {
	m := NewTimeLagMeter([]string{"127.0.0.1:1"}, nil, "g", "t")
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := m.Measure(ctx); err == nil {
		t.Fatal("no error with Kafka down")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v", d)
	}
	// A measurement whose context ends first returns at once.
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := m.Measure(short); err == nil {
		t.Fatal("short context: no error")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// A measurement that outlives its context keeps the meter busy: the next
// one fails at once instead of piling requests onto a slow broker.
func TestTimeLagMeterBusy(t *testing.T) {
	b := sarama.NewMockBroker(t, 1)
	defer b.Close()
	b.SetHandlerByMap(map[string]sarama.MockResponse{
		"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()).
			SetLeader("t", 0, b.BrokerID()),
	})
	b.SetLatency(time.Second)
	cfg := NewSaramaConfig("test")
	cfg.ApiVersionsRequest = false
	m := NewTimeLagMeter([]string{b.Addr()}, cfg, "g", "t")
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := m.Measure(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow broker: %v, want the deadline", err)
	}
	if _, err := m.Measure(context.Background()); !errors.Is(err, errBusy) {
		t.Fatalf("second measurement: %v, want busy", err)
	}
}
