//go:build integration

package processors_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/listen"
)

// kill -9 of the aggregator and the raw writer (twice each), of ingest and
// of the flusher while listens stream in: after restarts the Goka table and
// every Cassandra table are exact. Half the listens are the only listen
// of their user-day, so a listen in flight at a kill has no later listen of
// its key to carry its count to the changelog: only its own redelivery
// can, which is what the aggregator's rewrite of duplicates is for.
func TestIntegrationCrashExact(t *testing.T) {
	s := newStack(t)
	session := s.keyspace(t)
	cfg := s.cfg
	cfg.Pipeline.StateDir = t.TempDir()
	cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	cfg.Ops.Ingest, cfg.Ops.Aggregator = testenv.FreePort(t), testenv.FreePort(t)
	cfg.Ops.RawWriter, cfg.Ops.Flusher = testenv.FreePort(t), testenv.FreePort(t)
	cfg.LogLevel = "warn"
	ing := testenv.Start(t, cfg, "ingest")
	agg := testenv.Start(t, cfg, "aggregator")
	raw := testenv.Start(t, cfg, "raw-writer")
	fl := testenv.Start(t, cfg, "flusher")

	g := newGenerator(7, 200)
	want := newExpected()
	producer, err := sarama.NewSyncProducerFromClient(s.client)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const batches, perBatch = 60, 500
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var sent []listen.Listen
		for b := range batches {
			var msgs []*sarama.ProducerMessage
			for i := range perBatch {
				var l listen.Listen
				switch {
				case i%2 == 0: // the only listen of its user-day
					l = g.listen()
					l.UserID = fmt.Sprintf("lonely-%d-%d", b, i)
				case len(sent) > 0 && g.r.IntN(8) == 0:
					l = sent[g.r.IntN(len(sent))]
				default:
					l = g.listen()
					sent = append(sent, l)
				}
				want.add(l)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(g.raw(l, g.r.IntN(4)))})
			}
			if err := producer.SendMessages(msgs); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	for _, step := range []struct {
		after time.Duration
		p     *testenv.Process
	}{{5 * time.Second, agg}, {time.Second, raw}, {2 * time.Second, ing}, {time.Second, fl}, {time.Second, agg}, {time.Second, raw}} {
		time.Sleep(step.after)
		step.p.Kill9()
		time.Sleep(500 * time.Millisecond)
		step.p.Restart()
	}
	wg.Wait()
	s.waitCaughtUp(t, 3*time.Minute)
	s.checkTable(t, want)
	s.waitSinks(t, 5*time.Minute)
	s.checkCassandra(t, session, want)
	t.Logf("%d listens, %d user-days", batches*perBatch, len(want.seen))
}
