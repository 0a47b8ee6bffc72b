//go:build integration

package processors_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// Listens over a daily cap go to the DLQ; after the fix (a higher cap)
// `topk dlq replay --reason daily_cap` sends them back through ingest and
// they count; a second replay finds nothing new.
func TestIntegrationDeadLetterReplay(t *testing.T) {
	s := newStack(t)
	s.maxPlays = 2
	g := newGenerator(5, 1)
	want := newExpected()
	var msgs []*sarama.ProducerMessage
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		l := g.listen()
		l.PlayedAt = at.Add(time.Duration(i) * time.Minute)
		want.add(l)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(g.raw(l, 0))})
	}
	msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Value: sarama.StringEncoder("still not a listen")})
	s.produce(t, msgs)

	// First run with the cap of 2.
	stop := s.start(t, nil)
	s.waitCaughtUp(t, time.Minute)
	stop()
	sources, _ := s.dlqSources(t)
	if len(sources) != 4 { // 3 over the cap, 1 not a listen
		t.Fatalf("%d dead letters before the fix, want 4: %v", len(sources), sources)
	}

	// The fix, then the replay of the daily_cap letters only.
	s.maxPlays = 10
	s.run(t, nil)
	rc := processors.ReplayConfig{Brokers: s.cfg.Kafka.Brokers, DLQ: string(s.topics.DLQ), Raw: string(s.topics.Raw),
		Group: listen.Namespaced(s.cfg.Namespace, "topk-dlq-replay.daily_cap"), Reason: "daily_cap"}
	st, err := processors.Replay(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replayed != 3 || st.Skipped != 1 {
		t.Fatalf("replay: %+v, want 3 replayed and 1 skipped", st)
	}
	s.waitCaughtUp(t, time.Minute)
	s.checkTable(t, want)
	for k, d := range s.table(t) {
		if d.Total != 5 {
			t.Fatalf("%s: %d plays after the replay, want 5", k, d.Total)
		}
	}
	st, err = processors.Replay(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replayed != 0 {
		t.Fatalf("a second replay re-injected %d letters, want 0", st.Replayed)
	}
}
