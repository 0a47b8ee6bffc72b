//go:build integration

package sitewideflusher_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
	"github.com/topk-charts/topk/store/cassandra"
)

// rows reads every row of sitewide_days, one line each (key, write
// timestamp, columns), keeping those of items when items is not nil.
func rows(t *testing.T, ctx context.Context, s *gocql.Session, items map[uint64]bool) string {
	t.Helper()
	it := s.Query(`SELECT entity, month, shard, item, day, bucket, plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days`).
		WithContext(ctx).Iter()
	var lines []string
	var entity, month, name, artist string
	var shard, bucket, listeners int
	var item, plays, ts int64
	var day time.Time
	for it.Scan(&entity, &month, &shard, &item, &day, &bucket, &plays, &listeners, &name, &artist, &ts) {
		if items != nil && !items[uint64(item)] {
			continue
		}
		k := sitewide.Key{Entity: topk.Entity(entity), Item: uint64(item), Day: day, Bucket: uint32(bucket)}
		if month != day.Format("2006-01") || shard != cassandra.SitewideShard(uint64(item)) {
			t.Errorf("row %s in partition (%s, %s, %d)", k, entity, month, shard)
		}
		lines = append(lines, fmt.Sprintf("%s v%d plays %d listeners %d %q %q", k, ts, plays, listeners, name, artist))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return sinktest.Dump(lines)
}

// The sitewide flusher on the real Cassandra passes the sink writers'
// contract; a closed session is the failing store.
func TestIntegrationSitewideFlusherWriterContract(t *testing.T) {
	cfg := testenv.Config(t)
	session, newWriter, failingWriter := sinktest.Cassandra(t, cfg, func(s *gocql.Session) (sinktest.Writer, error) {
		return sitewideflusher.New(sitewideflusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: testenv.Logger(t)}, s)
	})
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:     newWriter,
		FailingWriter: failingWriter,
		Records:       sitewideflusher.ContractRecords,
		Stored: func(t *testing.T, prefix string) string {
			return rows(t, testenv.Context(t, time.Minute), session, sitewideflusher.ContractItems(prefix))
		},
		Skipped: func(t *testing.T) float64 { return sinktest.Metric(t, "topk_sitewide_flusher_records_skipped_total") },
	})
}

// world is the sitewide group's table topic of a namespace, a keyspace,
// and the successive values of a few keys the test produces.
type world struct {
	t       *testing.T
	cfg     config.Config
	topic   string
	session *gocql.Session
	prod    sarama.SyncProducer
	rng     *rand.Rand
	keys    []sitewide.Key
	values  map[sitewide.Key][]*sitewide.Value // value i has Version i+1
	newest  map[sitewide.Key]int               // index of the newest value produced
}

func newWorld(t *testing.T) *world {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	w := &world{t: t, cfg: cfg, topic: string(sitewide.Table(cfg.Namespace)),
		rng:    rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano()))),
		values: map[sitewide.Key][]*sitewide.Value{}, newest: map[sitewide.Key]int{}}
	sinktest.Topic(t, cfg, kafka.TopicSpec{Name: w.topic, Partitions: 4, Config: map[string]string{"cleanup.policy": "compact"}},
		sitewideflusher.Group(cfg.Namespace))
	w.prod = sinktest.Producer(t, cfg, false)
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w.session = s
	// 3 items × 3 entities, days over two months, two buckets and a
	// spill bucket
	for item := range uint64(3) {
		for _, e := range topk.Entities {
			for _, d := range []string{"2026-01-31", "2026-02-01", "2026-02-27"} {
				for _, b := range []uint32{0, 5, 1024} {
					day, _ := time.Parse(topk.DayLayout, d)
					w.keys = append(w.keys, sitewide.Key{Entity: e, Item: (item + 1) * 0x9e3779b97f4a7c15, Day: day, Bucket: b})
				}
			}
		}
	}
	return w
}

var spellings = []sitewide.Spelling{{Name: "Song", Artist: "Band"}, {Name: "SONG", Artist: "BAND"}}

// grow adds n values to every key: each a new listener or more plays of
// one, sometimes a listener's listens deleted (plays 0).
func (w *world) grow(n int) {
	for _, k := range w.keys {
		vals := w.values[k]
		var cur sitewide.Value
		if len(vals) > 0 {
			cur = *vals[len(vals)-1]
			cur.Listeners = slices.Clone(cur.Listeners)
		}
		cur.Spellings = spellings
		for range n {
			cur.Version++
			switch i := w.rng.IntN(len(cur.Listeners) + 1); {
			case i == len(cur.Listeners):
				cur.Listeners = append(cur.Listeners, sitewide.Listener{User: fmt.Sprintf("u%03d", i), Plays: uint32(1 + w.rng.IntN(4)),
					Version: 1, Spelling: uint32(w.rng.IntN(2))})
			case w.rng.IntN(5) == 0:
				cur.Listeners[i].Plays = 0
			default:
				cur.Listeners[i].Plays++
			}
			v := cur
			v.Listeners = slices.Clone(cur.Listeners)
			vals = append(vals, &v)
		}
		w.values[k] = vals
	}
}

// produce sends the values from..to-1 of every key in a random order, then
// the given older values again (replays).
func (w *world) produce(from, to int, replays ...int) {
	var msgs []*sarama.ProducerMessage
	for _, k := range w.keys {
		send := func(i int) {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: w.topic, Key: sarama.StringEncoder(k.String()),
				Value: sarama.ByteEncoder(sitewide.AppendValue(nil, w.values[k][i]))})
		}
		for _, i := range w.rng.Perm(to - from) {
			send(from + i)
		}
		for _, i := range replays {
			send(i)
		}
		w.newest[k] = max(w.newest[k], to-1)
	}
	w.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	sinktest.Send(w.t, w.prod, msgs)
}

// want is what sitewide_days must hold: each key's newest value produced.
func (w *world) want() string {
	var lines []string
	for _, k := range w.keys {
		v := w.values[k][w.newest[k]]
		d := v.Display()
		lines = append(lines, fmt.Sprintf("%s v%d plays %d listeners %d %q %q", k, v.Version, v.Plays(), v.ListenerCount(), d.Name, d.Artist))
	}
	return sinktest.Dump(lines)
}

func (w *world) flusher(cfg sitewideflusher.Config) {
	cfg.Namespace, cfg.Brokers, cfg.Log = w.cfg.Namespace, w.cfg.Kafka.Brokers, testenv.Logger(w.t)
	f, err := sitewideflusher.New(cfg, w.session)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				w.t.Errorf("sitewide flusher Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			w.t.Error("sitewide flusher Run did not return within 20 s of cancellation")
		}
	})
}

// converge waits until sitewide_days holds exactly want.
func (w *world) converge(timeout time.Duration) {
	w.t.Helper()
	want := w.want()
	var got string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got = rows(w.t, ctx, w.session, nil)
		cancel()
		if got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("sitewide_days did not converge within %v:\n%s\nwant\n%s", timeout, got, want)
}

// committed waits until the flusher's group has committed the topic's
// end offsets.
func (w *world) committed(timeout time.Duration) {
	w.t.Helper()
	c, err := sarama.NewClient(w.cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		w.t.Fatal(err)
	}
	hwm := map[int32]int64{}
	for p := range int32(4) {
		if hwm[p], err = c.GetOffset(w.topic, p, sarama.OffsetNewest); err != nil {
			w.t.Fatal(err)
		}
	}
	c.Close()
	a := sinktest.Admin(w.t, w.cfg)
	sinktest.Eventually(w.t, timeout, "offsets committed up to the end", func() bool {
		got := sinktest.Committed(w.t, a, sitewideflusher.Group(w.cfg.Namespace), w.topic, 4)
		for p, h := range hwm {
			if h > 0 && got[p] != h {
				return false
			}
		}
		return true
	})
}

// checkRange compares the Reader's sums over [from, to] with sums
// computed here from the newest values.
func (w *world) checkRange(from, to string) {
	w.t.Helper()
	f, _ := time.Parse(topk.DayLayout, from)
	l, _ := time.Parse(topk.DayLayout, to)
	r := cassandra.NewReader(wiring.Cassandra(w.cfg.Cassandra))
	defer r.Close()
	for _, e := range topk.Entities {
		type sum struct{ plays, listeners int64 }
		want := map[uint64]sum{}
		for _, k := range w.keys {
			if k.Entity != e || k.Day.Before(f) || k.Day.After(l) {
				continue
			}
			v := w.values[k][w.newest[k]]
			s := want[k.Item]
			s.plays += v.Plays()
			s.listeners += int64(v.ListenerCount())
			want[k.Item] = s
		}
		for item, s := range want {
			if s.plays == 0 {
				delete(want, item)
			}
		}
		got, err := r.SitewideRange(testenv.Context(w.t, time.Minute), e, f, l, nil)
		if err != nil {
			w.t.Fatal(err)
		}
		if len(got) != len(want) {
			w.t.Errorf("%s %s..%s: %d items, want %d", e, from, to, len(got), len(want))
		}
		for _, it := range got {
			if s := want[it.Key]; s.plays != it.Plays || s.listeners != it.Listeners || it.Name == "" {
				w.t.Errorf("%s %s..%s item %x: %+v, want %+v", e, from, to, it.Key, it, s)
			}
		}
	}
}

// Table records to the test topic → the flusher → sitewide_days: the
// values of each key produced out of order, in flushes small enough to
// split a key's values across flushes, older values replayed after newer
// ones (also after they were written): each key's row is its newest value
// (its Version the write timestamp), offsets are committed to the end,
// and the Reader's range sums match sums computed from the values. The
// flusher rolls up the two months (every 300 ms, while it writes their
// rows) and recomputes the rollups of the rows it writes after: ranges of
// whole months, read from the rollups, match too.
func TestIntegrationSitewideFlusher(t *testing.T) {
	w := newWorld(t)
	w.grow(10)
	w.produce(0, 10)
	rolled0 := sinktest.Metric(t, "topk_sitewide_flusher_rolled_up_total", "period", "month")
	w.flusher(sitewideflusher.Config{FlushInterval: 200 * time.Millisecond, MaxBatch: 11,
		Backoff: sink.Backoff{Min: 50 * time.Millisecond, Max: time.Second}, RollupEvery: 300 * time.Millisecond})
	w.converge(60 * time.Second)
	w.committed(20 * time.Second)
	w.checkRange("2026-01-31", "2026-02-27")

	rows0 := sinktest.Metric(t, "topk_sitewide_flusher_rows_written_total")
	// Replays alone: older values written after the newer ones lose.
	w.produce(0, 0, 0, 3, 7)
	w.committed(30 * time.Second)
	if n := sinktest.Metric(t, "topk_sitewide_flusher_rows_written_total") - rows0; n == 0 {
		t.Error("the replayed values were not written")
	}
	w.converge(10 * time.Second)

	// More changes, out of order, with replays among them.
	w.grow(6)
	w.produce(10, 16, 1, 12)
	w.converge(60 * time.Second)
	w.committed(20 * time.Second)
	w.checkRange("2026-02-01", "2026-02-27")
	w.checkRange("2026-01-31", "2026-01-31")
	sinktest.Eventually(t, 10*time.Second, "both months of the 3 entities rolled up", func() bool {
		return sinktest.Metric(t, "topk_sitewide_flusher_rolled_up_total", "period", "month")-rolled0 >= 6
	})
	w.checkRange("2026-01-01", "2026-02-28") // whole months: the rollups
	w.grow(4)
	w.produce(16, 20, 2)
	w.converge(60 * time.Second)
	w.committed(20 * time.Second)
	w.checkRange("2026-01-01", "2026-02-28") // recomputed after the rows
	w.checkRange("2026-02-01", "2026-02-27") // the days
	if got := sinktest.Metric(t, "topk_sitewide_flusher_rollup_errors_total"); got != 0 {
		t.Errorf("failed roll-ups: %v", got)
	}
	sinktest.Eventually(t, 5*time.Second, "sink lag back to 0", func() bool {
		return sinktest.Metric(t, "topk_sink_lag", "sink", sitewideflusher.Name) == 0
	})
	t.Logf("%d keys; rows written %v, coalesced %v (sink) + %v (flusher)", len(w.keys),
		sinktest.Metric(t, "topk_sitewide_flusher_rows_written_total"),
		sinktest.Metric(t, "topk_sink_records_coalesced_total", "sink", sitewideflusher.Name),
		sinktest.Metric(t, "topk_sitewide_flusher_changes_coalesced_total"))
}
