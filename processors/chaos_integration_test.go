//go:build integration

package processors_test

// The chaos suite (issue 9): the pipeline's services run as OS processes
// (`topk ingest|aggregator|raw-writer|flusher`, and in the cases that ask
// for it `topk sitewide`: the fan-out, the sitewide group and the sitewide
// flusher of issue 15) on a Kafka broker
// of the test's own (testenv.StartKafka: other ports, its own data, so the
// stack of `make run` is never disturbed), with Cassandra of the shared
// local stack in a keyspace of their own. Each case puts a fault under load
// and then asserts exact counts in the Goka table, the api's view (package
// views, in this process) and Cassandra (raw rows, day values, month and
// year rollups), the dead letters per reason, and that no service process
// exited by itself; with `topk sitewide` also the sitewide group's table
// user by user against the aggregator's, and sitewide_days against that
// table (verifySitewide).
//
// The test's producer retries every record until it is acknowledged; a
// record whose produce failed may land twice, which the pipeline dedups by
// identity, so the expected counts are by identity.
//
// A service that exits by itself fails the test; the harness then restarts
// it (at most every 2 s), so the case runs to its end and its counts show
// what else went wrong. TOPK_CHAOS_SOAK=1 (`make chaos`) runs each case
// longer: more broker kills, a 4-minute pause, 100 kill rounds.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/fanout"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/ingest"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/processors/sitewideflusher"
	"github.com/topk-charts/topk/views"
)

// soak: TOPK_CHAOS_SOAK=1 makes every case longer (make chaos).
var soak = os.Getenv("TOPK_CHAOS_SOAK") == "1"

func soakOr[T any](short, long T) T {
	if soak {
		return long
	}
	return short
}

// The broker killed with -9 and started again on its data, twice (soak:
// six times) while listens stream in; the services (one copy of `topk
// sitewide` among them) are left alone.
func TestIntegrationChaosBrokerKill(t *testing.T) {
	c := newChaos(t, chaosOptions{sitewide: 1})
	kills, down := soakOr(2, 6), soakOr(10*time.Second, 20*time.Second)
	stop := make(chan struct{})
	done := c.load(200, 300*time.Millisecond, 25, 400, stop)
	for i := range kills {
		c.waitAcked((i+1)*1500, 3*time.Minute)
		if i > 0 { // the services work a while on the restarted broker
			c.sleep(5 * time.Second)
		}
		// A backlog, so the services are busy emitting when the broker dies.
		c.burst(5000)
		lags := c.lags()
		c.k.Kill9()
		c.fault("broker kill -9 #%d right after a burst of 5000 listens (%d acknowledged in all; %s)", i+1, c.ackedNow(), lags)
		c.sleep(down)
		c.probeHealth(fmt.Sprintf("broker down %s", down))
		at := time.Now()
		c.k.Start()
		c.fault("broker restarted after %s down (start took %s)", down, time.Since(at).Round(100*time.Millisecond))
		c.mark(fmt.Sprintf("kill #%d", i+1))
	}
	c.waitAcked(c.ackedNow()+1500, 3*time.Minute)
	close(stop)
	c.waitDone(done)
	c.mark("load")
	c.verify(verifySpec{})
}

// The broker stopped with SIGSTOP for 60 s (soak: 4 min) mid-load, then
// continued (SIGCONT): connections stay open and nothing answers.
func TestIntegrationChaosBrokerPause(t *testing.T) {
	c := newChaos(t, chaosOptions{})
	pause := soakOr(60*time.Second, 4*time.Minute)
	stop := make(chan struct{})
	done := c.load(200, 300*time.Millisecond, 25, 400, stop)
	c.waitAcked(1500, 3*time.Minute)
	c.burst(5000) // a backlog: the services are busy emitting when the broker stops
	lags := c.lags()
	c.k.Pause()
	defer c.k.Resume() // whatever happens, before the cleanups talk to it
	c.fault("broker SIGSTOP right after a burst of 5000 listens (%d acknowledged in all; %s)", c.ackedNow(), lags)
	c.sleep(pause)
	c.probeHealth(fmt.Sprintf("broker paused %s", pause))
	c.k.Resume()
	c.fault("broker SIGCONT after %s", pause)
	c.mark("pause")
	c.waitAcked(c.ackedNow()+1500, 3*time.Minute)
	close(stop)
	c.waitDone(done)
	c.mark("load")
	c.verify(verifySpec{})
}

// kill -9 of each service at random instants across 20 rounds (soak: 100)
// while listens stream in, two copies of ingest, of the aggregator and of
// `topk sitewide`; in every fifth round a copy of one of those three is
// killed during a rebalance: just after the other copy rejoined, or while
// the other is taking over its partitions.
func TestIntegrationChaosServiceKills(t *testing.T) {
	c := newChaos(t, chaosOptions{ingest: 2, aggregator: 2, sitewide: 2})
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("TOPK_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	c.t.Logf("kill instants from seed %d (TOPK_CHAOS_SEED=%d repeats them)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	rounds := soakOr(20, 100)
	stop := make(chan struct{})
	done := c.load(100, 500*time.Millisecond, 40, 1000, stop)
	order := []string{"ingest", "aggregator", "raw-writer", "flusher", "sitewide"}
	// The rebalance rounds (every fifth) in turn: b killed while a rejoins
	// (join) or while b takes over a's partitions; the first five cover
	// all but the sitewide join, every six all.
	rebalances := []struct {
		name string
		join bool
	}{{"ingest", true}, {"aggregator", true}, {"sitewide", false}, {"ingest", false}, {"aggregator", false}, {"sitewide", true}}
	for r := range rounds {
		name := order[(r-r/5)%len(order)] // the plain rounds go through order
		copies := c.byName(name)
		if r%5 == 4 {
			rb := rebalances[(r/5)%len(rebalances)]
			name = rb.name
			copies = c.byName(name)
			i := rng.IntN(2)
			a, b := copies[i], copies[1-i]
			c.sleep(between(200*time.Millisecond, 2*time.Second))
			if rb.join { // a join starts a rebalance
				a.p.Kill9()
				a.p.Restart()
				d := between(300*time.Millisecond, 2500*time.Millisecond)
				c.sleep(d)
				b.p.Kill9()
				c.sleep(between(0, time.Second))
				b.p.Restart()
				c.fault("round %d: kill -9 %s#%d, restarted; %s later kill -9 %s#%d during the join", r+1, name, a.n, d.Round(time.Millisecond), name, b.n)
			} else { // b is killed while it takes over a's partitions (a's session expires after ~10 s)
				a.p.Kill9()
				d := between(6*time.Second, 13*time.Second)
				c.sleep(d)
				b.p.Kill9()
				c.sleep(between(0, time.Second))
				a.p.Restart()
				b.p.Restart()
				c.fault("round %d: kill -9 %s#%d; %s later kill -9 %s#%d while taking over", r+1, name, a.n, d.Round(time.Millisecond), name, b.n)
			}
			continue
		}
		v := copies[rng.IntN(len(copies))]
		c.sleep(between(200*time.Millisecond, 2500*time.Millisecond))
		v.p.Kill9()
		d := between(0, 1500*time.Millisecond)
		c.sleep(d)
		v.p.Restart()
		c.fault("round %d: kill -9 %s#%d, restarted %s later", r+1, name, v.n, d.Round(time.Millisecond))
	}
	c.mark(fmt.Sprintf("%d rounds", rounds))
	c.waitAcked(c.ackedNow()+1000, 3*time.Minute)
	close(stop)
	c.waitDone(done)
	c.mark("load")
	c.verify(verifySpec{})
}

// The flood of issue 9: one user-day, 140 listens whose artist, track and
// album names are ~3,000 characters each (every record under 10 KiB),
// followed by ordinary listens, which are counted within seconds; the flood
// is in the DLQ (name_too_long). And a user-day whose names are within the
// limit but whose state would pass TOPK_MAX_STATE_BYTES (64 KiB here):
// the listens past it are in the DLQ (state_size), the state stays under
// the limit, later listens of other user-days count.
func TestIntegrationChaosFlood(t *testing.T) {
	const maxState = 64 << 10
	c := newChaos(t, chaosOptions{env: []string{"TOPK_MAX_STATE_BYTES=" + strconv.Itoa(maxState)}})
	none := make(chan struct{})
	close(none)
	c.waitDone(c.load(200, 100*time.Millisecond, 8, 8, none))
	c.mark("ordinary listens before")

	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(3, 4))
	letters := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	// The flood.
	floodAt := now.AddDate(0, 0, -1).Truncate(time.Hour)
	floodKey := listen.DayKey("flood-user", floodAt)
	var flood []*sarama.ProducerMessage
	for i := range 140 {
		name := func(kind string) string { return fmt.Sprintf("%s %03d ", kind, i) + letters(2990) }
		raw := fmt.Sprintf(`{"user_id":"flood-user","played_at":%q,"artist_name":%q,"track_name":%q,"album_name":%q}`,
			floodAt.Add(time.Duration(i)*time.Second).Format(time.RFC3339), name("artist"), name("track"), name("album"))
		if len(raw) > listen.MaxRecordBytes {
			t.Fatalf("flood record of %d bytes: over the 10 KiB record limit, a test bug", len(raw))
		}
		flood = append(flood, &sarama.ProducerMessage{Topic: string(c.s.topics.Raw), Key: sarama.StringEncoder("flood-user"), Value: sarama.StringEncoder(raw)})
	}
	c.send(c.mainProducer, flood)
	c.fault("140 listens of %s with names of ~3,000 characters (records of %d bytes)", floodKey, len(flood[0].Value.(sarama.StringEncoder)))

	// The heavy user-day: names of 500 characters, 100 distinct listens
	// (~1.5 KB of state each): past 64 KiB after ~40 of them.
	heavyAt := now.AddDate(0, 0, -2).Truncate(time.Hour)
	var heavy []listen.Listen
	var msgs []*sarama.ProducerMessage
	for i := range 100 {
		l := listen.Listen{UserID: "heavy-user", PlayedAt: heavyAt.Add(time.Duration(i) * time.Minute),
			ArtistName: fmt.Sprintf("Artist %03d ", i) + letters(489), TrackName: fmt.Sprintf("Track %03d ", i) + letters(490),
			AlbumName: fmt.Sprintf("Album %03d ", i) + letters(490)}
		heavy = append(heavy, l)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(c.s.topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(c.g.raw(l, 0))})
	}
	heavyKey := heavy[0].Key()
	c.send(c.mainProducer, msgs)
	c.fault("100 listens of %s with names of 500 characters (TOPK_MAX_STATE_BYTES=%d)", heavyKey, maxState)
	c.mark("flood and heavy day produced")

	// Ordinary listens after them, counted within seconds.
	c.waitDone(c.load(200, 100*time.Millisecond, 8, 8, none))
	acked := time.Now()
	bound := 30 * time.Second
	if !c.waitFor("the ordinary listens after the flood counted (ingest and aggregator caught up)", bound, c.lagZero(
		[2]string{string(ingest.Group(c.cfg.Namespace)), string(c.s.topics.Raw)},
		[2]string{string(aggregator.Group(c.cfg.Namespace)), string(c.s.topics.Valid)})) {
		t.Fatalf("the listens after the flood were not counted within %s of being acknowledged", bound)
	}
	c.fault("the ordinary listens after the flood were counted %s after their acknowledgement (bound %s)", time.Since(acked).Round(10*time.Millisecond), bound)
	c.mark("ordinary listens after")

	c.verify(verifySpec{
		dlq:       map[string]int{"name_too_long": 140},
		atLeast:   map[string]int{"state_size": 1},
		absent:    []string{floodKey},
		ignoreRaw: []string{heavyKey},
		before: func(letters map[string]map[string]letter) {
			// The heavy day counts exactly the listens that were not
			// dead-lettered for its size.
			dead := map[listen.Identity]bool{}
			for _, lt := range letters["state_size"] {
				v, err := listen.Codec{}.Decode(lt.value)
				if err != nil {
					t.Errorf("a state_size letter that is not a listen (%s): %v", lt.source, err)
					continue
				}
				l := v.(listen.Listen)
				if l.Key() != heavyKey {
					t.Errorf("a state_size letter of %s: only %s is over the limit", l.Key(), heavyKey)
				}
				dead[l.Identity()] = true
			}
			counted := 0
			for _, l := range heavy {
				if !dead[l.Identity()] {
					c.want.add(l)
					counted++
				}
			}
			c.fault("%s: %d listens counted, %d dead-lettered for the state size", heavyKey, counted, len(dead))
			if counted == 0 {
				t.Errorf("%s: every listen dead-lettered; the first ones fit in %d bytes", heavyKey, maxState)
			}
		},
		after: func(table map[string]*aggregator.Day) {
			if d := table[heavyKey]; d != nil {
				if n := len(d.Encode()); n > maxState {
					t.Errorf("%s: the state is %d bytes encoded, over TOPK_MAX_STATE_BYTES=%d", heavyKey, n, maxState)
				}
			}
		},
	})
}

// A valid listen produced straight to user.listen.valid on a partition
// other than the one Goka's hasher gives its key, mid-load, twice: for a
// user-day that has listens (its state must not fork) and for a new one.
// Both reach the DLQ (wrong_partition) and the table is untouched for them.
func TestIntegrationChaosWrongPartition(t *testing.T) {
	c := newChaos(t, chaosOptions{})
	now := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var victim []*sarama.ProducerMessage
	for i := range 5 {
		l := listen.Listen{UserID: "victim", PlayedAt: now.Add(time.Duration(i) * time.Minute), ArtistName: "Victim Artist", TrackName: fmt.Sprintf("Victim Track %d", i)}
		victim = append(victim, &sarama.ProducerMessage{Topic: string(c.s.topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.StringEncoder(c.g.raw(l, 0)), Metadata: l})
	}
	c.send(c.mainProducer, victim)
	stop := make(chan struct{})
	done := c.load(200, 300*time.Millisecond, 20, 200, stop)
	c.waitAcked(5+1500, 3*time.Minute)

	n := int32(c.cfg.Kafka.ValidPartitions)
	valid := string(c.s.topics.Valid)
	part := sarama.NewCustomHashPartitioner(goka.DefaultHasher())(valid)
	var wrong []*sarama.ProducerMessage
	var keys []string
	for _, l := range []listen.Listen{
		{UserID: "victim", PlayedAt: now.Add(10 * time.Minute), ArtistName: "Victim Artist", TrackName: "Not On Its Partition"},
		{UserID: "stray", PlayedAt: now, ArtistName: "Stray Artist", TrackName: "Stray Track"},
	} {
		b, err := listen.Codec{}.Encode(l)
		if err != nil {
			t.Fatal(err)
		}
		m := &sarama.ProducerMessage{Topic: valid, Key: sarama.StringEncoder(l.Key()), Value: sarama.ByteEncoder(b)}
		right, err := part.Partition(m, n)
		if err != nil {
			t.Fatal(err)
		}
		m.Partition = (right + 1) % n
		wrong = append(wrong, m)
		keys = append(keys, l.Key())
		c.fault("%s produced to %s partition %d (Goka's hasher: %d)", l.Key(), valid, m.Partition, right)
	}
	c.send(c.manualProducer, wrong)
	c.waitAcked(c.ackedNow()+1500, 3*time.Minute)
	close(stop)
	c.waitDone(done)
	c.mark("load")
	c.verify(verifySpec{
		dlq:       map[string]int{"wrong_partition": 2},
		absent:    keys[1:],
		ignoreRaw: keys,
	})
}

// --- the harness ---

type chaosOptions struct {
	ingest, aggregator int      // copies (default 1)
	sitewide           int      // copies of `topk sitewide` (default none)
	env                []string // extra environment of every service
	// external runs on the servers the environment names (the local
	// cluster of cluster_integration_test.go) instead of a broker of the
	// test's own; c.k is then nil.
	external bool
}

type service struct {
	name string
	n    int // copy number, from 1
	port int // ops port
	p    *testenv.Process
}

type chaos struct {
	t       *testing.T
	k       *testenv.Kafka
	s       *stack
	cfg     config.Config
	session *gocql.Session
	svcs    []*service
	env     []string // extra environment of every service
	// sitewide: `topk sitewide` runs (chaosOptions.sitewide); verify
	// checks the sitewide pipeline too.
	sitewide bool
	g        *generator // the test goroutine's
	// loadMix is the load goroutine's, burstMix the test goroutine's.
	loadMix, burstMix *mix

	mainProducer, manualProducer, loadProducer *producer

	mu       sync.Mutex // guards want and the counts below
	want     *expected
	acked    int // listens acknowledged
	deleted  int // deletions acknowledged
	records  int // records sent, resends included
	resent   int // records sent again after a failed produce
	failures int // failed produce calls

	selfExits   map[*service]int
	lastRestart map[*service]time.Time
	faults      []string
	began, last time.Time
	phases      []string
	summary     []string
}

// clusterCtl runs deploy/local/cluster.sh of the local cluster (kill9,
// start, pid of one node; hints-pause, hints-resume).
func clusterCtl(t *testing.T, args ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "deploy", "local", "cluster.sh")
	// cluster.sh's own waits end sooner (KAFKA_WAIT, CASSANDRA_WAIT): this
	// is only the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newChaos(t *testing.T, o chaosOptions) *chaos {
	c := &chaos{t: t, want: newExpected(), g: newGenerator(uint64(time.Now().UnixNano()), 200),
		selfExits: map[*service]int{}, lastRestart: map[*service]time.Time{}, began: time.Now()}
	c.last = c.began
	cfg := testenv.Config(t)
	if !o.external {
		c.k = testenv.StartKafka(t)
		c.mark("own broker")
		c.k.Configure(&cfg)
	}
	c.s = newStackOn(t, cfg)
	// On the cluster, cleanups (run last-registered first) pause hint
	// delivery once the services are stopped, drop the keyspace, then
	// resume it: cluster.sh hints_pause says why.
	if o.external {
		t.Cleanup(func() { t.Log(clusterCtl(t, "hints-resume")) })
	}
	c.session = c.s.keyspace(t)
	if o.external {
		t.Cleanup(func() { t.Log(clusterCtl(t, "hints-pause", "120")) })
	}
	cfg.Pipeline.StateDir = t.TempDir()
	cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	cfg.Pipeline.SitewideFlushInterval = 500 * time.Millisecond
	cfg.LogLevel = "warn"
	c.cfg = cfg
	c.mainProducer, c.manualProducer, c.loadProducer = c.newProducer(false), c.newProducer(true), c.newProducer(false)
	seed := uint64(time.Now().UnixNano())
	c.loadMix, c.burstMix = c.newMix(seed), c.newMix(seed+1)
	c.env = o.env
	c.sitewide = o.sitewide > 0
	for _, sc := range []struct {
		name   string
		copies int
	}{{"ingest", max(o.ingest, 1)}, {"aggregator", max(o.aggregator, 1)}, {"raw-writer", 1}, {"flusher", 1}, {"sitewide", o.sitewide}} {
		for range sc.copies {
			c.addService(sc.name)
		}
	}
	for _, s := range c.svcs {
		c.waitReady(s, 2*time.Minute)
	}
	c.mark("services ready")
	return c
}

// opsPort points at the ops port of a service in cfg.
var opsPort = map[string]func(*config.Config) *int{
	"ingest":     func(c *config.Config) *int { return &c.Ops.Ingest },
	"aggregator": func(c *config.Config) *int { return &c.Ops.Aggregator },
	"raw-writer": func(c *config.Config) *int { return &c.Ops.RawWriter },
	"flusher":    func(c *config.Config) *int { return &c.Ops.Flusher },
	"sitewide":   func(c *config.Config) *int { return &c.Ops.Sitewide },
}

// sitewideStateBytes is TOPK_MAX_STATE_BYTES of `topk sitewide` (its
// alone): the sitewide group's keys hold a third of it, 80 bytes, one or
// two listeners of the test's names, so the busy keys spill into child
// keys and the spill tree is under the faults too (one listener's value
// is at most ~61 bytes here: user ids of up to 23 characters, names of
// up to 14).
const sitewideStateBytes = 240

// addService starts one more copy of a pipeline service (not waiting for
// it to be ready).
func (c *chaos) addService(name string) *service {
	pc := c.cfg
	port := opsPort[name](&pc)
	*port = testenv.FreePort(c.t)
	env := c.env
	if name == "sitewide" {
		env = append(env[:len(env):len(env)], "TOPK_MAX_STATE_BYTES="+strconv.Itoa(sitewideStateBytes))
	}
	s := &service{name: name, n: len(c.byName(name)) + 1, port: *port, p: testenv.StartEnv(c.t, pc, env, name)}
	c.svcs = append(c.svcs, s)
	return s
}

// waitReady waits until s answers /readyz with 200, or fails the test.
func (c *chaos) waitReady(s *service, timeout time.Duration) {
	c.t.Helper()
	if !c.waitFor(fmt.Sprintf("topk %s#%d ready (/readyz)", s.name, s.n), timeout, func() (bool, string) {
		code, err := get(s.port, "/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %v", code, err)
	}) {
		c.t.FailNow()
	}
}

func (c *chaos) byName(name string) []*service {
	var out []*service
	for _, s := range c.svcs {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

func get(port int, path string) (int, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// mark records how long the step since the last mark took.
func (c *chaos) mark(step string) {
	now := time.Now()
	c.phases = append(c.phases, fmt.Sprintf("%s %s", step, now.Sub(c.last).Round(100*time.Millisecond)))
	c.last = now
}

// fault logs what the test did, with the time since the start.
func (c *chaos) fault(format string, args ...any) {
	line := fmt.Sprintf("+%5.1fs ", time.Since(c.began).Seconds()) + fmt.Sprintf(format, args...)
	c.faults = append(c.faults, line)
	c.t.Log(line)
}

// watch fails the test for every service that exited by itself, and
// restarts it (at most every 2 s) so the case runs on.
func (c *chaos) watch() {
	for _, s := range c.svcs {
		exited, _ := s.p.Exited()
		if !exited || time.Since(c.lastRestart[s]) < 2*time.Second {
			continue
		}
		c.selfExits[s]++
		if c.selfExits[s] == 1 {
			c.t.Errorf("a service exited by itself (the harness restarts it): %v", s.p.ExitError())
		} else {
			c.t.Logf("topk %s#%d exited by itself again (exit %d), restarting it", s.name, s.n, c.selfExits[s])
		}
		s.p.Restart()
		c.lastRestart[s] = time.Now()
	}
}

// sleep sleeps d, watching the services.
func (c *chaos) sleep(d time.Duration) {
	end := time.Now().Add(d)
	for {
		c.watch()
		left := time.Until(end)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, 250*time.Millisecond))
	}
}

// waitFor polls cond, watching the services, until it holds (true) or
// timeout (an error naming what and the last status; false).
func (c *chaos) waitFor(what string, timeout time.Duration, cond func() (bool, string)) bool {
	c.t.Helper()
	start := time.Now()
	deadline, logAt := start.Add(timeout), start.Add(5*time.Second)
	for {
		c.watch()
		ok, status := cond()
		if ok {
			return true
		}
		if time.Now().After(logAt) {
			c.t.Logf("waiting %s for %s: %s", time.Since(start).Round(time.Second), what, status)
			logAt = time.Now().Add(5 * time.Second)
		}
		if time.Now().After(deadline) {
			c.t.Errorf("not within %s: %s (last: %s)", timeout, what, status)
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// lagZero is a condition: every (group, topic) has committed everything.
func (c *chaos) lagZero(groups ...[2]string) func() (bool, string) {
	return func() (bool, string) {
		var st []string
		for _, gt := range groups {
			lag, err := kafka.GroupLag(context.Background(), c.s.client, c.s.admin, gt[0], gt[1])
			if err != nil || lag != 0 {
				st = append(st, fmt.Sprintf("%s on %s: lag %d %v", gt[0], gt[1], lag, err))
			}
		}
		return len(st) == 0, strings.Join(st, "; ")
	}
}

// lags tells how far ingest and the aggregator are behind.
func (c *chaos) lags() string {
	var out []string
	for _, gt := range [][2]string{
		{string(ingest.Group(c.cfg.Namespace)), string(c.s.topics.Raw)},
		{string(aggregator.Group(c.cfg.Namespace)), string(c.s.topics.Valid)},
	} {
		lag, err := kafka.GroupLag(context.Background(), c.s.client, c.s.admin, gt[0], gt[1])
		if err != nil {
			out = append(out, fmt.Sprintf("%s lag: %v", gt[0], err))
			continue
		}
		out = append(out, fmt.Sprintf("%s lag %d", strings.TrimPrefix(gt[0], c.cfg.Namespace+"."), lag))
	}
	return strings.Join(out, ", ")
}

func (c *chaos) ackedNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

func (c *chaos) waitAcked(n int, timeout time.Duration) {
	c.t.Helper()
	if !c.waitFor(fmt.Sprintf("%d listens acknowledged", n), timeout, func() (bool, string) {
		a := c.ackedNow()
		return a >= n, strconv.Itoa(a)
	}) {
		c.t.FailNow()
	}
}

func (c *chaos) waitDone(done <-chan struct{}) {
	c.t.Helper()
	for {
		select {
		case <-done:
			return
		case <-time.After(250 * time.Millisecond):
			c.watch()
		}
	}
}

// probeHealth: every service that runs answers /healthz with 200 (during
// an outage too).
func (c *chaos) probeHealth(when string) {
	for _, s := range c.svcs {
		if exited, _ := s.p.Exited(); exited {
			continue // watch reports it
		}
		if code, err := get(s.port, "/healthz"); code != http.StatusOK {
			c.t.Errorf("%s: topk %s#%d /healthz answered %d (%v), want 200", when, s.name, s.n, code, err)
		}
	}
}

// producer is a sync producer that is made again after any error (a new
// producer id: the idempotent state of the old one is useless after a
// broker restart).
type producer struct {
	c      *chaos
	manual bool
	p      sarama.SyncProducer
}

func (c *chaos) newProducer(manual bool) *producer {
	p := &producer{c: c, manual: manual}
	c.t.Cleanup(p.drop)
	return p
}

func (p *producer) get() (sarama.SyncProducer, error) {
	if p.p != nil {
		return p.p, nil
	}
	cfg := kafka.NewSaramaConfig("topk-chaos-producer")
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Retry.Backoff = 500 * time.Millisecond
	cfg.Metadata.Retry.Max = 2
	cfg.Metadata.Retry.Backoff = 500 * time.Millisecond
	if p.manual {
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
	}
	sp, err := sarama.NewSyncProducer(p.c.cfg.Kafka.Brokers, cfg)
	if err != nil {
		return nil, err
	}
	p.p = sp
	return sp, nil
}

func (p *producer) drop() {
	if p.p != nil {
		_ = p.p.Close()
		p.p = nil
	}
}

// produceLimit bounds how long a record may stay unacknowledged.
var produceLimit = soakOr(6*time.Minute, 10*time.Minute)

// send produces msgs and retries the failed ones until every one is
// acknowledged; acknowledged listens (Metadata) join the expected count.
// A record that is never acknowledged fails the test: it may or may not
// have landed, so no exact count is possible.
func (c *chaos) send(p *producer, msgs []*sarama.ProducerMessage) {
	c.t.Helper()
	if err := c.trySend(p, msgs); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chaos) trySend(p *producer, msgs []*sarama.ProducerMessage) error {
	deadline := time.Now().Add(produceLimit)
	pending := msgs
	var lastErr error
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d records not acknowledged within %s (last error: %v)", len(pending), produceLimit, lastErr)
			}
			time.Sleep(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second))
		}
		sp, err := p.get()
		if err != nil {
			lastErr = err
			continue
		}
		batch := make([]*sarama.ProducerMessage, len(pending))
		for i, m := range pending {
			batch[i] = &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Partition: m.Partition, Metadata: m.Metadata}
		}
		err = sp.SendMessages(batch)
		failed := map[*sarama.ProducerMessage]bool{}
		if err != nil {
			lastErr = err
			var pe sarama.ProducerErrors
			if errors.As(err, &pe) {
				for _, e := range pe {
					failed[e.Msg] = true
				}
			} else {
				for _, m := range batch {
					failed[m] = true
				}
			}
			p.drop()
		}
		c.mu.Lock()
		c.records += len(batch)
		if attempt > 0 {
			c.resent += len(batch)
		}
		if err != nil {
			c.failures++
		}
		pending = pending[:0:0]
		for _, m := range batch {
			if failed[m] {
				pending = append(pending, m)
				continue
			}
			switch md := m.Metadata.(type) {
			case listen.Listen:
				c.want.add(md)
				c.acked++
			case deletion:
				c.want.delete(md.l)
				c.deleted++
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// mix makes listens like the crash test: half of them the only listen of
// their user-day, duplicates of earlier listens in other spellings and time
// formats, days up to three years old, under their user's key, a wrong key
// or none. One mix per goroutine.
type mix struct {
	g     *generator
	topic string
	sent  []listen.Listen
	n     int
	// keyed holds the listens of sent whose every copy went under their
	// user's key: a deletion (keyed by user) is ordered after them on
	// user.listen.raw, so the model knows it finds them. Deleted
	// listens leave sent and keyed and are never sent again.
	keyed map[listen.Identity]bool
}

// deletion is the Metadata of a delete record: once acknowledged, the
// expected counts lose the listen.
type deletion struct{ l listen.Listen }

func (c *chaos) newMix(seed uint64) *mix {
	return &mix{g: newGenerator(seed, 200), topic: string(c.s.topics.Raw), keyed: map[listen.Identity]bool{}}
}

// deleteOne makes the delete record of a listen of an earlier batch
// whose every copy went under its user's key (nil when there is none),
// with the msid of another spelling now and then.
func (x *mix) deleteOne() *sarama.ProducerMessage {
	g := x.g
	for range 4 {
		if len(x.sent) == 0 {
			return nil
		}
		i := g.r.IntN(len(x.sent))
		l := x.sent[i]
		if !x.keyed[l.Identity()] {
			continue
		}
		x.sent = append(x.sent[:i], x.sent[i+1:]...)
		delete(x.keyed, l.Identity())
		artist, track := l.ArtistName, l.TrackName
		if g.r.IntN(2) == 0 {
			artist, track = strings.ToUpper(artist), strings.ToLower(track)
		}
		d := listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(artist, track)}
		return &sarama.ProducerMessage{Topic: x.topic, Key: sarama.StringEncoder(l.UserID), Value: sarama.ByteEncoder(d.Encode()), Metadata: deletion{l}}
	}
	return nil
}

func (x *mix) batch(per int) []*sarama.ProducerMessage {
	g := x.g
	msgs := make([]*sarama.ProducerMessage, 0, per)
	// Deletions first: of listens of earlier batches (acknowledged), so
	// none of this batch's copies can come after them.
	for range per / 16 {
		if m := x.deleteOne(); m != nil {
			msgs = append(msgs, m)
		}
	}
	var fresh []listen.Listen
	for range per {
		x.n++
		var l listen.Listen
		switch {
		case x.n%2 == 0:
			l = g.listen()
			l.UserID = fmt.Sprintf("lonely-%d-%d", g.r.IntN(1<<30), x.n)
		case len(x.sent) > 0 && g.r.IntN(8) == 0:
			l = x.sent[g.r.IntN(len(x.sent))]
		default:
			l = g.listen()
			fresh = append(fresh, l)
			x.keyed[l.Identity()] = true
		}
		m := &sarama.ProducerMessage{Topic: x.topic, Value: sarama.StringEncoder(g.raw(l, g.r.IntN(4))), Metadata: l}
		switch g.r.IntN(3) {
		case 0:
			m.Key = sarama.StringEncoder(l.UserID)
		case 1:
			m.Key = sarama.StringEncoder("junk-" + strconv.Itoa(g.r.IntN(1000)))
			delete(x.keyed, l.Identity())
		default:
			delete(x.keyed, l.Identity())
		}
		msgs = append(msgs, m)
	}
	x.sent = append(x.sent, fresh...)
	return msgs
}

// load produces batches of per listens (the mix) every gap until stop is
// closed and at least minBatches went out (at most maxBatches). done is
// closed when every listen is acknowledged (or the test failed).
func (c *chaos) load(per int, gap time.Duration, minBatches, maxBatches int, stop <-chan struct{}) (done <-chan struct{}) {
	ch := make(chan struct{})
	// abort ends the load when the test ends early (a Fatal elsewhere), so
	// the goroutine never reports on a finished test.
	abort := make(chan struct{})
	c.t.Cleanup(func() { close(abort); <-ch })
	x := c.loadMix
	go func() {
		defer close(ch)
		for b := 0; b < maxBatches; b++ {
			if b >= minBatches {
				select {
				case <-stop:
					return
				default:
				}
			}
			select {
			case <-abort:
				return
			default:
			}
			if err := c.trySend(c.loadProducer, x.batch(per)); err != nil {
				select {
				case <-abort:
				default:
					c.t.Errorf("load: %v", err)
				}
				return
			}
			select {
			case <-stop:
				if b+1 >= minBatches {
					return
				}
			case <-abort:
				return
			case <-time.After(gap):
			}
		}
	}()
	return ch
}

// burst sends n listens of the mix at once and returns when they are
// acknowledged: a backlog the services are busy with right after.
func (c *chaos) burst(n int) {
	c.t.Helper()
	c.send(c.mainProducer, c.burstMix.batch(n))
}

// readTopic reads every partition of topic from its oldest record to its
// high-water mark.
func (c *chaos) readTopic(topic string, fn func(partition int32, partitions int, m *sarama.ConsumerMessage)) {
	t := c.t
	cfg := kafka.NewSaramaConfig("topk-chaos-reader")
	cfg.Consumer.MaxWaitTime = 10 * time.Millisecond // a partition's end is not waited for
	cons, err := sarama.NewConsumer(c.cfg.Kafka.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := cons.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		hwm, err := c.s.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		oldest, err := c.s.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm <= oldest {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				fn(p, len(parts), m)
				done = m.Offset+1 >= hwm
			case <-time.After(30 * time.Second):
				t.Fatalf("%s/%d: no record for 30 s before its high-water mark %d", topic, p, hwm)
			}
		}
		pc.Close()
	}
}

// letter is one dead letter.
type letter struct {
	reason, stage, source string
	value                 []byte
}

// deadLetters reads the whole DLQ: reason → source (topic/partition/offset)
// → letter; a record dead-lettered twice (redelivery) is one source.
func (c *chaos) deadLetters() map[string]map[string]letter {
	out := map[string]map[string]letter{}
	c.readTopic(string(c.s.topics.DLQ), func(_ int32, _ int, m *sarama.ConsumerMessage) {
		h := map[string]string{}
		for _, r := range m.Headers {
			h[string(r.Key)] = string(r.Value)
		}
		r := h[processors.HeaderReason]
		if out[r] == nil {
			out[r] = map[string]letter{}
		}
		src := h[processors.HeaderTopic] + "/" + h[processors.HeaderPartition] + "/" + h[processors.HeaderOffset]
		out[r][src] = letter{reason: r, stage: h[processors.HeaderStage], source: src, value: m.Value}
	})
	return out
}

// checkView starts the api's view (package views) of the table and
// compares the recent days it keeps with the expected counts; absent keys
// must not be there. It returns the plays and user-days compared.
func (c *chaos) checkView(want *expected, absent []string) (plays, days int) {
	t := c.t
	v, err := views.New(c.s.settings(t), views.Config{Namespace: c.cfg.Namespace, ClientID: "topk-chaos-view",
		Registerer: prometheus.NewRegistry(), Log: testenv.Logger(t), Maintain: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- v.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil && ctx.Err() == nil {
			t.Errorf("view: %v", err)
		}
	}()
	if !c.waitFor("the view recovered", 2*time.Minute, func() (bool, string) { return v.Recovered(), "" }) {
		return 0, 0
	}
	now := time.Now().UTC()
	first := v.FirstDay(now)
	last := now.AddDate(0, 0, 1)
	compare := func() (diffs []string, plays, days int) {
		perUser := map[string]int{}
		for k, ids := range want.seen {
			u, d, _ := listen.SplitKey(k)
			if d.Before(first) {
				if _, ok := perUser[u]; !ok {
					perUser[u] = 0
				}
				continue
			}
			if len(ids) == 0 { // every listen deleted: Range leaves the day out
				if _, ok := perUser[u]; !ok {
					perUser[u] = 0
				}
				continue
			}
			perUser[u]++
			days++
			plays += len(ids)
			got := v.Get(u, d)
			if got == nil {
				diffs = append(diffs, k+" missing from the view")
				continue
			}
			if int(got.Plays) != len(ids) {
				diffs = append(diffs, fmt.Sprintf("%s: %d plays in the view, want %d", k, got.Plays, len(ids)))
			}
			for _, e := range topk.Entities {
				m := map[uint64]uint32{}
				for _, it := range got.Items(e) {
					m[it.Key] = uint32(it.Plays)
				}
				if fmt.Sprint(m) != fmt.Sprint(want.items[k][e]) {
					diffs = append(diffs, fmt.Sprintf("%s %s in the view: %v, want %v", k, e, m, want.items[k][e]))
				}
			}
		}
		for u, n := range perUser {
			ds, _ := v.Range(u, first, last)
			if len(ds) != n {
				diffs = append(diffs, fmt.Sprintf("user %s: %d recent days in the view, want %d", u, len(ds), n))
			}
		}
		for _, k := range absent {
			if u, d, _ := listen.SplitKey(k); v.Get(u, d) != nil {
				diffs = append(diffs, k+" is in the view; it must not be counted")
			}
		}
		return diffs, plays, days
	}
	var diffs []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if diffs, plays, days = compare(); len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("view: %d differences in all", len(diffs))
			break
		}
		t.Error("view: " + d)
	}
	return plays, days
}

// verifySpec is what a case expects beyond the exact counts.
type verifySpec struct {
	dlq       map[string]int // distinct dead letters per reason; any other reason must have none
	atLeast   map[string]int // reasons with a lower bound only
	absent    []string       // user-day keys in neither the table nor the view
	ignoreRaw []string       // user-day keys whose raw_listens rows are not compared
	// before runs once the pipeline settled and the DLQ was read, before
	// the counts are compared (to derive expectations from the letters).
	before func(letters map[string]map[string]letter)
	// after sees the table.
	after func(table map[string]*aggregator.Day)
}

// verify waits until every group committed everything, then compares the
// table, the view and Cassandra with the expected counts and the DLQ with
// spec, and checks that no service exited by itself. It logs the case's figures even when a check fails.
func (c *chaos) verify(spec verifySpec) {
	t := c.t
	defer c.report()
	c.s.reconnect(t)
	ns := c.cfg.Namespace
	groups := [][2]string{
		{string(ingest.Group(ns)), string(c.s.topics.Raw)},
		{string(aggregator.Group(ns)), string(c.s.topics.Valid)},
		{rawwriter.Group(ns), string(c.s.topics.Valid)},
		{flusher.Group(ns), string(aggregator.Table(ns))},
	}
	what := "ingest, aggregator, raw writer and flusher caught up"
	if c.sitewide {
		// Downstream of the aggregator, in flow order: lagZero asks them
		// in turn, so when all are 0 in one pass the sitewide groups read
		// everything upstream emitted (and the DLQ read next has their
		// letters too).
		groups = append(groups,
			[2]string{string(fanout.Group(ns)), string(fanout.Input(ns))},
			[2]string{string(sitewide.Group(ns)), string(c.s.topics.Counts)},
			[2]string{sitewideflusher.Group(ns), string(sitewide.Table(ns))})
		what = "ingest, aggregator, raw writer, flusher, fan-out, sitewide group and sitewide flusher caught up"
	}
	if !c.waitFor(what, 4*time.Minute, c.lagZero(groups...)) {
		t.FailNow()
	}
	c.mark("settle")
	letters := c.deadLetters()
	c.mark("dlq read")
	if spec.before != nil {
		spec.before(letters)
	}
	want := c.want
	distinct := 0
	for _, ids := range want.seen {
		distinct += len(ids)
	}
	c.summary = append(c.summary, fmt.Sprintf("produced   %d listens and %d deletions acknowledged (%d records sent, %d of them again after %d failed produce calls); %d distinct listens left in %d user-days",
		c.acked, c.deleted, c.records, c.resent, c.failures, distinct, len(want.seen)))

	table := c.s.table(t)
	c.mark("table read")
	tablePlays := 0
	for _, d := range table {
		tablePlays += int(d.Total)
	}
	c.summary = append(c.summary, fmt.Sprintf("table      %d plays in %d user-days", tablePlays, len(table)))
	for _, k := range spec.absent {
		if d := table[k]; d != nil {
			t.Errorf("%s is in the table (%d plays); it must not be counted", k, d.Total)
		}
	}
	if spec.after != nil {
		spec.after(table)
	}
	checkTableOf(t, table, want)
	c.mark("table checks")

	vp, vd := c.checkView(want, spec.absent)
	c.summary = append(c.summary, fmt.Sprintf("view       %d plays in %d recent user-days compared", vp, vd))
	c.mark("view")

	c.s.checkCassandra(t, c.session, want, spec.ignoreRaw...)
	var cp, cd int
	it := c.session.Query(`SELECT plays FROM user_days`).PageSize(5000).Iter()
	var p int64
	for it.Scan(&p) {
		cp += int(p)
		cd++
	}
	if err := it.Close(); err != nil {
		t.Error(err)
	}
	c.summary = append(c.summary, fmt.Sprintf("cassandra  %d plays in %d user-days (user_days)", cp, cd))
	c.mark("cassandra")

	if c.sitewide {
		c.verifySitewide(table)
	}

	var reasons []string
	for r := range letters {
		reasons = append(reasons, r)
	}
	for r := range spec.dlq {
		if letters[r] == nil {
			reasons = append(reasons, r)
		}
	}
	for r := range spec.atLeast {
		if letters[r] == nil && spec.dlq[r] == 0 {
			reasons = append(reasons, r)
		}
	}
	sort.Strings(reasons)
	var dl []string
	for _, r := range reasons {
		n := len(letters[r])
		dl = append(dl, fmt.Sprintf("%s %d", r, n))
		switch w, exact := spec.dlq[r]; {
		case exact && n != w:
			t.Errorf("DLQ: %d distinct records with reason %s, want %d", n, r, w)
		case !exact && spec.atLeast[r] > 0 && n < spec.atLeast[r]:
			t.Errorf("DLQ: %d distinct records with reason %s, want at least %d", n, r, spec.atLeast[r])
		case !exact && spec.atLeast[r] == 0 && n > 0:
			t.Errorf("DLQ: %d records with reason %s, want none", n, r)
		}
	}
	if len(dl) == 0 {
		dl = []string{"none"}
	}
	c.summary = append(c.summary, "dead       "+strings.Join(dl, ", "))

	c.watch()
	var exits []string
	for _, s := range c.svcs {
		if err := s.p.ExitError(); err != nil {
			t.Errorf("after the checks: %v", err)
		}
		if n := c.selfExits[s]; n > 0 {
			exits = append(exits, fmt.Sprintf("%s#%d %d×", s.name, s.n, n))
		}
	}
	if len(exits) == 0 {
		exits = []string{"none"}
	}
	c.summary = append(c.summary, "exits      "+strings.Join(exits, ", ")+" (services that exited by themselves; the harness restarted them)")
}

// report logs the case's figures.
func (c *chaos) report() {
	c.mark("checks")
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", c.t.Name())
	for _, l := range c.summary {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("  faults\n")
	for _, f := range c.faults {
		b.WriteString("    " + f + "\n")
	}
	fmt.Fprintf(&b, "  time       %s: %s", time.Since(c.began).Round(time.Second), strings.Join(c.phases, ", "))
	c.t.Log(b.String())
}

// reconnect replaces the stack's client and admin (after broker restarts).
func (s *stack) reconnect(t *testing.T) {
	s.admin.Close() // closes s.client too
	var err error
	if s.client, err = sarama.NewClient(s.cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test")); err != nil {
		t.Fatal(err)
	}
	if s.admin, err = sarama.NewClusterAdminFromClient(s.client); err != nil {
		t.Fatal(err)
	}
}
