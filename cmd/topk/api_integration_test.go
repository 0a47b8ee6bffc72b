//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/store/cassandra"
)

// chartItem is one expected chart line.
type chartItem struct {
	key          uint64
	name, artist string
	plays        int64
}

// truth is the independent count: every distinct listen (first arrival of
// each identity) per user and day, from which charts are computed without
// any of the pipeline's code: plays per item over the range, names by the
// user's all-time majority spelling (majorityNames).
type truth struct {
	days map[string]map[time.Time][]listen.Listen
	ids  map[listen.Identity]bool
}

func newTruth() *truth {
	return &truth{days: map[string]map[time.Time][]listen.Listen{}, ids: map[listen.Identity]bool{}}
}

func (tr *truth) add(l listen.Listen) {
	if tr.ids[l.Identity()] {
		return
	}
	tr.ids[l.Identity()] = true
	d := l.PlayedAt.UTC().Truncate(24 * time.Hour)
	if tr.days[l.UserID] == nil {
		tr.days[l.UserID] = map[time.Time][]listen.Listen{}
	}
	tr.days[l.UserID][d] = append(tr.days[l.UserID][d], l)
}

func (tr *truth) first(user string) time.Time {
	var f time.Time
	for d := range tr.days[user] {
		if f.IsZero() || d.Before(f) {
			f = d
		}
	}
	return f
}

// chart is the user's chart of entity ("tracks", "artists", "albums")
// over [from, to]: the range's plays of each item, shown under the
// user's all-time majority spelling of it (majorityNames).
func (tr *truth) chart(user, entity string, from, to time.Time) []chartItem {
	names := tr.majorityNames(user, entity)
	var artists map[uint64]string
	if entity != "artists" {
		artists = tr.majorityNames(user, "artists")
	}
	acc := map[uint64]*chartItem{}
	for d, ls := range tr.days[user] {
		if d.Before(from) || d.After(to) {
			continue
		}
		for _, l := range ls {
			key, _, ok := itemOf(l, entity)
			if !ok {
				continue
			}
			x := acc[key]
			if x == nil {
				x = &chartItem{key: key, name: names[key]}
				if artists != nil {
					x.artist = artists[listen.ArtistKey(l.ArtistName)]
				}
				acc[key] = x
			}
			x.plays++
		}
	}
	out := make([]chartItem, 0, len(acc))
	for _, x := range acc {
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.plays != b.plays {
			return a.plays > b.plays
		}
		if a.name != b.name {
			return a.name < b.name
		}
		if a.artist != b.artist {
			return a.artist < b.artist
		}
		return a.key < b.key
	})
	return out
}

// itemOf is the key and spelling of a listen's item of entity (ok false:
// a listen without an album).
func itemOf(l listen.Listen, entity string) (key uint64, name string, ok bool) {
	switch entity {
	case "tracks":
		return listen.TrackKey(l.ArtistName, l.TrackName), l.TrackName, true
	case "artists":
		return listen.ArtistKey(l.ArtistName), l.ArtistName, true
	case "albums":
		return listen.AlbumKey(l.ArtistName, l.AlbumName), l.AlbumName, l.AlbumName != ""
	}
	return 0, "", false
}

// majorityNames is the display name of each of the user's items of
// entity, as ARCHITECTURE.md ("Display names") defines it, counted here
// without the pipeline's code: over all of the user's counted listens,
// the spelling most of them used; ties go to the spelling whose first
// listen was played first (to the second), then to the smaller string.
func (tr *truth) majorityNames(user, entity string) map[uint64]string {
	type spelling struct {
		plays int
		first time.Time
	}
	spellings := map[uint64]map[string]*spelling{}
	for _, ls := range tr.days[user] {
		for _, l := range ls {
			key, name, ok := itemOf(l, entity)
			if !ok {
				continue
			}
			if spellings[key] == nil {
				spellings[key] = map[string]*spelling{}
			}
			at := l.PlayedAt.Truncate(time.Second)
			s := spellings[key][name]
			if s == nil {
				s = &spelling{first: at}
				spellings[key][name] = s
			}
			s.plays++
			if at.Before(s.first) {
				s.first = at
			}
		}
	}
	out := map[uint64]string{}
	for key, byName := range spellings {
		best, bs := "", (*spelling)(nil)
		for name, s := range byName {
			if bs == nil || s.plays > bs.plays || (s.plays == bs.plays && (s.first.Before(bs.first) || (s.first.Equal(bs.first) && name < best))) {
				best, bs = name, s
			}
		}
		out[key] = best
	}
	return out
}

// apiGen makes listens of a few users: three years of history, most of it
// recent, spellings that differ in case, every played_at of a user
// distinct.
type apiGen struct {
	r    *rand.Rand
	now  time.Time
	used map[string]bool
}

func (g *apiGen) listen(user string, span time.Duration) listen.Listen {
	for {
		at := g.now.Add(-time.Duration(g.r.Int64N(int64(span)))).Truncate(time.Second)
		if g.used[user+at.String()] {
			continue
		}
		g.used[user+at.String()] = true
		a := g.r.IntN(15)
		tr := g.r.IntN(8)
		l := listen.Listen{UserID: user, PlayedAt: at, ArtistName: fmt.Sprintf("Artist %d", a), TrackName: fmt.Sprintf("Track %d", tr)}
		if g.r.IntN(5) == 0 {
			l.ArtistName = strings.ToUpper(l.ArtistName)
		}
		if g.r.IntN(7) == 0 {
			l.TrackName = strings.ToLower(l.TrackName)
		}
		if tr%3 != 0 {
			l.AlbumName = fmt.Sprintf("Album %d", tr%2)
		}
		return l
	}
}

// rawMessage is a listen as a record of the raw topic.
func rawMessage(topics listen.Topics, l listen.Listen) *sarama.ProducerMessage {
	b, _ := json.Marshal(map[string]string{"user_id": l.UserID, "played_at": l.PlayedAt.Format(time.RFC3339),
		"artist_name": l.ArtistName, "track_name": l.TrackName, "album_name": l.AlbumName})
	return &sarama.ProducerMessage{Topic: string(topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.ByteEncoder(b)}
}

// produce sends msgs to Kafka and waits for their acknowledgement.
func produce(t *testing.T, cfg config.Config, msgs []*sarama.ProducerMessage) {
	t.Helper()
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// pipeline runs ingest, the aggregator, the raw writer and the flusher in
// this process until the test ends.
func runPipeline(t *testing.T, cfg config.Config) {
	set := processors.Settings{Brokers: cfg.Kafka.Brokers, Replication: 1, StateDir: t.TempDir(), Log: testenv.Logger(t)}
	session, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
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
	rw, err := rawwriter.New(rawwriter.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: set.Log, Stored: storedPublisherOf(cfg, set.Log, "raw-writer")}, session)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flusher.New(flusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: set.Log, FlushInterval: 200 * time.Millisecond,
		Stored: storedPublisherOf(cfg, set.Log, "flusher")}, session)
	if err != nil {
		t.Fatal(err)
	}
	runs := []func(context.Context) error{ip.Run, ap.Run, rw.Run, fl.Run}
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
	t.Cleanup(func() { cancel(); wg.Wait(); session.Close() })
}

// waitPipeline waits until every stage committed everything.
func waitPipeline(t *testing.T, cfg config.Config, topics listen.Topics) {
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, gt := range [][2]string{
		{string(ingest.Group(cfg.Namespace)), string(topics.Raw)},
		{string(aggregator.Group(cfg.Namespace)), string(topics.Valid)},
		{rawwriter.Group(cfg.Namespace), string(topics.Valid)},
		{flusher.Group(cfg.Namespace), string(aggregator.Table(cfg.Namespace))},
	} {
		if err := kafka.WaitCaughtUp(ctx, client, admin, gt[0], gt[1], nil); err != nil {
			t.Fatalf("%s: %v", gt[0], err)
		}
	}
}

// apiUnderTest is newAPI served over HTTP on a port of its own.
type apiUnderTest struct {
	t       *testing.T
	url     string
	parts   *apiParts
	cfg     config.Config
	running bool          // runView started the view and the notices' reader
	client  sarama.Client // settle's, opened on its first call
	stopRun func()
}

// settle waits until the api has read every notice of the stored topic
// written so far, then for the charts' background fills: after
// waitPipeline, no answer cached before the flusher's last writes is
// served (the notices reach the api a moment after the flusher commits).
func (a *apiUnderTest) settle() {
	a.t.Helper()
	if !a.running {
		a.parts.charts.Settle()
		return
	}
	if a.client == nil {
		client, err := sarama.NewClient(a.cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
		if err != nil {
			a.t.Fatal(err)
		}
		a.client = client
		a.t.Cleanup(func() { _ = client.Close() })
	}
	client := a.client
	topic := string(listen.NewTopics(a.cfg.Namespace).Stored)
	parts, err := client.Partitions(topic)
	if err != nil {
		a.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			a.t.Fatal(err)
		}
		for a.parts.gens.ReadTo(p) < end {
			if time.Now().After(deadline) {
				a.t.Fatalf("the api read %s/%d to %d, not to its end %d", topic, p, a.parts.gens.ReadTo(p), end)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a.parts.charts.Settle()
}

func startAPI(t *testing.T, cfg config.Config, runView bool) *apiUnderTest {
	env := &Env{Config: cfg, Log: testenv.Logger(t), Stdout: io.Discard, Stderr: io.Discard}
	p, err := newAPI(env, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(p.srv.Echo())
	a := &apiUnderTest{t: t, url: hs.URL, parts: p, cfg: cfg, stopRun: func() {}}
	t.Cleanup(func() { hs.Close(); a.stopRun(); p.close() })
	if runView {
		a.runView()
	}
	return a
}

// startFullAPI serves newFullAPI on env (every route `topk api` serves:
// admin, ListenBrainz, uploads) over HTTP, with its view running.
func startFullAPI(t *testing.T, env *Env) *apiUnderTest {
	p, err := newFullAPI(context.Background(), env, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(p.srv.Echo())
	a := &apiUnderTest{t: t, url: hs.URL, parts: p, cfg: env.Config, stopRun: func() {}}
	t.Cleanup(func() { hs.Close(); a.stopRun(); p.close() })
	a.runView()
	return a
}

func (a *apiUnderTest) runView() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.parts.view.Run(ctx); err != nil {
			a.t.Errorf("view: %v", err)
		}
	}()
	gensDone := make(chan struct{})
	go func() { // as `topk api` runs it (component api-stored)
		defer close(gensDone)
		_ = a.parts.gens.Run(ctx)
	}()
	a.stopRun = func() { cancel(); <-done; <-gensDone }
	a.running = true
	deadline := time.Now().Add(time.Minute)
	for !a.parts.view.Recovered() {
		if time.Now().After(deadline) {
			a.t.Fatal("the view did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *apiUnderTest) get(path string, auth ...string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type topBody struct {
	Range struct {
		Name, From, To string
	} `json:"range"`
	Source string `json:"source"`
	Total  int    `json:"total"`
	Items  []struct {
		Rank   int               `json:"rank"`
		Name   string            `json:"name"`
		Artist string            `json:"artist"`
		Plays  int64             `json:"plays"`
		IDs    map[string]string `json:"ids"`
	} `json:"items"`
}

// checkTop compares an answer with the truth; source "" accepts any.
func (a *apiUnderTest) checkTop(tr *truth, user, entity, query string, from, to time.Time, source string) {
	a.t.Helper()
	a.warm(user, entity)
	code, body := a.get("/v1/users/" + url.PathEscape(user) + "/top/" + entity + "?k=1000&" + query)
	if code != 200 {
		a.t.Fatalf("%s %s %s: %d %s", user, entity, query, code, body)
	}
	var got topBody
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		a.t.Fatal(err)
	}
	want := tr.chart(user, entity, from, to)
	if got.Range.From != from.Format(listen.DayLayout) || got.Range.To != to.Format(listen.DayLayout) ||
		(source != "" && got.Source != source) || got.Total != len(want) || len(got.Items) != min(len(want), 1000) {
		a.t.Fatalf("%s %s %s: range %s…%s source %s total %d items %d; want %s…%s %s %d", user, entity, query,
			got.Range.From, got.Range.To, got.Source, got.Total, len(got.Items), from.Format(listen.DayLayout), to.Format(listen.DayLayout), source, len(want))
	}
	for i, it := range got.Items {
		w := want[i]
		if it.Rank != i+1 || it.Name != w.name || it.Artist != w.artist || it.Plays != w.plays || it.IDs[strings.TrimSuffix(entity, "s")] != fmt.Sprintf("%016x", w.key) {
			a.t.Fatalf("%s %s %s: #%d %+v, want %+v", user, entity, query, i+1, it, w)
		}
	}
}

// warm asks for the user's chart of entity once and waits for the
// background fills it starts: the first chart of a range served from the
// view answers with the range's names while the user's all-time part of
// them is filled (charts/names.go).
func (a *apiUnderTest) warm(user, entity string) {
	a.t.Helper()
	a.get("/v1/users/" + url.PathEscape(user) + "/top/" + entity + "?range=7d")
	a.settle()
}

// waitReady polls /readyz (its checks are cached for 2 s).
func (a *apiUnderTest) waitReady() string {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := a.get("/readyz")
		if code == 200 {
			return body
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("readyz: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (a *apiUnderTest) status(path string, auth ...string) int {
	code, _ := a.get(path, auth...)
	return code
}

// End to end over HTTP, on data that went through the real pipeline:
// every range and entity against the independent count, ranges inside
// the view's window, outside and across it, the view not yet recovered,
// Redis down, Cassandra down (recent ranges still answer), activity,
// listens paging, the user search of users who only came through Kafka,
// readiness, metrics and the Goka monitor behind basic auth.
func TestIntegrationAPI(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.API.AdminToken = "tok-api"
	cfg.Charts.CacheTTL = 30 * time.Second
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)

	now := time.Now().UTC()
	g := &apiGen{r: rand.New(rand.NewPCG(4, 2)), now: now, used: map[string]bool{}}
	tr := newTruth()
	users := []string{"Ada", "ada.lovelace", "bob", "Émile", "zoë"}
	var msgs []*sarama.ProducerMessage
	send := func(l listen.Listen, variant bool) {
		tr.add(l)
		played := l.PlayedAt.Format(time.RFC3339)
		if variant { // the same listen again, in another time zone and case
			played = l.PlayedAt.In(time.FixedZone("x", 3*3600)).Format(time.RFC3339)
			l.ArtistName = strings.ToLower(l.ArtistName)
		}
		b, _ := json.Marshal(map[string]string{"user_id": l.UserID, "played_at": played, "artist_name": l.ArtistName,
			"track_name": l.TrackName, "album_name": l.AlbumName})
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.ByteEncoder(b)})
	}
	for i, u := range users {
		n := 1500 + 400*i
		for j := range n {
			span := 60 * 24 * time.Hour
			if j%3 == 0 {
				span = 3 * 365 * 24 * time.Hour
			}
			l := g.listen(u, span)
			send(l, false)
			if j%25 == 0 {
				send(l, true)
			}
		}
	}
	// A user with only old listens (a year and more ago).
	for range 50 {
		l := g.listen("old-timer", 300*24*time.Hour)
		l.PlayedAt = l.PlayedAt.AddDate(-1, 0, 0)
		send(l, false)
	}
	produce(t, cfg, msgs)
	start := time.Now()
	runPipeline(t, cfg)
	waitPipeline(t, cfg, topics)
	t.Logf("%d records through the pipeline in %v", len(msgs), time.Since(start).Round(time.Millisecond))

	today := now.Truncate(24 * time.Hour)
	viewFrom := today.AddDate(0, 0, -34)
	rangeOf := func(name, user string) (time.Time, time.Time) {
		switch name {
		case "today":
			return today, today
		case "7d", "30d", "90d", "180d", "365d":
			var n int
			fmt.Sscanf(name, "%dd", &n)
			return today.AddDate(0, 0, -(n - 1)), today
		case "all":
			return tr.first(user), today
		case "this_week":
			return today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7)), today
		case "this_month":
			return time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC), today
		case "this_year":
			return time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC), today
		}
		t.Fatalf("range %s", name)
		return time.Time{}, time.Time{}
	}
	names := []string{"today", "7d", "30d", "90d", "180d", "365d", "all", "this_week", "this_month", "this_year"}
	entities := []string{"tracks", "artists", "albums"}
	day := func(d time.Time) string { return d.Format(listen.DayLayout) }
	inside := fmt.Sprintf("from=%s&to=%s", day(today.AddDate(0, 0, -20)), day(today.AddDate(0, 0, -3)))
	outside := fmt.Sprintf("from=%s&to=%s", day(today.AddDate(-2, 0, -10)), day(today.AddDate(-1, -2, 0)))
	across := fmt.Sprintf("from=%s&to=%s", day(today.AddDate(0, -3, 0)), day(today.AddDate(0, 0, -1)))
	customs := []struct {
		q        string
		from, to time.Time
		src      string // with the view recovered
	}{
		{inside, today.AddDate(0, 0, -20), today.AddDate(0, 0, -3), "view"},
		{outside, today.AddDate(-2, 0, -10), today.AddDate(-1, -2, 0), "cassandra"},
		{across, today.AddDate(0, -3, 0), today.AddDate(0, 0, -1), "mixed"},
	}

	// 1. The view not yet recovered: everything from Cassandra; not ready.
	a := startAPI(t, cfg, false)
	if code, body := a.get("/readyz"); code != 503 || !strings.Contains(body, `"view"`) {
		t.Fatalf("readyz before the view recovered: %d %s", code, body)
	}
	for _, e := range entities {
		for _, n := range []string{"7d", "all"} {
			from, to := rangeOf(n, "Ada")
			a.checkTop(tr, "Ada", e, "range="+n, from, to, "cassandra")
		}
	}

	// 2. Recovered: every range and entity of every user; sources by range.
	a.runView()
	a.waitReady()
	for _, u := range users {
		for _, e := range entities {
			for _, n := range names {
				from, to := rangeOf(n, u)
				src := "mixed"
				if !from.Before(viewFrom) {
					src = "view"
				}
				a.checkTop(tr, u, e, "range="+n, from, to, src)
			}
			for _, c := range customs {
				a.checkTop(tr, u, e, c.q, c.from, c.to, c.src)
			}
		}
	}
	a.checkTop(tr, "old-timer", "tracks", "range=all", tr.first("old-timer"), today, "")
	if code, _ := a.get("/v1/users/nobody/top/tracks?range=all"); code != 404 {
		t.Errorf("unknown user: %d", code)
	}
	if code, body := a.get("/v1/users/Ada/top/tracks?range=7d&from=2026-01-01&to=2026-01-02"); code != 400 || !strings.Contains(body, `"param":"range"`) {
		t.Errorf("range with from/to: %d %s", code, body)
	}

	// Activity, listens and the search.
	code, body := a.get("/v1/users/bob/activity?range=all")
	var act struct {
		Plays int64 `json:"plays"`
		Days  []struct {
			Day   string `json:"day"`
			Plays int64  `json:"plays"`
		} `json:"days"`
	}
	_ = json.Unmarshal([]byte(body), &act)
	var wantPlays int64
	for _, ls := range tr.days["bob"] {
		wantPlays += int64(len(ls))
	}
	if code != 200 || act.Plays != wantPlays || len(act.Days) != len(tr.days["bob"]) {
		t.Fatalf("activity: %d, %d plays on %d days, want %d on %d", code, act.Plays, len(act.Days), wantPlays, len(tr.days["bob"]))
	}
	var wantListens []string
	for _, ls := range tr.days["zoë"] {
		for _, l := range ls {
			wantListens = append(wantListens, l.PlayedAt.UTC().Format(time.RFC3339))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(wantListens)))
	var gotListens []string
	cursor := ""
	for page := 0; ; page++ {
		q := "limit=333"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		code, body := a.get("/v1/users/" + url.PathEscape("zoë") + "/listens?" + q)
		if code != 200 {
			t.Fatalf("listens page %d: %d %s", page, code, body)
		}
		var p struct {
			Listens []struct {
				PlayedAt time.Time `json:"played_at"`
			} `json:"listens"`
			Next string `json:"next"`
		}
		_ = json.Unmarshal([]byte(body), &p)
		for _, l := range p.Listens {
			gotListens = append(gotListens, l.PlayedAt.UTC().Format(time.RFC3339))
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(gotListens) != fmt.Sprint(wantListens) {
		t.Fatalf("listens of zoë: %d, want %d, newest first", len(gotListens), len(wantListens))
	}
	for q, want := range map[string]string{"prefix=ad": `["Ada","ada.lovelace"]`, "prefix=%C3%A9": `["Émile"]`, "prefix=ZO": `["zoë"]`, "prefix=q": `[]`} {
		code, body := a.get("/v1/users?" + q)
		if code != 200 || !strings.Contains(body, `"users":`+want) {
			t.Errorf("search %s: %d %s, want %s", q, code, body, want)
		}
	}

	// The Goka monitor: 200 with the password, 401 without.
	if c := a.status("/goka/", "admin", "tok-api"); c != 200 {
		t.Errorf("/goka/ with the password: %d", c)
	}
	if c := a.status("/goka/monitor/", "admin", "tok-api"); c != 200 {
		t.Errorf("/goka/monitor/ with the password: %d", c)
	}
	if c := a.status("/goka/"); c != 401 {
		t.Errorf("/goka/ without: %d", c)
	}
	if c := a.status("/goka/", "admin", "nope"); c != 401 {
		t.Errorf("/goka/ with a wrong password: %d", c)
	}
	_, metrics := a.get("/metrics")
	for _, m := range []string{"topk_view_lag ", "topk_view_recovered 1", `source="view"`, `source="mixed"`, "topk_api_cache_requests_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// 3. Redis down (a wrong address): served uncached, still ready.
	noRedis := cfg
	noRedis.Redis.Addr, noRedis.Redis.CacheAddr = "127.0.0.1:1", "127.0.0.1:1"
	b := startAPI(t, noRedis, true)
	for _, e := range entities {
		for _, n := range []string{"7d", "365d", "all"} {
			from, to := rangeOf(n, "bob")
			b.checkTop(tr, "bob", e, "range="+n, from, to, "")
		}
	}
	if body := b.waitReady(); !strings.Contains(body, `"redis":"error`) {
		t.Errorf("readyz with Redis down: %s", body)
	}

	// 4. Cassandra down (a wrong port): the view's ranges answer, the
	// others are 503, and the api is ready.
	noCassandra := cfg
	noCassandra.Cassandra.Port = 1
	c := startAPI(t, noCassandra, true)
	for _, e := range entities {
		for _, n := range []string{"today", "7d", "30d", "this_week"} {
			from, to := rangeOf(n, "Émile")
			c.checkTop(tr, "Émile", e, "range="+n, from, to, "view")
		}
		c.checkTop(tr, "Émile", e, inside, customs[0].from, customs[0].to, "view")
	}
	// Ranges reaching before the window need Cassandra: a 503, unless
	// Redis still holds the answer (the first api read these).
	for _, q := range []string{fmt.Sprintf("from=%s&to=%s", day(today.AddDate(-3, 0, 3)), day(today.AddDate(-2, 0, 0))),
		fmt.Sprintf("from=%s&to=%s", day(today.AddDate(0, 0, -40)), day(today))} {
		if code, body := c.get("/v1/users/Ada/top/tracks?" + q); code != 503 {
			t.Errorf("Cassandra down, %s: %d %s, want 503", q, code, body)
		}
	}
	for _, n := range []string{"365d", "all"} {
		from, to := rangeOf(n, "Ada")
		c.checkTop(tr, "Ada", "tracks", "range="+n, from, to, "mixed")
	}
	if body := c.waitReady(); !strings.Contains(body, `"cassandra":"error`) {
		t.Errorf("readyz with Cassandra down: %s", body)
	}
}

// lagAnswer is the freshness of a chart answer: cassandra_lag_seconds
// (absent: "absent", null: "null", else the number), stale, source and
// the X-Topk-Cassandra-Lag header.
type lagAnswer struct {
	field, source, header string
	stale                 bool
}

func (a *apiUnderTest) lag(path string) lagAnswer {
	a.t.Helper()
	resp, err := http.Get(a.url + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		a.t.Fatal(err)
	}
	l := lagAnswer{field: "absent", header: resp.Header.Get("X-Topk-Cassandra-Lag")}
	if v, ok := m["cassandra_lag_seconds"]; ok {
		l.field = string(v)
	}
	_ = json.Unmarshal(m["stale"], &l.stale)
	_ = json.Unmarshal(m["source"], &l.source)
	return l
}

// waitLag polls path until ok accepts its freshness.
func (a *apiUnderTest) waitLag(path, what string, ok func(lagAnswer, float64) bool) (lagAnswer, float64) {
	a.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		l := a.lag(path)
		secs := -1.0
		if l.field != "absent" && l.field != "null" {
			fmt.Sscan(l.field, &secs)
		}
		if ok(l, secs) {
			return l, secs
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: still %+v", what, l)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runLag runs the api's Cassandra lag monitor until the test ends.
func (a *apiUnderTest) runLag() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.parts.lag.Run(ctx) }()
	a.t.Cleanup(func() { cancel(); <-done })
}

// End to end: listens go through ingest and the aggregator while no
// flusher runs; answers reading Cassandra say it is behind, by a lag
// that grows, and answers from the view alone say nothing; once a
// flusher caught up they say 0 and are not stale. With Kafka unreachable
// the lag is unknown, not 0.
func TestIntegrationAPICassandraLag(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)

	now := time.Now().UTC()
	g := &apiGen{r: rand.New(rand.NewPCG(7, 3)), now: now, used: map[string]bool{}}
	var msgs []*sarama.ProducerMessage
	for i := range 300 {
		span := 20 * 24 * time.Hour
		if i%2 == 0 {
			span = 400 * 24 * time.Hour
		}
		msgs = append(msgs, rawMessage(topics, g.listen("lagger", span)))
	}
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	producer.Close()

	// Ingest and the aggregator only: the changelog grows, nothing is
	// flushed.
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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				t.Errorf("processor: %v", err)
			}
		}()
	}
	run(ip.Run)
	run(ap.Run)
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	for _, gt := range [][2]string{{string(ingest.Group(cfg.Namespace)), string(topics.Raw)}, {string(aggregator.Group(cfg.Namespace)), string(topics.Valid)}} {
		if err := kafka.WaitCaughtUp(wctx, client, admin, gt[0], gt[1], nil); err != nil {
			t.Fatalf("%s: %v", gt[0], err)
		}
	}

	a := startAPI(t, cfg, true)
	a.runLag()
	// (Not range=all: with nothing flushed, "all" starts at the view's
	// first day of the user.)
	day := func(d time.Time) string { return d.Format(listen.DayLayout) }
	mixed := "/v1/users/lagger/top/tracks?from=" + day(now.AddDate(0, 0, -400)) + "&to=" + day(now)
	recent := "/v1/users/lagger/top/tracks?range=7d"
	l1, s1 := a.waitLag(mixed, "a lag above 0", func(l lagAnswer, s float64) bool { return s > 0 })
	t1 := time.Now()
	if l1.source != "mixed" || !l1.stale || l1.header != l1.field {
		t.Fatalf("behind: %+v", l1)
	}
	if l := a.lag(recent); l.source != "view" || l.field != "absent" || l.stale || l.header != "" {
		t.Fatalf("an answer from the view alone: %+v", l)
	}
	// Nothing flushes: the lag grows with the clock.
	l2, s2 := a.waitLag(mixed, "a growing lag", func(l lagAnswer, s float64) bool { return s >= s1+4 })
	if grew := s2 - s1; grew > time.Since(t1).Seconds()+6 {
		t.Fatalf("lag %v then %v, %v apart", s1, s2, time.Since(t1))
	}
	t.Logf("without a flusher: %s s, then %s s", l1.field, l2.field)

	// A flusher catches up: 0, not stale.
	session, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	fl, err := flusher.New(flusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: set.Log, FlushInterval: 200 * time.Millisecond}, session)
	if err != nil {
		t.Fatal(err)
	}
	run(fl.Run)
	if err := kafka.WaitCaughtUp(wctx, client, admin, flusher.Group(cfg.Namespace), string(aggregator.Table(cfg.Namespace)), nil); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.waitLag(mixed, "caught up", func(l lagAnswer, s float64) bool { return s == 0 }); l.stale || l.header != "0" {
		t.Fatalf("caught up: %+v", l)
	}
	if _, metrics := a.get("/metrics"); !strings.Contains(metrics, "topk_api_cassandra_lag_seconds 0") {
		t.Errorf("/metrics lacks topk_api_cassandra_lag_seconds 0")
	}

	// Kafka unreachable: unknown (null, "unknown", stale), never 0.
	noKafka := cfg
	noKafka.Kafka.Brokers = []string{"127.0.0.1:1"}
	b := startAPI(t, noKafka, false)
	b.runLag()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := b.get("/metrics")
		if strings.Contains(metrics, "topk_api_cassandra_lag_errors_total") && !strings.Contains(metrics, "topk_api_cassandra_lag_errors_total 0") {
			if !strings.Contains(metrics, "topk_api_cassandra_lag_seconds NaN") {
				t.Errorf("/metrics with Kafka down: no NaN lag")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed lag measurement with Kafka down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if l := b.lag(mixed); l.source != "cassandra" || l.field != "null" || !l.stale || l.header != "unknown" {
		t.Fatalf("Kafka down: %+v", l)
	}
}
