// The attack runs of `make bench-api`: ordinary requests served by the
// view while an attacker asks for ranges only Cassandra holds, each with
// other from/to so that no cache helps, against the api with the limits
// of `topk api` and without them.
//
// Clients are told apart the honest way, by source address: every
// address of 127.0.0.0/8 is this host's on Linux, so a dialer with a
// LocalAddr of 127.0.1.7 connects from there, and the server's rate
// limiter (which trusts no header) sees another client. Ordinary
// traffic comes from enough addresses that each stays at half the
// per-client rate (many users, each under the limit); the attacker from
// one (127.0.0.2) or, to reach the Cassandra bound, from many at half
// the rate each.

package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/config"
)

type attackSetup struct {
	limitedURL, unlimitedURL string
	rate, attackRate         int
	dur                      time.Duration
	users                    int
	today                    time.Time
	viewDays                 int
	ref                      time.Duration // the trivial handler's p99
	cfg                      config.Config
	cassPID                  int                 // the local Cassandra, for its CPU use (0: unknown)
	settle                   func()              // waits for the limited api's background fills
	profileDir               string              // a CPU profile of this process per scenario there ("": none)
	metrics                  prometheus.Gatherer // the limited api's
	viewAttack               bool                // the attacker asks for one view-served chart (-attack-view)
}

// cpu is a reading of where the machine's CPU time went: this process
// (api and load generator), the local Cassandra, and the whole machine.
type cpu struct{ self, cass, busy, total time.Duration }

func readCPU(cassPID int) cpu {
	var c cpu
	c.self, _ = benchkit.CPUTimeOf(os.Getpid())
	if cassPID != 0 {
		c.cass, _ = benchkit.CPUTimeOf(cassPID)
	}
	c.busy, c.total = benchkit.SystemCPU()
	return c
}

// since is the use between c0 and c in cores (self, Cassandra) and the
// machine's busy share.
func (c cpu) since(c0 cpu, wall time.Duration) (self, cass string, busy string) {
	cores := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/wall.Seconds()) }
	busy = "?"
	if t := c.total - c0.total; t > 0 {
		busy = fmt.Sprintf("%.0f%%", 100*float64(c.busy-c0.busy)/float64(t))
	}
	cass = "?"
	if c.cass > 0 {
		cass = cores(c.cass - c0.cass)
	}
	return cores(c.self - c0.self), cass, busy
}

// clients is an http.RoundTripper that sends request i from the i-th
// address (mod n), each address with its own connections.
type clients struct {
	trs  []*http.Transport
	next atomic.Uint64
}

// newClients makes n clients on consecutive addresses from first.
func newClients(first net.IP, n int) *clients {
	c := &clients{}
	ip := first.To4()
	for range n {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: append(net.IP(nil), ip...)}, Timeout: 5 * time.Second}
		c.trs = append(c.trs, &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16, MaxConnsPerHost: 64})
		ip = next(ip)
	}
	return c
}

func next(ip net.IP) net.IP {
	out := append(net.IP(nil), ip...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out
}

func (c *clients) RoundTrip(r *http.Request) (*http.Response, error) {
	return c.trs[c.next.Add(1)%uint64(len(c.trs))].RoundTrip(r)
}

func (c *clients) close() {
	for _, tr := range c.trs {
		tr.CloseIdleConnections()
	}
}

// ordinaryTargets are view-served charts: the heavy user's 30 days and
// every user's 30 days (both inside the view's window).
func ordinaryTargets(base string, users int) []vegeta.Target {
	ts := []vegeta.Target{{Method: "GET", URL: base + "/v1/users/" + heavyUser + "/top/tracks?range=30d"}}
	for u := range users {
		ts = append(ts, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/v1/users/user-%d/top/artists?range=30d", base, u)})
	}
	return ts
}

// attackTargeter asks for top charts of random users over random ranges
// that end before the view's window: Cassandra only, a new from/to each
// time.
func attackTargeter(base string, users int, today time.Time, viewDays int) vegeta.Targeter {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(5, 8))
	entities := []string{"tracks", "artists", "albums"}
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	return func(t *vegeta.Target) error {
		mu.Lock()
		defer mu.Unlock()
		to := today.AddDate(0, 0, -(viewDays + 1 + r.IntN(300)))
		from := to.AddDate(0, 0, -r.IntN(700))
		user := heavyUser
		if r.IntN(4) != 0 {
			user = "user-" + strconv.Itoa(r.IntN(users))
		}
		t.Method, t.URL = "GET", fmt.Sprintf("%s/v1/users/%s/top/%s?from=%s&to=%s", base, user, entities[r.IntN(3)], day(from), day(to))
		return nil
	}
}

// schedLatencies is the Go scheduler's histogram of how long goroutines
// waited runnable before they ran.
func schedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedSince renders the p50, p99, p99.9 and the largest bucket of the
// waits between h0 and h.
func schedSince(h, h0 *metrics.Float64Histogram) string {
	if h == nil || h0 == nil {
		return "?"
	}
	counts := make([]uint64, len(h.Counts))
	var n uint64
	for i := range counts {
		counts[i] = h.Counts[i] - h0.Counts[i]
		n += counts[i]
	}
	if n == 0 {
		return "none"
	}
	at := func(q float64) time.Duration {
		want, seen := uint64(math.Ceil(q*float64(n))), uint64(0)
		for i, c := range counts {
			if seen += c; seen >= want {
				return time.Duration(h.Buckets[i+1] * float64(time.Second))
			}
		}
		return 0
	}
	top := 0
	for i, c := range counts {
		if c > 0 {
			top = i
		}
	}
	return fmt.Sprintf("%d waits; p50 < %v, p99 < %v, p99.9 < %v, longest < %v", n, at(0.5), at(0.99), at(0.999), time.Duration(h.Buckets[top+1]*float64(time.Second)))
}

// counters reads every counter of g by name and labels.
func counters(g prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	if g == nil {
		return out
	}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() == nil {
				continue
			}
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			out[name] = m.GetCounter().GetValue()
		}
	}
	return out
}

// countersSince renders the counters of the api's cache and Cassandra
// slots that grew since m0.
func countersSince(m, m0 map[string]float64) string {
	var parts []string
	for k, v := range m {
		if d := v - m0[k]; d > 0 && (strings.HasPrefix(k, "topk_api_cache") || strings.HasPrefix(k, "topk_api_cassandra") || strings.HasPrefix(k, "topk_api_top")) {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, "topk_api_"), d))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// startProfile starts a CPU profile of this process in dir (scenario i's
// file); the function returned stops it. dir "": nothing.
func startProfile(dir string, i int) (stop func()) {
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("attack-%d.pprof", i))
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-api: no profile: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		fmt.Fprintf(os.Stderr, "bench-api: CPU profile %s\n", path)
	}
}

// underAttack runs and prints the attack scenarios.
func underAttack(s attackSetup) error {
	limit := s.cfg.API.RateLimit
	if limit < 1 {
		return fmt.Errorf("TOPK_API_RATE_LIMIT is %d: the attack runs need a rate limit", limit)
	}
	half := max(1, limit/2)
	nOrdinary := (s.rate + half - 1) / half     // each ordinary client at half the limit
	nSpread := (s.attackRate + half - 1) / half // the spread attacker, the same
	if nOrdinary > 250 || nSpread > 2*250 {
		return fmt.Errorf("%d ordinary and %d attacking addresses do not fit 127.0.1.0–127.0.4.255", nOrdinary, nSpread)
	}
	ordinaryFrom := net.IPv4(127, 0, 1, 1)
	spreadFrom := net.IPv4(127, 0, 2, 1)
	type scenario struct {
		name  string
		base  string
		from  net.IP // the attacker's first address; nil: no attack
		addrs int
	}
	scenarios := []scenario{
		{"limits on, no attack", s.limitedURL, nil, 0},
		{"limits on, attacker from 1 address", s.limitedURL, net.IPv4(127, 0, 0, 2), 1},
		{fmt.Sprintf("limits on, attacker from %d addresses", nSpread), s.limitedURL, spreadFrom, nSpread},
		{"no limits, attacker from 1 address", s.unlimitedURL, net.IPv4(127, 0, 0, 2), 1},
	}
	fmt.Printf("\nunder attack: ordinary = view-served 30-day charts at %d req/s from %d addresses (%d req/s each); attacker = %d req/s of\n"+
		"Cassandra-only ranges, each with other from/to; limits of `topk api`: %d req/s per client, bursts of %d requests and %d read tokens\n"+
		"(4 partition reads each), %d Cassandra fills and %d partition reads at once per process\n\n",
		s.rate, nOrdinary, s.rate/nOrdinary, s.attackRate, limit, s.cfg.API.RateBurst, s.cfg.API.RateReadBurst, s.cfg.Charts.CassandraConcurrency, s.cfg.Charts.CassandraReads)
	var rows [][]string
	for _, sc := range scenarios {
		ordinary := newClients(ordinaryFrom, nOrdinary)
		targets := ordinaryTargets(sc.base, s.users)
		// Warm up: every ordinary target asked once or more, then the
		// background fills that started (each user's all-time names)
		// finish: the run measures the steady state, not a cold cache.
		hit(ordinary, vegeta.NewStaticTargeter(targets...), s.rate, 2*time.Second)
		s.settle()
		fmt.Fprintf(os.Stderr, "bench-api: %s: Cassandra quiet after %v\n", sc.name, benchkit.WaitQuiet(s.cassPID, time.Minute).Round(time.Second))
		ordinary.close()
		c0, t0 := readCPU(s.cassPID), time.Now()
		m0, sched0 := counters(s.metrics), schedLatencies()
		stopProfile := startProfile(s.profileDir, len(rows))
		urls := make([]string, len(targets))
		for i, t := range targets {
			urls[i] = t.URL
		}
		ordP, err := startLoad(loadSpec{Targets: urls, From: ordinaryFrom.String(), Clients: nOrdinary, Rate: s.rate, Dur: s.dur})
		if err != nil {
			return err
		}
		var atkP *loadProcess
		if sc.from != nil {
			spec := loadSpec{Base: sc.base, Users: s.users, Today: s.today, ViewDays: s.viewDays,
				From: sc.from.String(), Clients: sc.addrs, Rate: s.attackRate, Dur: s.dur}
			if s.viewAttack {
				spec.Targets = []string{sc.base + "/v1/users/user-1/top/artists?range=30d"}
			}
			if atkP, err = startLoad(spec); err != nil {
				return err
			}
		}
		ord, loadCPU, err := ordP.wait()
		if err != nil {
			return err
		}
		var atk result
		if atkP != nil {
			var atkCPU time.Duration
			if atk, atkCPU, err = atkP.wait(); err != nil {
				return err
			}
			loadCPU += atkCPU
		}
		wall := time.Since(t0)
		self, cass, busy := readCPU(s.cassPID).since(c0, wall)
		stopProfile()
		fmt.Fprintf(os.Stderr, "bench-api: %s: ordinary requests over 10 ms by second sent (second:count): %s\n", sc.name, ord.slowSeconds())
		fmt.Fprintf(os.Stderr, "bench-api: %s: the limited api's counters: %s\n", sc.name, countersSince(counters(s.metrics), m0))
		fmt.Fprintf(os.Stderr, "bench-api: %s: goroutines runnable before running (the api's process): %s\n", sc.name, schedSince(schedLatencies(), sched0))
		row := []string{sc.name, fmtD(ord.p50), fmtD(ord.p99), fmt.Sprintf("%.1f×", float64(ord.p99)/float64(s.ref)), fmt.Sprintf("%.2f%%", 100*ord.success)}
		if sc.from == nil {
			row = append(row, "-", "-", "-", "-", "-")
		} else {
			other := atk.n - atk.codes[200] - atk.codes[429] - atk.codes[503]
			row = append(row, strconv.Itoa(atk.n), strconv.Itoa(atk.codes[200]), strconv.Itoa(atk.codes[429]), strconv.Itoa(atk.codes[503]), strconv.Itoa(other))
		}
		row = append(row, self, fmt.Sprintf("%.2f", loadCPU.Seconds()/wall.Seconds()), cass, busy)
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "bench-api: %s done\n", sc.name)
	}
	benchkit.Table(os.Stdout, []string{"scenario", "ordinary p50", "ordinary p99", "p99/trivial", "ordinary 200", "attacker sent", "200", "429", "503", "other",
		"CPU api", "CPU load", "CPU Cassandra", "machine busy"}, rows)
	return nil
}
