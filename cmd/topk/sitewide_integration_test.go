//go:build integration

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/kafka"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	chartsw "github.com/topk-charts/topk/charts/sitewide"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
	"github.com/topk-charts/topk/store/cassandra"
)

// siteTruth is the independent count of the sitewide charts: every
// distinct listen (user, second, artist, track, folded as the pipeline's
// identity folds them) once, whatever was sent twice.
type siteTruth struct {
	seen    map[string]bool
	listens []listen.Listen
}

// add counts l unless a listen of the same identity was counted.
func (s *siteTruth) add(l listen.Listen) {
	id := l.UserID + "|" + l.PlayedAt.UTC().Truncate(time.Second).Format(time.RFC3339) + "|" +
		fmt.Sprint(listen.TrackKey(l.ArtistName, l.TrackName))
	if s.seen[id] {
		return
	}
	s.seen[id] = true
	s.listens = append(s.listens, l)
}

// siteItem is one item of the independent count over a range.
type siteItem struct {
	key       uint64
	plays     int64
	listeners int64
}

// chart is the count of entity over [from, to] (days, inclusive), in
// plays order (then key: ties are checked as sets).
func (s *siteTruth) chart(entity string, from, to time.Time) []siteItem {
	plays := map[uint64]int64{}
	users := map[uint64]map[string]bool{}
	for _, l := range s.listens {
		d := l.PlayedAt.UTC().Truncate(24 * time.Hour)
		if d.Before(from) || d.After(to) {
			continue
		}
		key, _, ok := itemOf(l, entity)
		if !ok {
			continue
		}
		plays[key]++
		if users[key] == nil {
			users[key] = map[string]bool{}
		}
		users[key][l.UserID] = true
	}
	out := make([]siteItem, 0, len(plays))
	for k, p := range plays {
		out = append(out, siteItem{k, p, int64(len(users[k]))})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].plays != out[j].plays {
			return out[i].plays > out[j].plays
		}
		return out[i].key < out[j].key
	})
	return out
}

// zipf draws 0..n-1 with P(i) ∝ 1/(i+1)^s.
type zipf struct{ cdf []float64 }

func newZipf(n int, s float64) *zipf {
	z := &zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

func (z *zipf) draw(r *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, r.Float64())
	return min(i, len(z.cdf)-1)
}

// siteListens makes n distinct listens of users over the two years before
// now, on a Zipf catalogue of tracks (each track one artist and, for most,
// one album), every played_at of a user distinct.
func siteListens(r *rand.Rand, now time.Time, n, users, tracks int) []listen.Listen {
	z := newZipf(tracks, 1.0)
	used := map[string]bool{}
	out := make([]listen.Listen, 0, n)
	for len(out) < n {
		user := fmt.Sprintf("user-%04d", r.IntN(users))
		span := 30 * 24 * time.Hour
		if r.IntN(3) == 0 {
			span = 2 * 365 * 24 * time.Hour
		}
		at := now.Add(-time.Duration(r.Int64N(int64(span)))).Truncate(time.Second)
		if used[user+at.String()] {
			continue
		}
		used[user+at.String()] = true
		t := z.draw(r)
		l := listen.Listen{UserID: user, PlayedAt: at,
			ArtistName: fmt.Sprintf("Artist %d", t/10), TrackName: fmt.Sprintf("Track %d", t)}
		if t%4 != 0 {
			l.AlbumName = fmt.Sprintf("Album %d", t/5)
		}
		out = append(out, l)
	}
	return out
}

// siteAnswer asks the api for a sitewide chart page.
func (a *apiUnderTest) siteAnswer(entity string, q url.Values) chartsw.Answer {
	a.t.Helper()
	code, body := a.get("/v1/charts/top/" + entity + "?" + q.Encode())
	if code != 200 {
		a.t.Fatalf("sitewide %s %s: %d %s", entity, q.Encode(), code, body)
	}
	var ans chartsw.Answer
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		a.t.Fatalf("sitewide %s: %v: %s", entity, err, body)
	}
	return ans
}

// checkSite compares the api's top k of entity over the range with the
// independent count: totals, and each rank's plays; items above the last
// rank's plays exactly, the items tied at it as a subset of the count's;
// listeners where the answer says they are exact, and never below the
// true distinct listeners where it does not.
func (a *apiUnderTest) checkSite(tr *siteTruth, entity string, q url.Values, from, to time.Time, source string) {
	a.t.Helper()
	const k = 50
	q.Set("k", fmt.Sprint(k))
	ans := a.siteAnswer(entity, q)
	want := tr.chart(entity, from, to)
	label := entity + " " + q.Encode()
	if ans.Source != source {
		a.t.Errorf("%s: source %s, want %s", label, ans.Source, source)
	}
	if ans.Total != len(want) {
		a.t.Errorf("%s: total %d, want %d", label, ans.Total, len(want))
	}
	n := min(k, len(want))
	if len(ans.Items) != n {
		a.t.Fatalf("%s: %d items, want %d", label, len(ans.Items), n)
	}
	if ans.ListenersExact != (source == "view") {
		a.t.Errorf("%s: listeners_exact %v with source %s", label, ans.ListenersExact, source)
	}
	ent := strings.TrimSuffix(entity, "s")
	byKey := map[string]siteItem{}
	for _, w := range want {
		byKey[charts.HexKey(w.key)] = w
	}
	// Ties: the api orders items of equal plays by name, the count by key,
	// so a rank is checked by its plays and its item by membership (an
	// item with those plays in the count); the set above the last rank's
	// plays is then the count's, and at the cut a subset of its ties.
	for i, it := range ans.Items {
		w := want[i]
		if it.Rank != i+1 || it.Plays != w.plays {
			a.t.Errorf("%s: rank %d: %d plays (rank %d), want %d", label, i+1, it.Plays, it.Rank, w.plays)
			continue
		}
		got, ok := byKey[it.IDs[ent]]
		if !ok || got.plays != it.Plays {
			a.t.Errorf("%s: rank %d: item %s with %d plays is not the count's (%+v)", label, i+1, it.IDs[ent], it.Plays, got)
			continue
		}
		switch {
		case ans.ListenersExact && it.Listeners != got.listeners:
			a.t.Errorf("%s: %s: %d listeners, want %d", label, it.IDs[ent], it.Listeners, got.listeners)
		case !ans.ListenersExact && it.Listeners < got.listeners:
			a.t.Errorf("%s: %s: %d listeners, below the %d distinct", label, it.IDs[ent], it.Listeners, got.listeners)
		}
	}
}

// TestIntegrationSitewideCharts: 100,000 distinct listens of 1,000 users
// on a Zipf catalogue, with duplicates (half of them spelled in another
// case) and late listens (a year old, sent last), through ingest, the
// aggregator, the fan-out, the sitewide group and its flusher; the api's
// sitewide charts of several ranges (view, mixed, Cassandra) equal an
// independent count; the counts topic's partitions each get at most twice
// their share.
func TestIntegrationSitewideCharts(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Charts.CacheTTL = time.Second
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)

	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	r := rand.New(rand.NewPCG(15, 1))
	tr := &siteTruth{seen: map[string]bool{}}
	ls := siteListens(r, now, 100_000, 1000, 20_000)
	var msgs, late []*sarama.ProducerMessage
	dups, lates := 0, 0
	for i, l := range ls {
		if i%12 == 0 { // late: a year older, sent after everything else
			l.PlayedAt = l.PlayedAt.AddDate(-1, 0, 0)
			tr.add(l)
			late = append(late, rawMessage(topics, l))
			lates++
			continue
		}
		tr.add(l)
		msgs = append(msgs, rawMessage(topics, l))
		if i%10 == 0 {
			d := l
			if i%20 == 0 {
				d.ArtistName = strings.ToUpper(d.ArtistName)
				d.TrackName = strings.ToLower(d.TrackName)
			}
			msgs = append(msgs, rawMessage(topics, d))
			dups++
		}
	}
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	start := time.Now()
	runCounting(t, cfg)
	runSitewideParts(t, cfg)
	a := startSitewideAPI(t, cfg)
	produce(t, cfg, msgs)
	produce(t, cfg, late)
	t.Logf("sent %d distinct listens of 1,000 users (%d duplicates, %d late) in %v", len(tr.listens), dups, lates, time.Since(start).Round(time.Millisecond))
	waitSitewide(t, cfg)
	t.Logf("sitewide caught up %v after the first send", time.Since(start).Round(time.Millisecond))
	partitionLoad(t, cfg, string(topics.Counts))

	day := func(d time.Time) string { return d.Format(topk.DayLayout) }
	for _, entity := range []string{"tracks", "artists", "albums"} {
		a.checkSite(tr, entity, url.Values{"range": {"7d"}}, today.AddDate(0, 0, -6), today, "view")
		a.checkSite(tr, entity, url.Values{"range": {"30d"}}, today.AddDate(0, 0, -29), today, "view")
		a.checkSite(tr, entity, url.Values{"range": {"365d"}}, today.AddDate(0, 0, -364), today, "mixed")
		a.checkSite(tr, entity, url.Values{"range": {"all"}}, time.Time{}, today, "mixed")
		from, to := today.AddDate(0, 0, -400), today.AddDate(0, 0, -100)
		a.checkSite(tr, entity, url.Values{"from": {day(from)}, "to": {day(to)}}, from, to, "cassandra")
		one := today.AddDate(0, 0, -200)
		a.checkSite(tr, entity, url.Values{"from": {day(one)}, "to": {day(one)}}, one, one, "cassandra")
	}
}

// partitionLoad logs the records of each partition of topic against its
// share and fails past twice the share.
func partitionLoad(t *testing.T, cfg config.Config, topic string) {
	t.Helper()
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int64, len(parts))
	var total int64
	for i, p := range parts {
		newest, err1 := client.GetOffset(topic, p, sarama.OffsetNewest)
		oldest, err2 := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		counts[i] = newest - oldest
		total += counts[i]
	}
	share := float64(total) / float64(len(parts))
	var b strings.Builder
	fmt.Fprintf(&b, "partition load of %s (%d records):\n  partition  records  × share\n", topic, total)
	for i, n := range counts {
		fmt.Fprintf(&b, "  %9d  %7d  %.2f\n", parts[i], n, float64(n)/share)
		if float64(n) > 2*share {
			t.Errorf("partition %d of %s holds %d records, more than twice its share %.0f", parts[i], topic, n, share)
		}
	}
	t.Log(b.String())
}

// runCounting runs ingest and the aggregator in this process until the
// test ends: the sitewide charts need nothing else of the per-user
// pipeline.
func runCounting(t *testing.T, cfg config.Config) {
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: 1, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	ip, err := ingest.New(set, ingest.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	acfg, err := aggregator.Setup(t.Context(), set, aggregator.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := aggregator.New(set, acfg, set.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	runUntilEnd(t, ip.Run, ap.Run)
}

// runUntilEnd runs each of runs until the test ends.
func runUntilEnd(t *testing.T, runs ...func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("processor: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// runSitewideParts runs the fan-out, the sitewide group and the sitewide
// flusher in this process until the test ends.
func runSitewideParts(t *testing.T, cfg config.Config) {
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: 1, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	session, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	fcfg := fanout.Config{Namespace: cfg.Namespace}
	if err := fanout.Setup(t.Context(), set, fcfg); err != nil {
		t.Fatal(err)
	}
	fp, err := fanout.New(set, fcfg, filepath.Join(set.StateDir, "fanout"))
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := sitewide.Setup(t.Context(), set, sitewide.Config{Namespace: cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sitewide.New(set, scfg, filepath.Join(set.StateDir, "sitewide"))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := sitewideflusher.New(sitewideflusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: set.Log,
		FlushInterval: 500 * time.Millisecond}, session)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	runUntilEnd(t, fp.Run, sp.Run, fl.Run)
}

// waitSitewide waits until ingest, the aggregator, the fan-out, the
// group and the sitewide flusher committed everything.
func waitSitewide(t *testing.T, cfg config.Config) {
	t.Helper()
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	for _, gt := range [][2]string{
		{string(ingest.Group(cfg.Namespace)), string(listen.NewTopics(cfg.Namespace).Raw)},
		{string(aggregator.Group(cfg.Namespace)), string(listen.NewTopics(cfg.Namespace).Valid)},
		{string(fanout.Group(cfg.Namespace)), string(fanout.Input(cfg.Namespace))},
		{string(sitewide.Group(cfg.Namespace)), string(listen.NewTopics(cfg.Namespace).Counts)},
		{sitewideflusher.Group(cfg.Namespace), string(sitewide.Table(cfg.Namespace))},
	} {
		if err := kafka.WaitCaughtUp(ctx, client, admin, gt[0], gt[1], nil); err != nil {
			t.Fatalf("%s: %v", gt[0], err)
		}
	}
}

// startSitewideAPI serves newAPI with both views running, and waits
// until the sitewide view recovered too.
func startSitewideAPI(t *testing.T, cfg config.Config) *apiUnderTest {
	a := startAPI(t, cfg, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.parts.siteView.Run(ctx); err != nil {
			t.Errorf("sitewide view: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(time.Minute)
	for !a.parts.siteView.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("the sitewide view did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a
}
