//go:build integration

package processors_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/cassandra"
)

// A listen three years old lands in its day, and a re-import of a whole old
// month (the same listens again, spelled and timed differently, plus a few
// new ones) counts each listen once: Goka table, day values and rollups.
func TestIntegrationLateDataAndReimport(t *testing.T) {
	s := newStack(t)
	session := s.keyspace(t)
	s.run(t, session)
	g := newGenerator(11, 3)
	want := newExpected()
	send := func(ls []listen.Listen, variant func(i int) int) {
		var msgs []*sarama.ProducerMessage
		for i, l := range ls {
			want.add(l)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(g.raw(l, variant(i)))})
		}
		s.produce(t, msgs)
	}
	old := time.Now().UTC().AddDate(-3, 0, 0).Truncate(time.Second)
	first := time.Date(old.Year(), old.Month(), 1, 0, 0, 0, 0, time.UTC)
	var month []listen.Listen
	for d := first; d.Month() == first.Month(); d = d.AddDate(0, 0, 1) {
		for _, u := range g.users {
			for i := range 8 {
				l := g.listen()
				l.UserID, l.PlayedAt = u, d.Add(time.Duration(9*3600+i*240)*time.Second)
				month = append(month, l)
			}
		}
	}
	threeYears := g.listen()
	threeYears.UserID, threeYears.PlayedAt = "old-timer", old
	send(append(month, threeYears), func(int) int { return 0 })
	s.waitCaughtUp(t, 2*time.Minute)
	s.checkTable(t, want)
	s.waitSinks(t, 3*time.Minute)
	s.checkCassandra(t, session, want)
	if d := s.table(t)[threeYears.Key()]; d == nil || d.Total != 1 {
		t.Fatalf("the listen three years old (%s): %+v", threeYears.Key(), d)
	}

	// The re-import: every listen of the month again, in other spellings and
	// time formats, and some new listens in the same month.
	again := append([]listen.Listen(nil), month...)
	for i := range 40 {
		l := g.listen()
		l.UserID, l.PlayedAt = g.users[i%3], first.Add(time.Duration(i)*time.Hour+17*time.Minute)
		again = append(again, l)
	}
	send(again, func(i int) int { return 1 + i%3 })
	s.waitCaughtUp(t, 2*time.Minute)
	s.checkTable(t, want)
	s.waitSinks(t, 3*time.Minute)
	s.checkCassandra(t, session, want)
}

// Cassandra stopped while listens arrive and started again: the raw writer
// and the flusher retry and catch up, nothing is lost, and the aggregation
// path never stops (it does not read Cassandra).
func TestIntegrationCassandraOutage(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "deploy", "local", "cassandra.sh")
	s := newStack(t)
	session := s.keyspace(t)
	s.run(t, session)
	t.Cleanup(func() { // whatever happens, leave Cassandra running
		if out, err := exec.Command(script, "start").CombinedOutput(); err != nil {
			t.Errorf("cassandra start: %v\n%s", err, out)
		}
		waitCassandra(t, s)
	})
	g := newGenerator(13, 50)
	want := newExpected()
	batch := func(n int) {
		var msgs []*sarama.ProducerMessage
		for range n {
			l := g.listen()
			want.add(l)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Value: sarama.StringEncoder(g.raw(l, 0))})
		}
		s.produce(t, msgs)
	}
	batch(2000)
	s.waitCaughtUp(t, 2*time.Minute)
	if out, err := exec.Command(script, "stop").CombinedOutput(); err != nil {
		t.Fatalf("cassandra stop: %v\n%s", err, out)
	}
	batch(3000)
	// The aggregation path goes on while Cassandra is down.
	s.waitCaughtUp(t, 2*time.Minute)
	s.checkTable(t, want)
	time.Sleep(3 * time.Second)
	if out, err := exec.Command(script, "start").CombinedOutput(); err != nil {
		t.Fatalf("cassandra start: %v\n%s", err, out)
	}
	waitCassandra(t, s)
	t.Log("cassandra is back")
	s.waitSinks(t, 4*time.Minute)
	t.Log("raw writer and flusher caught up")
	s.checkCassandra(t, session, want)
	t.Log("cassandra checked")
}

func waitCassandra(t *testing.T, s *stack) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cassandra.Ping(ctx, wiring.Cassandra(s.cfg.Cassandra))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("cassandra did not come back: %w", err))
		}
		time.Sleep(time.Second)
	}
}
