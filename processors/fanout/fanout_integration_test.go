//go:build integration

package fanout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/sitewide"
)

// runProc runs p until the returned stop is called (or the test ends).
func runProc(t *testing.T, p *goka.Processor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestIntegrationFanoutMatchesListens: listens with duplicates (in other
// spellings) and deletions go through ingest, the aggregator and the
// fan-out on the real Kafka, the fan-out stopped and restarted in the
// middle; every Count on the counts topic sits in the partition
// sitewide.Hasher gives its key, and each user's latest Count per key
// sums, per item and day, to the plays and listeners the listens imply.
func TestIntegrationFanoutMatchesListens(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: cfg.Kafka.ReplicationFactor,
		MinInsync: cfg.Kafka.MinInsyncReplicas, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	ctx := testenv.Context(t, 4*time.Minute)

	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}

	// The listens: 60 users, 30 artists, the last 5 days; 10% sent again
	// in another spelling, 5% deleted (after their listen: keyed by user,
	// one raw partition per user keeps the order).
	r := rand.New(rand.NewPCG(15, 15))
	now := time.Now().UTC().Truncate(time.Second)
	type identity struct {
		user string
		sec  int64
		msid string
	}
	alive := map[identity]listen.Listen{}
	var sent []listen.Listen
	var msgs []*sarama.ProducerMessage
	raw := func(l listen.Listen, loud bool) string {
		artist, track := l.ArtistName, l.TrackName
		if loud {
			artist, track = strings.ToUpper(artist), " "+strings.ToLower(track)+" "
		}
		return fmt.Sprintf(`{"user_id":%q,"played_at":%q,"artist_name":%q,"track_name":%q,"album_name":%q}`,
			l.UserID, l.PlayedAt.Format(time.RFC3339), artist, track, l.AlbumName)
	}
	idOf := func(l listen.Listen) identity {
		return identity{l.UserID, l.PlayedAt.Unix(), listen.MSID(l.ArtistName, l.TrackName)}
	}
	for range 3000 {
		var l listen.Listen
		var value string
		switch x := r.IntN(100); {
		case x < 10 && len(sent) > 0:
			l = sent[r.IntN(len(sent))]
			alive[idOf(l)] = l // a deleted listen sent again counts again
			value = raw(l, true)
		case x < 15 && len(sent) > 0:
			l = sent[r.IntN(len(sent))]
			delete(alive, idOf(l))
			value = string(listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}.Encode())
		default:
			a := r.IntN(30)
			tr := r.IntN(12)
			l = listen.Listen{UserID: fmt.Sprintf("user-%02d", r.IntN(60)),
				PlayedAt:   now.Add(-time.Duration(r.Int64N(int64(5 * 24 * time.Hour)))).Truncate(time.Second),
				ArtistName: fmt.Sprintf("Artist %d", a), TrackName: fmt.Sprintf("Track %d of %d", tr, a)}
			if tr%3 != 0 {
				l.AlbumName = fmt.Sprintf("Album %d of %d", tr%4, a)
			}
			sent = append(sent, l)
			alive[idOf(l)] = l
			value = raw(l, false)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(value)})
	}
	produce := func(ms []*sarama.ProducerMessage) {
		t.Helper()
		p, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.SendMessages(ms); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	ip, err := ingest.New(set, ingest.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	acfg, err := aggregator.Setup(ctx, set, aggregator.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := aggregator.New(set, acfg, set.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	fcfg := fanout.Config{Namespace: cfg.Namespace}
	if err := fanout.Setup(ctx, set, fcfg); err != nil {
		t.Fatal(err)
	}
	fdir := t.TempDir()
	startFanout := func() func() {
		fp, err := fanout.New(set, fcfg, fdir)
		if err != nil {
			t.Fatal(err)
		}
		return runProc(t, fp)
	}
	runProc(t, ip)
	runProc(t, ap)
	stopFanout := startFanout()
	waitCaughtUp := func(group goka.Group, topic string) {
		t.Helper()
		if err := kafka.WaitCaughtUp(ctx, client, admin, string(group), topic, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitAll := func() {
		waitCaughtUp(ingest.Group(cfg.Namespace), string(topics.Raw))
		waitCaughtUp(aggregator.Group(cfg.Namespace), string(topics.Valid))
		waitCaughtUp(fanout.Group(cfg.Namespace), string(fanout.Input(cfg.Namespace)))
	}

	half := len(msgs) / 2
	produce(msgs[:half])
	waitAll()
	stopFanout() // the second half reaches the aggregator while the fan-out is away
	produce(msgs[half:])
	waitCaughtUp(aggregator.Group(cfg.Namespace), string(topics.Valid))
	startFanout()
	waitAll()

	// What the sitewide group would keep: per key and user the Count of
	// the highest version.
	n, err := client.Partitions(string(topics.Counts))
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]map[string]sitewide.Count{}
	records := testenv.Records(t, cfg, string(topics.Counts))
	for _, m := range records {
		key := string(m.Key)
		h := sitewide.Hasher()
		h.Write(m.Key)
		want := int32(h.Sum32()) % int32(len(n))
		if want < 0 {
			want = -want
		}
		if m.Partition != want {
			t.Fatalf("count %s in partition %d, sitewide.Hasher says %d", key, m.Partition, want)
		}
		c, err := sitewide.DecodeCount(m.Value)
		if err != nil {
			t.Fatalf("count %s: %v", key, err)
		}
		if held[key] == nil {
			held[key] = map[string]sitewide.Count{}
		}
		if old, ok := held[key][c.User]; !ok || c.Version > old.Version {
			held[key][c.User] = c
		}
	}

	type item struct {
		entity topk.Entity
		key    uint64
		day    string
	}
	type figures struct{ plays, listeners int }
	want := map[item]figures{}
	listeners := map[item]map[string]bool{}
	for _, l := range alive {
		artist, track, album := l.ItemKeys()
		for e, k := range map[topk.Entity]uint64{topk.Tracks: track, topk.Artists: artist, topk.Albums: album} {
			if k == 0 {
				continue
			}
			it := item{e, k, l.Day()}
			f := want[it]
			f.plays++
			if listeners[it] == nil {
				listeners[it] = map[string]bool{}
			}
			if !listeners[it][l.UserID] {
				listeners[it][l.UserID] = true
				f.listeners++
			}
			want[it] = f
		}
	}
	got := map[item]figures{}
	for key, byUser := range held {
		k, err := sitewide.ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		it := item{k.Entity, k.Item, k.Day.Format(listen.DayLayout)}
		for user, c := range byUser {
			if k.Bucket != sitewide.BucketOf(user) {
				t.Errorf("%s holds a Count of %s (bucket %d)", key, user, sitewide.BucketOf(user))
			}
			if c.Plays > 0 {
				f := got[it]
				f.plays += int(c.Plays)
				f.listeners++
				got[it] = f
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d items with plays, want %d", len(got), len(want))
	}
	bad := 0
	for it, w := range want {
		if g := got[it]; g != w {
			if bad++; bad <= 10 {
				t.Errorf("%s %016x on %s: %+v, want %+v", it.entity, it.key, it.day, g, w)
			}
		}
	}
	t.Logf("%d records sent, %d listens alive, %d items, %d Counts on %d partitions", len(msgs), len(alive), len(want), len(records), len(n))
}
