package kafka

import (
	"strconv"
	"testing"

	"github.com/topk-charts/topk/listen"
)

func TestDeadLetterHeadroom(t *testing.T) {
	if DeadLetterHeadroom != 65536 || ProducerMaxMessageBytes(1<<20) != 1<<20+65536 || ProducerMaxMessageBytes(0) != DefaultMaxMessageBytes+65536 {
		t.Fatalf("headroom %d, producer limit %d / %d", DeadLetterHeadroom, ProducerMaxMessageBytes(1<<20), ProducerMaxMessageBytes(0))
	}
}

func TestListenTopicsMaxMessageBytes(t *testing.T) {
	topics := listen.NewTopics("ns")
	for _, tc := range []struct{ configured, want int }{{0, 1 << 20}, {1 << 20, 1 << 20}, {3 << 20, 3 << 20}, {100000, 100000}} {
		k := Config{ValidPartitions: 16, RawPartitions: 8, MinInsyncReplicas: 2, MaxMessageBytes: tc.configured}
		specs := ListenTopics(k, topics)
		if len(specs) != 4 {
			t.Fatalf("%d specs", len(specs))
		}
		want := map[string]int{
			string(topics.Raw):   tc.want,
			string(topics.Valid): tc.want,
			string(topics.DLQ):   tc.want + DeadLetterHeadroom,
		}
		for _, s := range specs {
			if s.Name == string(topics.Stored) { // notices: small, an hour
				if s.Config["retention.ms"] != "3600000" || s.Config["min.insync.replicas"] != "2" || s.Partitions != 8 {
					t.Errorf("stored topic %+v", s)
				}
				continue
			}
			w, ok := want[s.Name]
			if !ok {
				t.Errorf("unexpected topic %s", s.Name)
				continue
			}
			if got := s.Config["max.message.bytes"]; got != strconv.Itoa(w) {
				t.Errorf("configured %d: %s max.message.bytes = %q, want %d", tc.configured, s.Name, got, w)
			}
			if s.Config["min.insync.replicas"] != "2" {
				t.Errorf("%s: min.insync.replicas = %q", s.Name, s.Config["min.insync.replicas"])
			}
		}
		if tc.configured > 0 && ProducerMaxMessageBytes(tc.configured) != want[string(topics.DLQ)] {
			t.Errorf("ProducerMaxMessageBytes(%d) = %d, want the DLQ's %d", tc.configured, ProducerMaxMessageBytes(tc.configured), want[string(topics.DLQ)])
		}
	}
}

func TestTableTopicMaxMessageBytes(t *testing.T) {
	spec := TableTopic("ns.topk-aggregator-table", 16, 2)
	if !spec.FixedPartitions || spec.Partitions != 16 || spec.Config["cleanup.policy"] != "compact" || spec.Config["min.insync.replicas"] != "2" {
		t.Fatalf("table spec %+v", spec)
	}
	if got := spec.Config["max.message.bytes"]; got != strconv.Itoa(DefaultMaxMessageBytes) {
		t.Errorf("TableTopic: max.message.bytes = %q, want the default", got)
	}
	custom := spec.WithMaxMessageBytes(3 << 20)
	if got := custom.Config["max.message.bytes"]; got != strconv.Itoa(3<<20) {
		t.Errorf("WithMaxMessageBytes: %q", got)
	}
	if custom.Config["cleanup.policy"] != "compact" || custom.Config["min.insync.replicas"] != "2" || !custom.FixedPartitions || custom.Name != spec.Name {
		t.Errorf("WithMaxMessageBytes lost the rest: %+v", custom)
	}
	if got := spec.Config["max.message.bytes"]; got != strconv.Itoa(DefaultMaxMessageBytes) {
		t.Errorf("WithMaxMessageBytes changed the original spec: %q", got)
	}
	if got := spec.WithMaxMessageBytes(0).Config["max.message.bytes"]; got != strconv.Itoa(DefaultMaxMessageBytes) {
		t.Errorf("WithMaxMessageBytes(0): %q", got)
	}
}
