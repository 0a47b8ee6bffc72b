//go:build integration

package flusher_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/store/cassandra"
)

const partitions = 4

// world is a namespaced aggregator table topic, a keyspace, and the
// successive states of a few user-days the test produces.
type world struct {
	t       *testing.T
	cfg     config.Config
	topic   string
	parts   int32 // partitions of topic
	session *gocql.Session
	prod    sarama.SyncProducer
	rng     *rand.Rand

	keys   []string
	states map[string][][]byte // key → encoded states, in order (state i has version i+1)
	days   map[string]*aggregator.Day
	// listens are the listens counted in each key's newest state (what
	// delete can take out)
	listens map[string][]aggregator.Play
	// expected is the state each key must end with in Cassandra: the
	// highest version produced so far.
	expected map[string]int // key → index into states
}

// Days across two years and three months, some users with gaps.
var testDays = []string{"2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02", "2026-01-31", "2026-02-01"}

func newWorld(t *testing.T) *world {
	return newWorldOf(t, []string{"ann", "ben", "cat"}, testDays, true)
}

// newWorldOf has the user-days users × days (with some gaps if gaps).
func newWorldOf(t *testing.T, users, days []string, gaps bool) *world {
	w := newEmptyWorld(t, partitions, nil)
	for u, user := range users {
		for d, day := range days {
			if gaps && (u+d)%5 == 4 {
				continue
			}
			w.keys = append(w.keys, user+"|"+day)
		}
	}
	return w
}

// newEmptyWorld has no user-days yet; observe, if not nil, watches the
// world's Cassandra session (the one the flushers use).
func newEmptyWorld(t *testing.T, parts int32, observe *cqlCounter) *world {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	w := &world{t: t, cfg: cfg, topic: string(aggregator.Table(cfg.Namespace)), parts: parts,
		rng: rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano()))), states: map[string][][]byte{},
		days: map[string]*aggregator.Day{}, listens: map[string][]aggregator.Play{}, expected: map[string]int{}}
	sinktest.Topic(t, cfg, kafka.TopicSpec{Name: w.topic, Partitions: parts,
		Config: map[string]string{"cleanup.policy": "compact"}}, flusher.Group(cfg.Namespace))
	w.prod = sinktest.Producer(t, cfg, false)
	cl := cassandra.NewCluster(wiring.Cassandra(cfg.Cassandra))
	cl.Keyspace = cfg.Cassandra.Keyspace
	if observe != nil {
		cl.QueryObserver, cl.BatchObserver = observe, observe
	}
	s, err := cl.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w.session = s
	return w
}

// grow adds n plays to every user-day, recording each successive state.
func (w *world) grow(n int) {
	for _, key := range w.keys {
		d := w.days[key]
		if d == nil {
			d = &aggregator.Day{}
			w.days[key] = d
		}
		for added := 0; added < n; {
			i := w.rng.IntN(12) // 12 tracks of 4 artists, spelled in two ways
			a := i % 4
			p := aggregator.Play{
				Sec:       uint32(w.rng.IntN(86400)),
				TrackKey:  uint64(1000 + i),
				ArtistKey: uint64(10 + a),
				Track:     fmt.Sprintf("Song %d", i),
				Artist:    fmt.Sprintf("Band %d", a),
			}
			if w.rng.IntN(2) == 0 {
				p.Track, p.Artist = strings.ToUpper(p.Track), strings.ToUpper(p.Artist)
			}
			if i%3 != 0 { // some tracks have no album
				p.AlbumKey, p.Album = uint64(100+a*2+i%2), fmt.Sprintf("Record %d-%d", a, i%2)
			}
			if d.Add(p) {
				added++
				w.listens[key] = append(w.listens[key], p)
				w.states[key] = append(w.states[key], d.Encode())
			}
		}
	}
}

// delete takes n of key's counted listens out (aggregator.Day.Delete, as
// a delete record would), recording each successive state.
func (w *world) delete(key string, n int) {
	d := w.days[key]
	for range n {
		i := w.rng.IntN(len(w.listens[key]))
		p := w.listens[key][i]
		if got := d.Delete(p.Sec, listen.MSID(p.Artist, p.Track)); got != aggregator.Removed {
			w.t.Fatalf("%s: delete of %+v: %v", key, p, got)
		}
		w.listens[key] = append(w.listens[key][:i], w.listens[key][i+1:]...)
		w.states[key] = append(w.states[key], d.Encode())
	}
}

// produceNew sends, for every key, the states recorded since the newest
// one produced, in order, and updates the expectation.
func (w *world) produceNew() {
	var msgs []*sarama.ProducerMessage
	for _, key := range w.keys {
		for i := w.expected[key] + 1; i < len(w.states[key]); i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: w.topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(w.states[key][i])})
		}
		w.expected[key] = len(w.states[key]) - 1
	}
	sinktest.Send(w.t, w.prod, msgs)
}

// produce sends the states from..to-1 of every key in a random order, then
// the given older states again (replays), and updates the expectation.
func (w *world) produce(from, to int, replays ...int) {
	var msgs []*sarama.ProducerMessage
	for _, key := range w.keys {
		order := w.rng.Perm(to - from)
		for _, i := range order {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: w.topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(w.states[key][from+i])})
		}
		for _, i := range replays {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: w.topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(w.states[key][i])})
		}
		w.expected[key] = max(w.expected[key], to-1)
	}
	w.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] }) // keys interleaved; per key order random anyway
	sinktest.Send(w.t, w.prod, msgs)
}

func (w *world) flusher(cfg flusher.Config) (stop func()) {
	cfg.Namespace, cfg.Brokers, cfg.Log = w.cfg.Namespace, w.cfg.Kafka.Brokers, testenv.Logger(w.t)
	f, err := flusher.New(cfg, w.session)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				w.t.Errorf("flusher Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			w.t.Error("flusher Run did not return within 20 s of cancellation")
		}
	}
	w.t.Cleanup(stop)
	return stop
}

type cell struct {
	name, artist string
	plays, first int64
	spellings    string // the column's bytes (topk.AppendSpellings)
}

// cellOf is the cell of an item as the tables must hold it.
func cellOf(it *topk.Item) cell {
	return cell{it.Name, it.Artist, it.Plays, it.First, string(topk.AppendSpellings(nil, it.Spellings))}
}

type itemKey struct {
	entity string
	item   int64
}

// tables is the content of the four value tables, by partition.
type tables struct {
	days   map[string]map[itemKey]cell // "user|day"
	totals map[string]int64            // "user|day"
	months map[string]map[itemKey]cell // "user|202601"
	years  map[string]map[itemKey]cell // "user|2026"
}

// want computes the tables from the expected day states, independently of
// the flusher's recompute: the days' items summed (topk.Item.Merge: plays
// and spellings, the majority's name and first, the earliest day's
// artist). An item with plays 0 (its listens deleted) is a row with plays
// 0 in its day; in a rollup it adds nothing but the item, and an item with
// plays 0 in every day of the period is a row with plays 0 (the earliest
// day's name, artist and first).
func (w *world) want() tables {
	tb := tables{days: map[string]map[itemKey]cell{}, totals: map[string]int64{}, months: map[string]map[itemKey]cell{}, years: map[string]map[itemKey]cell{}}
	// the sums of "user|202601" and "user|2026", each into its table
	sums := map[string]map[itemKey]*topk.Item{}
	zero := map[string]map[itemKey]bool{} // sums holding an item with plays 0 only
	into := map[string]map[string]map[itemKey]cell{}
	keys := append([]string(nil), w.keys...)
	sort.Strings(keys) // user, then day ascending: the earliest day's artist first
	for _, key := range keys {
		d, err := aggregator.DecodeDay(w.states[key][w.expected[key]])
		if err != nil {
			w.t.Fatal(err)
		}
		user, day, _ := listen.SplitKey(key)
		mk := fmt.Sprintf("%s|%d", user, day.Year()*100+int(day.Month()))
		yk := fmt.Sprintf("%s|%d", user, day.Year())
		tb.totals[key] = int64(d.Total)
		for _, m := range []map[string]map[itemKey]cell{tb.days, tb.months, tb.years} {
			for _, k := range []string{key, mk, yk} {
				if m[k] == nil {
					m[k] = map[itemKey]cell{}
				}
			}
		}
		for _, e := range topk.Entities {
			for _, it := range d.Items(e) {
				k := itemKey{string(e), int64(it.Key)}
				x := it.Topk(day)
				tb.days[key][k] = cellOf(&x)
				for p, table := range map[string]map[string]map[itemKey]cell{mk: tb.months, yk: tb.years} {
					if sums[p] == nil {
						sums[p], into[p], zero[p] = map[itemKey]*topk.Item{}, table, map[itemKey]bool{}
					}
					switch {
					case x.Plays == 0 && sums[p][k] == nil:
						sums[p][k] = &topk.Item{Key: x.Key, Name: x.Name, Artist: x.Artist, First: x.First}
						zero[p][k] = true
					case x.Plays == 0:
					default:
						if sums[p][k] == nil || zero[p][k] {
							sums[p][k], zero[p][k] = &topk.Item{}, false
						}
						sums[p][k].Merge(&x)
					}
				}
			}
		}
	}
	for p, items := range sums {
		for k, it := range items {
			into[p][p][k] = cellOf(it)
		}
	}
	for _, m := range []map[string]map[itemKey]cell{tb.days, tb.months, tb.years} {
		for k, v := range m {
			if len(v) == 0 {
				delete(m, k)
			}
		}
	}
	return tb
}

func (w *world) read(ctx context.Context) (tables, error) {
	tb := tables{days: map[string]map[itemKey]cell{}, totals: map[string]int64{}, months: map[string]map[itemKey]cell{}, years: map[string]map[itemKey]cell{}}
	scan := func(stmt string, into map[string]map[itemKey]cell, part func(user string, p any) string, p any) error {
		iter := w.session.Query(stmt).WithContext(ctx).Iter()
		var user, entity string
		var item int64
		var c cell
		var spellings []byte
		for iter.Scan(&user, p, &entity, &item, &c.name, &c.artist, &c.plays, &c.first, &spellings) {
			k := part(user, p)
			if into[k] == nil {
				into[k] = map[itemKey]cell{}
			}
			c.spellings = string(spellings)
			into[k][itemKey{entity, item}] = c
		}
		return iter.Close()
	}
	var day time.Time
	var month, year int
	if err := scan(`SELECT user_id, day, entity, item, name, artist, plays, first, spellings FROM day_items`, tb.days,
		func(u string, p any) string { return u + "|" + p.(*time.Time).Format(listen.DayLayout) }, &day); err != nil {
		return tb, err
	}
	if err := scan(`SELECT user_id, month, entity, item, name, artist, plays, first, spellings FROM month_items`, tb.months,
		func(u string, p any) string { return fmt.Sprintf("%s|%d", u, *p.(*int)) }, &month); err != nil {
		return tb, err
	}
	if err := scan(`SELECT user_id, year, entity, item, name, artist, plays, first, spellings FROM year_items`, tb.years,
		func(u string, p any) string { return fmt.Sprintf("%s|%d", u, *p.(*int)) }, &year); err != nil {
		return tb, err
	}
	iter := w.session.Query(`SELECT user_id, day, plays FROM user_days`).WithContext(ctx).Iter()
	var user string
	var plays int64
	for iter.Scan(&user, &day, &plays) {
		tb.totals[user+"|"+day.Format(listen.DayLayout)] = plays
	}
	return tb, iter.Close()
}

func diff(what string, got, want map[string]map[itemKey]cell) error {
	for k, wv := range want {
		gv := got[k]
		for ik, c := range wv {
			if gv[ik] != c {
				return fmt.Errorf("%s %s %v: got %+v, want %+v", what, k, ik, gv[ik], c)
			}
		}
		if len(gv) != len(wv) {
			return fmt.Errorf("%s %s: %d rows, want %d", what, k, len(gv), len(wv))
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d partitions, want %d", what, len(got), len(want))
	}
	return nil
}

// converge waits until Cassandra holds exactly what want computes.
func (w *world) converge(timeout time.Duration) {
	w.t.Helper()
	want := w.want()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		// the whole tables (the catch-up's hold about a million rows)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := w.read(ctx)
		cancel()
		if err == nil {
			err = errors.Join(diff("day_items", got.days, want.days), diff("month_items", got.months, want.months),
				diff("year_items", got.years, want.years))
			for k, v := range want.totals {
				if got.totals[k] != v {
					err = errors.Join(err, fmt.Errorf("user_days %s: %d, want %d", k, got.totals[k], v))
					break
				}
			}
			if err == nil && len(got.totals) != len(want.totals) {
				err = fmt.Errorf("user_days: %d rows, want %d", len(got.totals), len(want.totals))
			}
		}
		if err == nil {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("Cassandra did not converge within %v: %v", timeout, last)
}

// hwms are the end offsets of the topic's partitions.
func (w *world) hwms() map[int32]int64 {
	c, err := sarama.NewClient(w.cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer c.Close()
	out := map[int32]int64{}
	for p := range w.parts {
		if out[p], err = c.GetOffset(w.topic, p, sarama.OffsetNewest); err != nil {
			w.t.Fatal(err)
		}
	}
	return out
}

// committedAt waits until the flusher's group has committed exactly hwm.
func (w *world) committedAt(hwm map[int32]int64, timeout time.Duration) {
	w.t.Helper()
	a := sinktest.Admin(w.t, w.cfg)
	var c map[int32]int64
	sinktest.Eventually(w.t, timeout, "flusher offsets committed up to the end", func() bool {
		c = sinktest.Committed(w.t, a, flusher.Group(w.cfg.Namespace), w.topic, w.parts)
		for p, h := range hwm {
			if h > 0 && c[p] != h {
				return false
			}
		}
		return true
	})
}

// Successive states of user-days produced out of order, replays of older
// states after newer ones, flushes small enough to split a key's states
// across flushes: day values equal the newest state, and month and year
// rollups equal sums computed here from the states.
func TestIntegrationFlusherWritesNewestStatesAndRollups(t *testing.T) {
	w := newWorld(t)
	w.grow(12)
	w.produce(0, 12)
	w.flusher(flusher.Config{FlushInterval: 200 * time.Millisecond, MaxBatch: 7,
		Backoff: sink.Backoff{Min: 50 * time.Millisecond, Max: time.Second}})
	w.converge(40 * time.Second)
	w.committedAt(w.hwms(), 15*time.Second)

	// More plays, their states out of order, then replays of old states.
	w.grow(9)
	w.produce(12, 21, 0, 5, 11)
	w.converge(40 * time.Second)
	w.committedAt(w.hwms(), 15*time.Second)
	sinktest.Eventually(t, 5*time.Second, "sink lag and flush lag back to 0", func() bool {
		return sinktest.Metric(t, "topk_sink_lag", "sink", flusher.Name) == 0 &&
			sinktest.Metric(t, "topk_sink_oldest_unwritten_seconds", "sink", flusher.Name) == 0
	})
	t.Logf("flushed %d user-days in %d months; days written %v, coalesced %v",
		len(w.keys), len(w.want().months), sinktest.Metric(t, "topk_flusher_days_written_total"),
		sinktest.Metric(t, "topk_flusher_changes_coalesced_total")+sinktest.Metric(t, "topk_sink_records_coalesced_total", "sink", flusher.Name))
}

// Deletions: days flushed, then listens deleted (aggregator.Day.Delete,
// each deletion a new state with a lower total and a higher version, as
// the aggregator's changelog carries them): day_items, user_days,
// month_items and year_items hold exactly the decremented counts (items
// and days with no plays left as rows with plays 0), and the api's Reader
// shows no day and no item with 0 plays: a user whose first days lost
// every listen starts on the first day with plays left.
func TestIntegrationFlusherAppliesDeletes(t *testing.T) {
	w := newWorldOf(t, []string{"ann", "ben"}, []string{"2025-12-31", "2026-01-01", "2026-01-02", "2026-02-01"}, false)
	w.grow(5)
	w.produce(0, 5)
	w.flusher(flusher.Config{FlushInterval: 200 * time.Millisecond, MaxBatch: 7,
		Backoff: sink.Backoff{Min: 50 * time.Millisecond, Max: time.Second}})
	w.converge(40 * time.Second)

	for _, key := range w.keys {
		switch {
		case strings.HasPrefix(key, "ben|2025") || key == "ben|2026-01-01":
			w.delete(key, len(w.listens[key])) // every listen: the day goes to 0
		default:
			w.delete(key, 2)
		}
	}
	w.produceNew()
	w.converge(40 * time.Second)
	w.committedAt(w.hwms(), 15*time.Second)

	want := w.want()
	if got := want.totals["ann|2026-01-01"]; got != 3 {
		t.Fatalf("the expectation: ann's day has %d plays, want 3", got)
	}
	if got := want.totals["ben|2026-01-01"]; got != 0 {
		t.Fatalf("the expectation: ben's day has %d plays, want 0", got)
	}
	ctx := testenv.Context(t, time.Minute)
	r := cassandra.NewReader(wiring.Cassandra(w.cfg.Cassandra))
	defer r.Close()
	d := func(s string) time.Time { x, _ := time.Parse(listen.DayLayout, s); return x }
	if f, ok, err := r.FirstDay(ctx, "ben"); err != nil || !ok || !f.Equal(d("2026-01-02")) {
		t.Errorf("ben's first day %v %v %v, want 2026-01-02 (the days before lost every listen)", f, ok, err)
	}
	days, err := r.UserDays(ctx, "ben", d("2025-12-01"), d("2026-02-28"))
	if err != nil || len(days) != 2 || !days[0].Day.Equal(d("2026-01-02")) || days[0].Plays != 3 || days[1].Plays != 3 {
		t.Errorf("ben's days %+v %v, want 2026-01-02 and 2026-02-01 with 3 plays each", days, err)
	}
	for _, p := range []topk.Period{topk.DayPeriod(d("2026-01-01")), topk.DayPeriod(d("2025-12-31")), topk.YearPeriod(d("2025-12-31")),
		topk.MonthPeriod(d("2025-12-31"))} {
		for _, e := range topk.Entities {
			if items, err := r.Items(ctx, p, "ben", e); err != nil || len(items) != 0 {
				t.Errorf("ben's %s %v: %+v %v, want none", e, p, items, err)
			}
		}
	}
	// January: what the api shows is exactly the rows with plays, and
	// they sum to the month's plays
	jan := want.months["ben|202601"]
	for _, e := range topk.Entities {
		items, err := r.Items(ctx, topk.MonthPeriod(d("2026-01-01")), "ben", e)
		if err != nil {
			t.Fatal(err)
		}
		var shown, wanted int
		var plays int64
		for _, it := range items {
			if it.Plays <= 0 || jan[itemKey{string(e), int64(it.Key)}].plays != it.Plays {
				t.Errorf("ben's January %s %+v, want %d plays", e, it, jan[itemKey{string(e), int64(it.Key)}].plays)
			}
			shown++
			plays += it.Plays
		}
		for k, c := range jan {
			if k.entity == string(e) && c.plays > 0 {
				wanted++
			}
		}
		if shown != wanted || (e != topk.Albums && plays != 3) {
			t.Errorf("ben's January %s: %d items with %d plays shown, want %d with 3", e, shown, plays, wanted)
		}
	}
}

// A tombstone, a value that is not a day state and a key that is not
// user|day are counted and skipped: they do not stop the flusher.
func TestIntegrationFlusherTombstonesAndGarbageDoNotStop(t *testing.T) {
	w := newWorld(t)
	w.grow(5)
	w.produce(0, 5)
	skipped0 := sinktest.Metric(t, "topk_flusher_records_skipped_total")
	bad := []*sarama.ProducerMessage{
		{Topic: w.topic, Key: sarama.StringEncoder(w.keys[0]), Value: nil},                       // tombstone
		{Topic: w.topic, Key: sarama.StringEncoder(w.keys[1]), Value: sarama.StringEncoder("x")}, // undecodable
		{Topic: w.topic, Key: sarama.StringEncoder("no day"), Value: sarama.ByteEncoder(w.states[w.keys[0]][0])},
	}
	sinktest.Send(t, w.prod, bad)
	w.flusher(flusher.Config{FlushInterval: 100 * time.Millisecond})
	w.converge(40 * time.Second)
	w.committedAt(w.hwms(), 15*time.Second)
	if n := sinktest.Metric(t, "topk_flusher_records_skipped_total") - skipped0; n != 3 {
		t.Errorf("%v records skipped, want 3", n)
	}
}

// Throughput: 100 users × 62 days (two months, two years) of 20 plays,
// one state each, flushed by one flusher with the default settings.
func TestIntegrationFlusherThroughput(t *testing.T) {
	var users, days []string
	for u := range 100 {
		users = append(users, fmt.Sprintf("user%03d", u))
	}
	for d := range 62 {
		days = append(days, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d).Format(listen.DayLayout))
	}
	w := newWorldOf(t, users, days, false)
	w.grow(20)
	n := len(w.keys)
	for _, key := range w.keys { // only the newest state of each user-day
		w.states[key] = w.states[key][len(w.states[key])-1:]
	}
	w.produce(0, 1)
	hwm := w.hwms()
	rows0 := sinktest.Metric(t, "topk_flusher_rows_written_total", "table", "day_items")
	months0 := sinktest.Metric(t, "topk_flusher_rollups_written_total", "level", "month")
	years0 := sinktest.Metric(t, "topk_flusher_rollups_written_total", "level", "year")
	start := time.Now()
	w.flusher(flusher.Config{})
	// Days are counted once a flush has written all of its days, and offsets
	// committed once its rollups are written too: time to the commits.
	w.committedAt(hwm, 50*time.Second)
	elapsed := time.Since(start)
	w.converge(30 * time.Second)
	t.Logf("%d user-days (%v day_items rows) of %d users, 2 months and 2 years each: %v month and %v year recomputes; "+
		"flushed and committed %v after the flusher started (consumer group join included): %.0f user-days/s",
		n, sinktest.Metric(t, "topk_flusher_rows_written_total", "table", "day_items")-rows0, len(users),
		sinktest.Metric(t, "topk_flusher_rollups_written_total", "level", "month")-months0,
		sinktest.Metric(t, "topk_flusher_rollups_written_total", "level", "year")-years0,
		elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}

// repoRoot is the module root (deploy/local lives there).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// stack runs a deploy/local script action with the configuration of
// `topk config --shell`, as stack.sh does.
func stack(t *testing.T, script string, args ...string) error {
	root := repoRoot(t)
	cmd := exec.Command("bash", append([]string{"-c", `eval "$(bin/topk config --shell)" && exec "$0" "$@"`, "deploy/local/" + script}, args...)...)
	cmd.Dir = root
	out, err := os.CreateTemp(t.TempDir(), "stack")
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	t.Logf("%s %s: %s", script, strings.Join(args, " "), strings.TrimSpace(string(b)))
	return err
}

// Cassandra stopped while changes arrive: the flusher retries without
// marking anything, and once Cassandra is back it catches up exactly.
// Cassandra is started again at the end whatever happens.
func TestIntegrationFlusherCassandraOutage(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot(t), "bin", "topk")); err != nil {
		t.Fatal("bin/topk missing: run make build (make test builds it)")
	}
	w := newWorld(t)
	w.grow(6)
	w.produce(0, 6)
	w.flusher(flusher.Config{FlushInterval: 200 * time.Millisecond,
		Backoff: sink.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	w.converge(40 * time.Second)
	before := w.hwms()
	w.committedAt(before, 15*time.Second)

	t.Cleanup(func() { // whatever happened, leave Cassandra running
		if stack(t, "cassandra.sh", "status") == nil {
			return
		}
		if err := stack(t, "cassandra.sh", "start"); err != nil {
			t.Errorf("restart Cassandra: %v", err)
		}
		if err := stack(t, "cassandra.sh", "wait", "180"); err != nil {
			t.Errorf("Cassandra did not come back: %v", err)
		}
	})
	stopped := time.Now()
	if err := stack(t, "cassandra.sh", "stop"); err != nil {
		t.Fatalf("stop Cassandra: %v", err)
	}
	failures0 := sinktest.Metric(t, "topk_sink_write_failures_total", "sink", flusher.Name)
	w.grow(7)
	w.produce(6, 13, 2)
	sinktest.Eventually(t, 30*time.Second, "flusher retries while Cassandra is down", func() bool {
		return sinktest.Metric(t, "topk_sink_write_failures_total", "sink", flusher.Name)-failures0 >= 3
	})
	// Nothing is marked while the writes fail.
	a := sinktest.Admin(t, w.cfg)
	c := sinktest.Committed(t, a, flusher.Group(w.cfg.Namespace), w.topic, w.parts)
	for p, h := range before {
		if c[p] != h && h > 0 {
			t.Fatalf("partition %d: committed %d while Cassandra is down, want %d", p, c[p], h)
		}
	}
	if sinktest.Metric(t, "topk_sink_retrying", "sink", flusher.Name) == 0 {
		t.Error("topk_sink_retrying is 0 while Cassandra is down")
	}
	if err := stack(t, "cassandra.sh", "start"); err != nil {
		t.Fatalf("start Cassandra: %v", err)
	}
	if err := stack(t, "cassandra.sh", "wait", "180"); err != nil {
		t.Fatalf("Cassandra did not come back: %v", err)
	}
	back := time.Now()
	w.converge(60 * time.Second)
	w.committedAt(w.hwms(), 15*time.Second)
	t.Logf("Cassandra down for %v; flusher caught up %v after it answered again",
		back.Sub(stopped).Round(time.Second), time.Since(back).Round(100*time.Millisecond))
}
