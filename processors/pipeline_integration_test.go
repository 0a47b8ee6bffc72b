//go:build integration

package processors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/lovoo/goka"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
)

// expected is the independent count: per user-day key, the distinct event
// identities and per-item plays.
type expected struct {
	seen  map[string]map[listen.Identity]bool
	items map[string]map[topk.Entity]map[uint64]uint32
}

func newExpected() *expected {
	return &expected{seen: map[string]map[listen.Identity]bool{}, items: map[string]map[topk.Entity]map[uint64]uint32{}}
}

func (e *expected) add(l listen.Listen) {
	k := l.Key()
	if e.seen[k] == nil {
		e.seen[k] = map[listen.Identity]bool{}
		e.items[k] = map[topk.Entity]map[uint64]uint32{topk.Tracks: {}, topk.Artists: {}, topk.Albums: {}}
	}
	if e.seen[k][l.Identity()] {
		return
	}
	e.seen[k][l.Identity()] = true
	e.items[k][topk.Tracks][l.TrackKey()]++
	e.items[k][topk.Artists][l.ArtistKey()]++
	if l.AlbumName != "" {
		e.items[k][topk.Albums][l.AlbumKey()]++
	}
}

// delete takes a counted listen out, as the aggregator's Day.Delete
// does: a deletion of a listen not counted changes nothing. Items left
// with no plays leave the maps (the checks skip 0-play items and days).
func (e *expected) delete(l listen.Listen) {
	k := l.Key()
	if !e.seen[k][l.Identity()] {
		return
	}
	delete(e.seen[k], l.Identity())
	dec := func(m map[uint64]uint32, key uint64) {
		if m[key]--; m[key] == 0 {
			delete(m, key)
		}
	}
	dec(e.items[k][topk.Tracks], l.TrackKey())
	dec(e.items[k][topk.Artists], l.ArtistKey())
	if l.AlbumName != "" {
		dec(e.items[k][topk.Albums], l.AlbumKey())
	}
}

// generator makes realistic listens: users, a catalogue, days spread over
// three years, and duplicates in other spellings.
type generator struct {
	r     *rand.Rand
	users []string
	now   time.Time
}

func newGenerator(seed uint64, users int) *generator {
	g := &generator{r: rand.New(rand.NewPCG(seed, seed+1)), now: time.Now().UTC()}
	for i := range users {
		g.users = append(g.users, fmt.Sprintf("user-%03d", i))
	}
	return g
}

func (g *generator) listen() listen.Listen {
	a := g.r.IntN(40)
	tr := g.r.IntN(25)
	span := 60 * 24 * time.Hour // most listens are recent: dense user-days
	if g.r.IntN(5) == 0 {
		span = 3 * 365 * 24 * time.Hour // late data, years old
	}
	at := g.now.Add(-time.Duration(g.r.Int64N(int64(span)))).Truncate(time.Second)
	l := listen.Listen{
		UserID:     g.users[g.r.IntN(len(g.users))],
		PlayedAt:   at,
		ArtistName: fmt.Sprintf("Artist %d", a),
		TrackName:  fmt.Sprintf("Track %d of %d", tr, a),
	}
	if tr%3 != 0 {
		l.AlbumName = fmt.Sprintf("Album %d of %d", tr%4, a)
	}
	return l
}

// raw renders a listen as a producer might: with variations that keep its identity.
func (g *generator) raw(l listen.Listen, variant int) string {
	artist, track, played := l.ArtistName, l.TrackName, l.PlayedAt.Format(time.RFC3339)
	switch variant {
	case 1:
		artist, track = strings.ToUpper(artist), "  "+strings.ToLower(track)+" "
	case 2:
		played = strconv.FormatInt(l.PlayedAt.UnixMilli()+int64(g.r.IntN(1000)), 10)
	case 3:
		played = l.PlayedAt.In(time.FixedZone("x", 5*3600+1800)).Format(time.RFC3339)
	}
	if variant == 2 {
		return fmt.Sprintf(`{"user_id":%q,"played_at":%s,"artist_name":%q,"track_name":%q,"album_name":%q}`, l.UserID, played, artist, track, l.AlbumName)
	}
	return fmt.Sprintf(`{"user_id":%q,"played_at":%q,"artist_name":%q,"track_name":%q,"album_name":%q}`, l.UserID, played, artist, track, l.AlbumName)
}

var badRecords = []string{
	``, `not json`, `[]`, `{"user_id":"x"}`, `{"user_id":"","played_at":"2026-01-01T00:00:00Z","artist_name":"a","track_name":"b"}`,
	`{"user_id":"a|b","played_at":"2026-01-01T00:00:00Z","artist_name":"a","track_name":"b"}`,
	`{"user_id":"a","played_at":"1990-01-01T00:00:00Z","artist_name":"a","track_name":"b"}`,
	`{"user_id":"a","played_at":"2999-01-01T00:00:00Z","artist_name":"a","track_name":"b"}`,
	`{"user_id":"a","played_at":"yesterday","artist_name":"a","track_name":"b"}`,
	`{"user_id":"a","played_at":"2026-01-01T00:00:00Z","artist_name":"   ","track_name":"b"}`,
	`{"user_id":"a","played_at":"2026-01-01T00:00:00Z","artist_name":7,"track_name":"b"}`,
	`{"user_id":"a","played_at":"2026-01-01T00:00:00Z","artist_name":"a","track_name":"b"} trailing`,
}

type stack struct {
	maxPlays int // the aggregator's daily cap; 0: the default
	cfg      config.Config
	topics   listen.Topics
	client   sarama.Client
	admin    sarama.ClusterAdmin
}

func newStack(t *testing.T) *stack { return newStackOn(t, testenv.Config(t)) }

// newStackOn is newStack on cfg's servers (e.g. a Kafka broker of the
// test's own: testenv.StartKafka).
func newStackOn(t *testing.T, cfg config.Config) *stack {
	s := &stack{cfg: cfg, topics: testenv.Topics(t, cfg)}
	var err error
	if s.client, err = sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test")); err != nil {
		t.Fatal(err)
	}
	if s.admin, err = sarama.NewClusterAdminFromClient(s.client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.admin.Close() })
	return s
}

func (s *stack) settings(t *testing.T) processors.Settings {
	return processors.Settings{Brokers: s.cfg.Kafka.Brokers, Replication: s.cfg.Kafka.ReplicationFactor,
		MinInsync: s.cfg.Kafka.MinInsyncReplicas, StateDir: t.TempDir(), Log: testenv.Logger(t)}
}

// run starts ingest and the aggregator in this process until the test
// ends, and with a session also the raw writer and the flusher.
func (s *stack) run(t *testing.T, session *gocql.Session) { s.start(t, session) }

// start runs the processors and returns a function that stops them and
// waits (also called when the test ends).
func (s *stack) start(t *testing.T, session *gocql.Session) (stop func()) {
	set := s.settings(t)
	ip, err := ingest.New(set, ingest.Config{Namespace: s.cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	acfg, err := aggregator.Setup(t.Context(), set, aggregator.Config{Namespace: s.cfg.Namespace, MaxPlaysPerDay: s.maxPlays})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := aggregator.New(set, acfg, set.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	runs := []func(context.Context) error{ip.Run, ap.Run}
	if session != nil {
		rw, err := rawwriter.New(rawwriter.Config{Namespace: s.cfg.Namespace, Brokers: s.cfg.Kafka.Brokers, Log: set.Log}, session)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := flusher.New(flusher.Config{Namespace: s.cfg.Namespace, Brokers: s.cfg.Kafka.Brokers, Log: set.Log,
			FlushInterval: 200 * time.Millisecond}, session)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rw.Run, fl.Run)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errs <- run(ctx) }()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			for range runs {
				if err := <-errs; err != nil {
					t.Errorf("processor: %v", err)
				}
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (s *stack) produce(t *testing.T, msgs []*sarama.ProducerMessage) {
	p, err := sarama.NewSyncProducerFromClient(s.client)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consoleProduce sends lines through the real kafka-console-producer;
// keyed lines are "key<TAB>value".
func (s *stack) consoleProduce(t *testing.T, lines []string, keyed bool) {
	_, file, _, _ := runtime.Caller(0)
	args := []string{"--bootstrap-server", strings.Join(s.cfg.Kafka.Brokers, ","), "--topic", string(s.topics.Raw)}
	if keyed {
		args = append(args, "--property", "parse.key=true", "--property", "key.separator=\t")
	}
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "..", "bin", "kafka-console-producer"), args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kafka-console-producer: %v\n%s", err, out)
	}
}

// waitCaughtUp waits until ingest and the aggregator committed everything.
func (s *stack) waitCaughtUp(t *testing.T, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, gt := range [][2]string{
		{string(ingest.Group(s.cfg.Namespace)), string(s.topics.Raw)},
		{string(aggregator.Group(s.cfg.Namespace)), string(s.topics.Valid)},
	} {
		if err := kafka.WaitCaughtUp(ctx, s.client, s.admin, gt[0], gt[1], nil); err != nil {
			t.Fatal(err)
		}
	}
}

// table reads the aggregator table through a Goka view.
func (s *stack) table(t *testing.T) map[string]*aggregator.Day {
	set := s.settings(t)
	v, err := goka.NewView(s.cfg.Kafka.Brokers, aggregator.Table(s.cfg.Namespace), aggregator.DayCodec{},
		set.ViewOptions("topk-test-view", "")...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(time.Minute)
	for !v.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("view did not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	it, err := v.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Release()
	out := map[string]*aggregator.Day{}
	for it.Next() {
		val, err := it.Value()
		if err != nil {
			t.Fatalf("%s: %v", it.Key(), err)
		}
		out[it.Key()] = val.(*aggregator.Day)
	}
	return out
}

func (s *stack) checkTable(t *testing.T, want *expected) { checkTableOf(t, s.table(t), want) }

// checkTableOf compares a table read by stack.table with the independent count.
func checkTableOf(t *testing.T, got map[string]*aggregator.Day, want *expected) {
	if len(got) != len(want.seen) {
		t.Errorf("table has %d user-days, want %d", len(got), len(want.seen))
	}
	bad := 0
	for k, ids := range want.seen {
		d := got[k]
		if d == nil {
			t.Errorf("%s missing from the table", k)
			bad++
			continue
		}
		if int(d.Total) != len(ids) {
			t.Errorf("%s: %d plays, want %d", k, d.Total, len(ids))
			bad++
		}
		for _, e := range topk.Entities {
			m := map[uint64]uint32{}
			for _, it := range d.Items(e) {
				if it.Plays > 0 { // a deleted listen's item may keep its place
					m[it.Key] = it.Plays
				}
			}
			if fmt.Sprint(m) != fmt.Sprint(want.items[k][e]) {
				t.Errorf("%s %s: %v, want %v", k, e, m, want.items[k][e])
				bad++
			}
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

// dlqSources reads the DLQ to its end and returns the distinct source
// offsets of its letters, and their count with repetitions.
func (s *stack) dlqSources(t *testing.T) (map[string]string, int) {
	c, err := sarama.NewConsumerFromClient(s.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, _ := s.client.Partitions(string(s.topics.DLQ))
	out := map[string]string{}
	n := 0
	for _, p := range parts {
		hwm, _ := s.client.GetOffset(string(s.topics.DLQ), p, sarama.OffsetNewest)
		if hwm == 0 {
			continue
		}
		pc, err := c.ConsumePartition(string(s.topics.DLQ), p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			h := map[string]string{}
			for _, r := range m.Headers {
				h[string(r.Key)] = string(r.Value)
			}
			out[h[processors.HeaderTopic]+"/"+h[processors.HeaderPartition]+"/"+h[processors.HeaderOffset]] = h[processors.HeaderReason]
			n++
			if m.Offset+1 >= hwm {
				break
			}
		}
		pc.Close()
	}
	return out, n
}

// 50k+ listens with duplicates (some under other keys, other spellings,
// other time formats), records with no key and wrong keys through the real
// kafka-console-producer, and bad records: the Goka table equals an
// independent count, and the DLQ holds exactly the bad records.
func TestIntegrationPipelineExact(t *testing.T) {
	s := newStack(t)
	g := newGenerator(42, 300)
	want := newExpected()
	var msgs []*sarama.ProducerMessage
	var sent []listen.Listen
	bad := 0
	for i := range 50_000 {
		var l listen.Listen
		variant := 0
		if i > 0 && g.r.IntN(10) == 0 { // a duplicate of an earlier listen
			l = sent[g.r.IntN(len(sent))]
			variant = g.r.IntN(4)
		} else {
			l = g.listen()
			sent = append(sent, l)
		}
		want.add(l)
		m := &sarama.ProducerMessage{Topic: string(s.topics.Raw), Value: sarama.StringEncoder(g.raw(l, variant))}
		switch g.r.IntN(3) { // any key or none
		case 0:
			m.Key = sarama.StringEncoder(l.UserID)
		case 1:
			m.Key = sarama.StringEncoder("junk-" + strconv.Itoa(g.r.IntN(1000)))
		}
		msgs = append(msgs, m)
		if i%500 == 0 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Value: sarama.StringEncoder(badRecords[g.r.IntN(len(badRecords))])})
			bad++
		}
	}
	msgs = append(msgs, &sarama.ProducerMessage{Topic: string(s.topics.Raw), Key: sarama.StringEncoder("tombstone")}) // no value at all
	bad++
	s.produce(t, msgs)

	// The real console producer: lines with no key, and lines under wrong keys.
	var unkeyed, keyed []string
	for i := range 20 {
		l := g.listen()
		want.add(l)
		unkeyed = append(unkeyed, g.raw(l, i%4))
		l2 := g.listen()
		want.add(l2)
		keyed = append(keyed, "someone-else-"+strconv.Itoa(i)+"\t"+g.raw(l2, 0))
	}
	unkeyed = append(unkeyed, `{"user_id":"console","played_at":"not a time","artist_name":"a","track_name":"b"}`)
	bad++
	s.consoleProduce(t, unkeyed, false)
	s.consoleProduce(t, keyed, true)

	session := s.keyspace(t)
	s.run(t, session)
	s.waitCaughtUp(t, 3*time.Minute)
	s.checkTable(t, want)
	s.waitSinks(t, 3*time.Minute)
	s.checkCassandra(t, session, want)
	sources, n := s.dlqSources(t)
	if len(sources) != bad {
		t.Errorf("DLQ holds %d distinct bad records (%d letters), want %d", len(sources), n, bad)
	}
	t.Logf("%d records, %d user-days, %d dead letters", len(msgs)+41, len(want.seen), n)
}
