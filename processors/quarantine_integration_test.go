//go:build integration

package processors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// A group stuck at offset O of a partition: `topk dlq quarantine` copies
// the record to the DLQ with its bytes and the dead-letter headers and
// moves the group to O+1 — only when the group is stuck exactly there and
// has no members (--wait waits for the last one to leave).
func TestIntegrationQuarantine(t *testing.T) {
	s := newStack(t)
	raw := string(s.topics.Raw)
	const p, o = int32(1), int64(3)
	values := [][]byte{
		[]byte(`{"user_id":"a"}`), []byte("second"), []byte("third"),
		{0xff, 0x00, 'b', 'a', 'd', 0xfe}, // the stuck one: not UTF-8, a NUL inside
		[]byte("fifth"),
	}
	var msgs []*sarama.ProducerMessage
	for i, v := range values {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: raw, Partition: p, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i)), Value: sarama.ByteEncoder(v)})
	}
	produceTo(t, s, msgs)

	groups := map[string]string{}
	group := func(name string) string {
		g := listen.Namespaced(s.cfg.Namespace, "quarantine-"+name)
		groups[name] = g
		return g
	}
	t.Cleanup(func() {
		for _, g := range groups {
			_ = s.admin.DeleteConsumerGroup(g)
		}
	})
	base := processors.QuarantineConfig{Brokers: s.cfg.Kafka.Brokers, DLQ: string(s.topics.DLQ), Topic: raw,
		Partition: p, Offset: o, Note: "ticket 42", Poll: 100 * time.Millisecond, Log: testenv.Logger(t)}
	ctx := testenv.Context(t, 2*time.Minute)
	with := func(g string, f func(*processors.QuarantineConfig)) processors.QuarantineConfig {
		c := base
		c.Group = g
		if f != nil {
			f(&c)
		}
		return c
	}

	// Refusals: nothing is written, nothing moves.
	for _, tc := range []struct {
		name      string
		committed int64 // -1: no commit
		force     bool
		want      error
		says      string
	}{
		{"behind", o - 2, false, processors.ErrWouldSkip, "is 1, before 3"},
		{"past", o + 1, false, processors.ErrAlreadyPast, "is 4, past 3"},
		{"none", -1, false, processors.ErrNoCommit, "no committed offset"},
	} {
		g := group(tc.name)
		if tc.committed >= 0 {
			commitAt(t, s, g, raw, p, tc.committed)
		}
		_, err := processors.Quarantine(ctx, with(g, nil))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("%s: err = %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
		if got := committedAt(t, s, g, raw, p); got != tc.committed {
			t.Fatalf("%s: committed offset moved to %d", tc.name, got)
		}
	}
	if _, err := processors.Quarantine(ctx, with(groups["none"], func(c *processors.QuarantineConfig) { c.Force, c.DryRun = true, true })); err != nil {
		t.Fatalf("--force --dry-run without a commit: %v", err)
	}
	if _, err := processors.Quarantine(ctx, with(groups["behind"], func(c *processors.QuarantineConfig) { c.Offset = 99 })); !errors.Is(err, processors.ErrNoRecord) {
		t.Fatalf("offset past the end: err = %v, want ErrNoRecord", err)
	}
	if n := len(dlqLetters(t, s)); n != 0 {
		t.Fatalf("%d dead letters after refusals, want 0", n)
	}

	// Stuck at O: a dry run shows the letter, then the real run.
	stuck := group("stuck")
	commitAt(t, s, stuck, raw, p, o)
	dry, err := processors.Quarantine(ctx, with(stuck, func(c *processors.QuarantineConfig) { c.DryRun = true }))
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if string(dry.Value) != string(values[o]) || dry.Committed != o || dry.DLQOffset != -1 {
		t.Fatalf("dry run: %+v", dry)
	}
	if n := len(dlqLetters(t, s)); n != 0 || committedAt(t, s, stuck, raw, p) != o {
		t.Fatalf("dry run wrote %d letters or moved the group", n)
	}
	res, err := processors.Quarantine(ctx, with(stuck, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := committedAt(t, s, stuck, raw, p); got != o+1 || res.NewOffset != o+1 {
		t.Fatalf("committed offset %d after the quarantine (result %d), want %d", got, res.NewOffset, o+1)
	}
	letters := dlqLetters(t, s)
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	checkLetter(t, letters[0], raw, p, o, "key-3", values[o], "quarantined by an operator: ticket 42")
	if letters[0].Partition != res.DLQPartition || letters[0].Offset != res.DLQOffset {
		t.Fatalf("letter at %d/%d, result says %d/%d", letters[0].Partition, letters[0].Offset, res.DLQPartition, res.DLQOffset)
	}
	// Run again (as after a crash between the two steps would): past it now.
	if _, err := processors.Quarantine(ctx, with(stuck, nil)); !errors.Is(err, processors.ErrAlreadyPast) {
		t.Fatalf("second run: err = %v, want ErrAlreadyPast", err)
	}

	// An active member: refused, refused after a short wait, reported by a
	// dry run; --wait succeeds once the member leaves.
	active := group("active")
	commitAt(t, s, active, raw, p, o)
	leave := joinGroup(t, s, active, raw)
	var gae *processors.GroupActiveError
	if _, err := processors.Quarantine(ctx, with(active, nil)); !errors.As(err, &gae) || gae.Members != 1 ||
		!strings.Contains(err.Error(), "has 1 active members") || !strings.Contains(err.Error(), "stop its services") {
		t.Fatalf("active member: err = %v, want a GroupActiveError with 1 member", err)
	}
	start := time.Now()
	if _, err := processors.Quarantine(ctx, with(active, func(c *processors.QuarantineConfig) { c.Wait = time.Second })); !errors.Is(err, processors.ErrGroupActive) {
		t.Fatalf("active member, --wait 1s: err = %v, want ErrGroupActive", err)
	} else if time.Since(start) < time.Second {
		t.Fatalf("--wait 1s gave up after %s", time.Since(start))
	}
	if r, err := processors.Quarantine(ctx, with(active, func(c *processors.QuarantineConfig) { c.DryRun = true })); err != nil || r.Members != 1 {
		t.Fatalf("dry run with a member: %v, %d members", err, r.Members)
	}
	done := make(chan error, 1)
	go func() {
		_, err := processors.Quarantine(ctx, with(active, func(c *processors.QuarantineConfig) { c.Wait = time.Minute }))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("quarantine with --wait returned while the member was in the group: %v", err)
	case <-time.After(2 * time.Second):
	}
	if got := committedAt(t, s, active, raw, p); got != o {
		t.Fatalf("committed offset %d while the member was in the group, want %d", got, o)
	}
	leave()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quarantine with --wait after the member left: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("quarantine with --wait did not return after the member left")
	}
	if got := committedAt(t, s, active, raw, p); got != o+1 {
		t.Fatalf("committed offset %d after --wait, want %d", got, o+1)
	}
	if letters = dlqLetters(t, s); len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	for _, m := range letters {
		checkLetter(t, m, raw, p, o, "key-3", values[o], "quarantined by an operator: ticket 42")
	}
}

// produceTo sends msgs to the partitions they name.
func produceTo(t *testing.T, s *stack, msgs []*sarama.ProducerMessage) {
	t.Helper()
	sc := kafka.NewSaramaConfig("topk-test")
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(s.cfg.Kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// commitAt commits offset for group on (topic, partition) as sarama's
// offset manager does for a consumer.
func commitAt(t *testing.T, s *stack, group, topic string, partition int32, offset int64) {
	t.Helper()
	om, err := sarama.NewOffsetManagerFromClient(group, s.client)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	pom.MarkOffset(offset, "")
	om.Commit()
	pom.AsyncClose()
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committedAt(t, s, group, topic, partition); got != offset {
		t.Fatalf("committed %d for %s, the group reads %d", offset, group, got)
	}
}

// committedAt is group's committed offset on (topic, partition), -1 if none.
func committedAt(t *testing.T, s *stack, group, topic string, partition int32) int64 {
	t.Helper()
	resp, err := s.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBlock(topic, partition); b != nil {
		return b.Offset
	}
	return -1
}

// joinGroup starts a consumer group member on topic that reads and never
// marks, and waits until Kafka lists it; leave makes it leave the group.
func joinGroup(t *testing.T, s *stack, group, topic string) (leave func()) {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(s.cfg.Kafka.Brokers, group, kafka.NewSaramaConfig("quarantine-test-member"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, idleHandler{}); err != nil && ctx.Err() == nil {
				t.Logf("consumer group: %v", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	go func() {
		for range cg.Errors() {
		}
	}()
	leave = func() {
		cancel()
		<-stopped
		if err := cg.Close(); err != nil {
			t.Errorf("close the consumer group: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			leave()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := s.admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(ds) == 1 && len(ds[0].Members) == 1 && ds[0].State == "Stable" {
			return leave
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member did not join %s: %v", group, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type idleHandler struct{}

func (idleHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (idleHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (idleHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() { // read, never mark
	}
	return nil
}

// dlqLetters reads every record of the DLQ.
func dlqLetters(t *testing.T, s *stack) []*sarama.ConsumerMessage {
	t.Helper()
	return testenv.Records(t, s.cfg, string(s.topics.DLQ))
}

// checkLetter checks a quarantine dead letter: key, bytes and headers.
func checkLetter(t *testing.T, m *sarama.ConsumerMessage, topic string, partition int32, offset int64, key string, value []byte, detail string) {
	t.Helper()
	if want := processors.DeadLetterKey(topic, partition, offset); string(m.Key) != want {
		t.Fatalf("letter key %q, want %q", m.Key, want)
	}
	if string(m.Value) != string(value) {
		t.Fatalf("letter bytes %q, want %q", m.Value, value)
	}
	h := map[string]string{}
	for _, r := range m.Headers {
		h[string(r.Key)] = string(r.Value)
	}
	want := map[string]string{
		processors.HeaderReason: "quarantined", processors.HeaderDetail: detail, processors.HeaderStage: "operator",
		processors.HeaderTopic: topic, processors.HeaderPartition: fmt.Sprint(partition),
		processors.HeaderOffset: fmt.Sprint(offset), processors.HeaderKey: key,
	}
	for k, v := range want {
		if h[k] != v {
			t.Fatalf("letter header %s = %q, want %q (all: %v)", k, h[k], v, h)
		}
	}
}
