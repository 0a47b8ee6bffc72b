package sitewideflusher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

func init() {
	// as New does: the tests read the counters in the default registry
	if err := registerMetrics(nil); err != nil {
		panic(err)
	}
}

var spellings = []sitewide.Spelling{{Name: "Song", Artist: "Band"}, {Name: "SONG", Artist: "BAND"}, {Name: "song", Artist: "band"}}

// coalesce keeps, per key, the value of the highest version whatever the
// order (on a tie the later record), in the order of the keys' first
// records; a row's plays, listeners and spelling are the value's (a
// listener with plays 0 is no listener; the spelling with the most plays
// wins); unusable records are counted by reason and left out, and do not
// keep the others from their rows.
func TestCoalesce(t *testing.T) {
	f := newFlusher(quietConfig(), newMemStore())
	a := sitewide.Key{Entity: topk.Tracks, Item: 1<<63 | 7, Day: day("2026-02-01"), Bucket: 3}
	b := sitewide.Key{Entity: topk.Artists, Item: 9, Day: day("2026-02-01"), Bucket: 1030}
	c := sitewide.Key{Entity: topk.Albums, Item: 9, Day: day("2026-02-02"), Bucket: 0}
	a5 := valueOf(5, spellings, listener{"ann", 2, 1}, listener{"ben", 0, 0}, listener{"cat", 3, 0}, listener{"dan", 1, 1})
	tieA := valueOf(5, spellings, listener{"ann", 9, 2}) // an equal version, later: wins
	batch := []*sarama.ConsumerMessage{
		recOf(a, valueOf(3, spellings, listener{"ann", 1, 0})),
		recOf(b, valueOf(2, spellings[:1], listener{"zed", 4, 0})),
		{Key: []byte("nope"), Value: sitewide.AppendValue(nil, a5)},
		recOf(a, a5),
		{Key: []byte(a.String())}, // tombstone
		{Key: []byte(b.String()), Value: []byte{7, 7}},             // undecodable
		recOf(b, valueOf(1, spellings[:1], listener{"zed", 1, 0})), // replayed older value: loses
		recOf(c, valueOf(0, spellings, listener{"x", 1, 0})),       // version 0
		recOf(a, valueOf(4, spellings, listener{"ann", 1, 0})),     // older: loses
	}
	skipped0 := map[string]float64{}
	for _, r := range []string{"bad_key", "tombstone", "undecodable", "empty"} {
		skipped0[r] = sinktest.Metric(t, "topk_sitewide_flusher_records_skipped_total", "reason", r)
	}
	rows := f.coalesce(batch)
	want := []cassandra.SitewideRow{
		{Key: a, Version: 5, Plays: 6, Listeners: 3, Name: "SONG", Artist: "BAND"}, // SONG 3 plays, Song 3: ties go to the smaller name
		{Key: b, Version: 2, Plays: 4, Listeners: 1, Name: "Song", Artist: "Band"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("coalesce:\n%+v\nwant\n%+v", rows, want)
	}
	for r, n := range skipped0 {
		if got := sinktest.Metric(t, "topk_sitewide_flusher_records_skipped_total", "reason", r) - n; got != 1 {
			t.Errorf("skipped %s: %v, want 1", r, got)
		}
	}
	rows = f.coalesce(append(batch, recOf(a, tieA)))
	if rows[0].Version != 5 || rows[0].Plays != 9 || rows[0].Name != "song" {
		t.Errorf("a later record of an equal version: %+v, want it to win", rows[0])
	}
}

// Rank ranks a value by its version and leaves out what coalesce skips.
func TestRank(t *testing.T) {
	f := newFlusher(quietConfig(), newMemStore())
	k := sitewide.Key{Entity: topk.Tracks, Item: 1, Day: day("2026-02-01"), Bucket: 0}
	if r, ok := f.Rank(recOf(k, valueOf(42, spellings, listener{"a", 1, 0}))); !ok || r != 42 {
		t.Errorf("Rank = %d, %v; want 42", r, ok)
	}
	for _, m := range []*sarama.ConsumerMessage{
		{Key: []byte(k.String())},
		{Key: []byte(k.String()), Value: []byte{1}},
		{Key: []byte("user|2026-02-01"), Value: sitewide.AppendValue(nil, valueOf(1, spellings))},
	} {
		if _, ok := f.Rank(m); ok {
			t.Errorf("Rank(%q, %x) ranked", m.Key, m.Value)
		}
	}
}

// The flusher behind its own sink configuration (a fake claim, no
// Kafka): the successive values of many keys, each key's in a random
// order with older ones replayed, in small flushes, on a store that fails
// every third request after writing half its rows: every record is
// marked once its flush is written whole, and the store ends with the
// newest value of every key.
func TestFlushesThroughTheSinkToTheNewestValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	st := newMemStore()
	st.failEvery = 3
	cfg := quietConfig()
	cfg.Brokers, cfg.FlushInterval, cfg.MaxBatch = []string{"x"}, 5*time.Millisecond, 7
	cfg.Backoff = sink.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	f := newFlusher(cfg, st)
	sc := f.sinkConfig()
	if sc.Name != Name || sc.Topic != string(sitewide.Table("")) || sc.Group != Group("") || sc.BatchSize != 7 {
		t.Fatalf("sink config %+v", sc)
	}
	if d := newFlusher(quietConfig(), st).sinkConfig(); d.Linger != 5*time.Second || d.BatchSize != 5000 {
		t.Fatalf("default sink config %+v: want a 5 s flush interval", d)
	}
	sk, err := sink.New(sc, f)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*sarama.ConsumerMessage
	want := map[sitewide.Key]cassandra.SitewideRow{}
	for item := range uint64(12) {
		k := sitewide.Key{Entity: topk.Entities[item%3], Item: item * 0x9e3779b97f4a7c15, Day: day("2026-01-30").AddDate(0, 0, int(item)), Bucket: uint32(item % 2)}
		var ls []listener
		var vals []*sitewide.Value
		for v := range 1 + rng.IntN(9) {
			ls = append(ls, listener{user: fmt.Sprintf("u%02d", v), plays: uint32(1 + rng.IntN(5)), spelling: uint32(rng.IntN(3))})
			if v == 4 {
				ls[0].plays = 0 // listens deleted
			}
			vals = append(vals, valueOf(uint64(v+1), spellings, ls...))
		}
		want[k] = rowOf(k, vals[len(vals)-1])
		for _, i := range rng.Perm(len(vals)) {
			recs = append(recs, recOf(k, vals[i]))
		}
		recs = append(recs, recOf(k, vals[0])) // a replay
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(0, len(recs), int64(len(recs)))
	for i, m := range recs {
		m.Offset, m.Timestamp = int64(i), time.Now()
		claim.Msgs <- m
	}
	done := make(chan error, 1)
	go func() { done <- sk.ConsumeClaim(sess, claim) }()
	sinktest.Eventually(t, 10*time.Second, "every record marked", func() bool { return len(sess.Marked()) == len(recs) })
	close(claim.Msgs)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, off := range sess.Marked() {
		if off != int64(i) {
			t.Fatalf("marked %v, want every offset in order", sess.Marked())
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.rows) != len(want) {
		t.Errorf("%d rows stored, want %d", len(st.rows), len(want))
	}
	for k, w := range want {
		if got := st.rows[k]; got != w {
			t.Errorf("%s: stored %+v, want %+v", k, got, w)
		}
	}
	if st.requests < 3 {
		t.Errorf("%d requests: no failure was injected", st.requests)
	}
}

// The sitewide flusher on the model store passes the sink writers'
// contract.
func TestWriterContract(t *testing.T) {
	st, failing, blocking := newMemStore(), newMemStore(), newMemStore()
	failing.failAll, blocking.block = true, true
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:      func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), st) },
		FailingWriter:  func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), failing) },
		BlockingWriter: func(*testing.T) sinktest.Writer { return newFlusher(quietConfig(), blocking) },
		Records:        contractRecords,
		Stored:         func(_ *testing.T, prefix string) string { return st.dump(contractItems(prefix)) },
		Skipped:        func(t *testing.T) float64 { return sinktest.Metric(t, "topk_sitewide_flusher_records_skipped_total") },
	})
}

// Validate reports missing brokers and negative settings.
func TestConfigValidate(t *testing.T) {
	if err := (Config{Brokers: []string{"x"}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("no brokers: no error")
	}
	if err := (Config{Brokers: []string{"x"}, FlushInterval: -1}).Validate(); err == nil {
		t.Error("negative flush interval: no error")
	}
}

// Write recomputes the rollups of the rows it wrote, after writing them,
// and only then returns nil: rows not written (WriteSitewide failed) have
// no recompute, and a failed recompute fails the flush, so the sink
// writes the batch again and the recompute follows.
func TestWriteRecomputesRollupsAfterTheRows(t *testing.T) {
	st := newMemStore()
	f := newFlusher(quietConfig(), st)
	k := sitewide.Key{Entity: topk.Tracks, Item: 7, Day: day("2025-03-04"), Bucket: 2}
	batch := []*sarama.ConsumerMessage{recOf(k, valueOf(3, spellings, listener{"ann", 2, 0}))}
	ctx := context.Background()

	st.failAll = true
	if err := f.Write(ctx, batch); err == nil {
		t.Fatal("rows not written: Write returned nil")
	}
	if len(st.touched) != 0 {
		t.Fatalf("rows not written: rollups recomputed %d times", len(st.touched))
	}
	st.failAll, st.failRollups = false, true
	if err := f.Write(ctx, batch); err == nil {
		t.Fatal("rollups failed: Write returned nil")
	}
	if len(st.rows) != 1 {
		t.Fatalf("rows written before the rollups: %d, want 1", len(st.rows))
	}
	st.failRollups = false
	if err := f.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if len(st.touched) != 1 || len(st.touched[0]) != 1 || st.touched[0][0].Key != k || st.touched[0][0].Version != 3 {
		t.Errorf("rollups recomputed for %+v, want the one row of %s at version 3", st.touched, k)
	}
}

// The roll-up round asks for the months ending before today −
// RecentDays (UTC), counts its failures, and the loop tries a failed
// round again after RollupRetry.
func TestRollUpRounds(t *testing.T) {
	st := newMemStore()
	cfg := quietConfig()
	cfg.RecentDays = 35
	cfg.RollupEvery = time.Hour
	cfg.RollupRetry = 10 * time.Millisecond
	cfg.Now = func() time.Time { return time.Date(2026, 3, 6, 23, 0, 0, 0, time.FixedZone("x", -3*3600)) }
	f := newFlusher(cfg, st)
	if err := f.rollUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.rollUps) != 1 || st.rollUps[0].Format(topk.DayLayout) != "2026-01-31" {
		t.Errorf("before: %v, want 2026-01-31 (2026-03-07 UTC − 35 days)", st.rollUps)
	}

	st.mu.Lock()
	st.failRollups = true
	st.mu.Unlock()
	errs0 := sinktest.Metric(t, "topk_sitewide_flusher_rollup_errors_total")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.rollUps(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for sinktest.Metric(t, "topk_sitewide_flusher_rollup_errors_total")-errs0 < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st.mu.Lock()
	st.failRollups = false
	st.mu.Unlock()
	for time.Now().Before(deadline) {
		st.mu.Lock()
		n := len(st.rollUps)
		st.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := sinktest.Metric(t, "topk_sitewide_flusher_rollup_errors_total") - errs0; got < 2 {
		t.Errorf("failed rounds counted: %v, want at least 2", got)
	}
	if len(st.rollUps) != 2 {
		t.Errorf("rounds after the failures: %d, want 1 more (retried after RollupRetry, not RollupEvery)", len(st.rollUps)-1)
	}
}
