//go:build integration

package flusher_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// cqlCounter counts what a gocql session sends (every attempt, retries
// included): single statements by kind, batches, and failures.
type cqlCounter struct {
	on                              atomic.Bool
	selects, inserts, batches, errs atomic.Int64
	timeouts                        atomic.Int64
}

func (c *cqlCounter) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if !c.on.Load() {
		return
	}
	if strings.HasPrefix(strings.TrimSpace(strings.ToUpper(q.Statement)), "SELECT") {
		c.selects.Add(1)
	} else {
		c.inserts.Add(1)
	}
	c.failed(q.Err)
}

func (c *cqlCounter) ObserveBatch(_ context.Context, b gocql.ObservedBatch) {
	if !c.on.Load() {
		return
	}
	c.batches.Add(1)
	c.failed(b.Err)
}

func (c *cqlCounter) failed(err error) {
	if err == nil {
		return
	}
	c.errs.Add(1)
	if strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "Timeout") {
		c.timeouts.Add(1)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// Catch-up of a backlog, the shape that overloaded a 2-core machine with one
// Cassandra node: 200 users (TOPK_TEST_CATCHUP_USERS; 300 before `make
// test` had to fit in 30 minutes) × (the last 60 days + 20 days spread over
// the 3 years before), about 16k user-days, on 16 partitions, each user-day's
// successive states produced in waves (TOPK_TEST_CATCHUP_STATES states per
// user-day, default 3; 1 is a compacted changelog read by a new group).
// One flusher with the default settings (TOPK_TEST_FLUSHER_CONCURRENCY
// overrides Concurrency) starts on the full backlog. It logs user-days/s
// from the flusher's start (consumer group join included) until every
// offset is committed, and the CQL requests the flusher's session sent per
// user-day (every attempt, retries included); then checks every table
// exactly.
//
//	go test -tags integration -count=1 -p 1 -run IntegrationFlusherCatchUp -v ./processors/flusher/ 2>&1 | grep -E 'catch-up|ok|FAIL'
func TestIntegrationFlusherCatchUp(t *testing.T) {
	const parts = 16
	nUsers := envInt(t, "TOPK_TEST_CATCHUP_USERS", 200)
	nStates := envInt(t, "TOPK_TEST_CATCHUP_STATES", 3)
	cqlc := &cqlCounter{}
	w := newEmptyWorld(t, parts, cqlc)
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var waves [][]*sarama.ProducerMessage = make([][]*sarama.ProducerMessage, nStates)
	for u := range nUsers {
		user := fmt.Sprintf("user%03d", u)
		days := map[string]bool{}
		for d := range 60 {
			days[today.AddDate(0, 0, -d).Format(listen.DayLayout)] = true
		}
		for range 20 {
			days[today.AddDate(0, 0, -60-rng.IntN(3*365)).Format(listen.DayLayout)] = true
		}
		for day := range days {
			key := user + "|" + day
			w.keys = append(w.keys, key)
			plays := 5 + rng.IntN(36)
			d := &aggregator.Day{}
			for added := 0; added < plays; {
				i := rng.IntN(60) // 60 tracks of 15 artists, two spellings
				a := i % 15
				p := aggregator.Play{Sec: uint32(rng.IntN(86400)), TrackKey: uint64(1000 + i), ArtistKey: uint64(10 + a),
					Track: fmt.Sprintf("Song %d", i), Artist: fmt.Sprintf("Band %d", a)}
				if rng.IntN(2) == 0 {
					p.Track, p.Artist = strings.ToUpper(p.Track), strings.ToUpper(p.Artist)
				}
				if i%4 != 0 {
					p.AlbumKey, p.Album = uint64(100+a*3+i%3), fmt.Sprintf("Record %d-%d", a, i%3)
				}
				if !d.Add(p) {
					continue
				}
				added++
				// state k of nStates once k/nStates of the plays are in
				if s := len(w.states[key]); s < nStates && added*nStates >= (s+1)*plays {
					w.states[key] = append(w.states[key], d.Encode())
					waves[s] = append(waves[s], &sarama.ProducerMessage{Topic: w.topic, Key: sarama.StringEncoder(key),
						Value: sarama.ByteEncoder(w.states[key][s])})
				}
			}
			w.expected[key] = len(w.states[key]) - 1
		}
	}
	records := 0
	for _, wave := range waves {
		rng.Shuffle(len(wave), func(i, j int) { wave[i], wave[j] = wave[j], wave[i] })
		sinktest.Send(t, w.prod, wave)
		records += len(wave)
	}
	hwm := w.hwms()
	n := len(w.keys)
	t.Logf("backlog: %d user-days of %d users, %d records on %d partitions", n, nUsers, records, parts)

	base := map[string]float64{}
	for _, nl := range [][]string{{"topk_flusher_days_written_total"}, {"topk_flusher_rollups_written_total", "level", "month"},
		{"topk_flusher_rollups_written_total", "level", "year"}, {"topk_flusher_rollup_rounds_total"}, {"topk_flusher_rollup_requests_total"},
		{"topk_flusher_rollup_inputs_total", "level", "day", "source", "batch"}, {"topk_flusher_rollup_inputs_total", "level", "day", "source", "cache"},
		{"topk_flusher_rollup_inputs_total", "level", "day", "source", "read"}, {"topk_flusher_rollup_inputs_total", "level", "month", "source", "round"},
		{"topk_flusher_rollup_inputs_total", "level", "month", "source", "cache"}, {"topk_flusher_rollup_inputs_total", "level", "month", "source", "days"},
		{"topk_flusher_rollup_inputs_total", "level", "month", "source", "read"}, {"topk_flusher_reads_total", "table", "user_days"},
		{"topk_flusher_rollups_unchanged_total", "level", "month"}, {"topk_flusher_rollups_unchanged_total", "level", "year"}} {
		base[nl[0]+strings.Join(nl[1:], ",")] = sinktest.Metric(t, nl[0], nl[1:]...)
	}
	days0 := base["topk_flusher_days_written_total"]
	failures0 := sinktest.Metric(t, "topk_sink_write_failures_total", "sink", flusher.Name)
	cqlc.on.Store(true)
	start := time.Now()
	w.flusher(flusher.Config{Concurrency: envInt(t, "TOPK_TEST_FLUSHER_CONCURRENCY", 0)})
	a := sinktest.Admin(t, w.cfg)
	var first time.Time
	sinktest.Eventually(t, 15*time.Minute, "the backlog flushed and committed", func() bool {
		if first.IsZero() && sinktest.Metric(t, "topk_flusher_days_written_total") > days0 {
			first = time.Now()
		}
		time.Sleep(150 * time.Millisecond)
		c := sinktest.Committed(t, a, flusher.Group(w.cfg.Namespace), w.topic, parts)
		for p, h := range hwm {
			if h > 0 && c[p] != h {
				return false
			}
		}
		return true
	})
	done := time.Now()
	cqlc.on.Store(false)
	sel, ins, bat := cqlc.selects.Load(), cqlc.inserts.Load(), cqlc.batches.Load()
	elapsed := done.Sub(start)
	t.Logf("catch-up: %d user-days (%d records, %d states each) in %v from the flusher's start (first day written after %v): %.0f user-days/s; "+
		"CQL per user-day: %.2f reads, %.2f writes (%.2f single inserts + %.2f batches); %d failed requests (%d timeouts), %v failed flushes",
		n, records, nStates, elapsed.Round(time.Millisecond), first.Sub(start).Round(time.Millisecond), float64(n)/elapsed.Seconds(),
		float64(sel)/float64(n), float64(ins+bat)/float64(n), float64(ins)/float64(n), float64(bat)/float64(n),
		cqlc.errs.Load(), cqlc.timeouts.Load(),
		sinktest.Metric(t, "topk_sink_write_failures_total", "sink", flusher.Name)-failures0)
	m := func(name string, labels ...string) float64 {
		return sinktest.Metric(t, name, labels...) - base[name+strings.Join(labels, ",")]
	}
	t.Logf("catch-up: day states written %v; month rollups %v, year rollups %v (unchanged, not written: %v, %v); "+
		"rollup rounds %v for %v flushes; user_days reads %v; "+
		"day inputs batch/cache/read %v/%v/%v, month inputs round/cache/days/read %v/%v/%v/%v",
		m("topk_flusher_days_written_total"), m("topk_flusher_rollups_written_total", "level", "month"),
		m("topk_flusher_rollups_written_total", "level", "year"),
		m("topk_flusher_rollups_unchanged_total", "level", "month"), m("topk_flusher_rollups_unchanged_total", "level", "year"),
		m("topk_flusher_rollup_rounds_total"), m("topk_flusher_rollup_requests_total"),
		m("topk_flusher_reads_total", "table", "user_days"),
		m("topk_flusher_rollup_inputs_total", "level", "day", "source", "batch"),
		m("topk_flusher_rollup_inputs_total", "level", "day", "source", "cache"),
		m("topk_flusher_rollup_inputs_total", "level", "day", "source", "read"),
		m("topk_flusher_rollup_inputs_total", "level", "month", "source", "round"),
		m("topk_flusher_rollup_inputs_total", "level", "month", "source", "cache"),
		m("topk_flusher_rollup_inputs_total", "level", "month", "source", "days"),
		m("topk_flusher_rollup_inputs_total", "level", "month", "source", "read"))
	w.converge(3 * time.Minute)
}
