package flusher

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// heavyDay is a state of n plays of n distinct tracks with long names
// (about 130 bytes encoded per play).
func heavyDay(n int) *aggregator.Day {
	d := &aggregator.Day{}
	for i := range n {
		d.Add(aggregator.Play{Sec: uint32(i), TrackKey: uint64(1000 + i), ArtistKey: uint64(1 + i%7), AlbumKey: uint64(50 + i%11),
			Track: fmt.Sprintf("%s %d", strings.Repeat("Track name ", 10), i), Artist: fmt.Sprintf("Artist %d", i%7),
			Album: fmt.Sprintf("Album %d", i%11)})
	}
	return d
}

// boundedWriter is the flusher behind the sink, checking every flush
// against the byte bound: the records of a batch, and the encoded bytes
// of the states coalesced from them, are at most max (or one record).
type boundedWriter struct {
	*Flusher
	max int

	mu      sync.Mutex
	flushes int
	records int
	over    []string
}

func (w *boundedWriter) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	bytes := 0
	for _, m := range batch {
		bytes += sink.RecordBytes(m)
	}
	kept := 0
	for _, ud := range w.coalesce(batch) {
		kept += len(ud.d.Encode())
	}
	w.mu.Lock()
	w.flushes++
	w.records += len(batch)
	if len(batch) > 1 && (bytes > w.max || kept > w.max) {
		w.over = append(w.over, fmt.Sprintf("%d records, %d bytes, %d bytes coalesced", len(batch), bytes, kept))
	}
	w.mu.Unlock()
	return w.Flusher.Write(ctx, batch)
}

// flushThroughSink runs recs through the flusher's own sink configuration
// (a fake claim, no Kafka) on a model store until all but the last record
// are marked, and returns the writer and the store.
func flushThroughSink(t *testing.T, cfg Config, recs []*sarama.ConsumerMessage) (*boundedWriter, *memStore) {
	t.Helper()
	st := newMemStore(1)
	f := newFlusher(cfg, st)
	w := &boundedWriter{Flusher: f, max: cfg.MaxBatchBytes}
	sk, err := sink.New(f.sinkConfig(), w)
	if err != nil {
		t.Fatal(err)
	}
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
	deadline := time.Now().Add(10 * time.Second)
	// The last record waits for more (no bound reached, the linger is an
	// hour): everything before it is flushed and marked.
	for len(sess.Marked()) < len(recs)-1 {
		if time.Now().After(deadline) {
			t.Fatalf("marked %d of %d records: not flushed early", len(sess.Marked()), len(recs)-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(claim.Msgs)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.over) > 0 {
		t.Errorf("flushes over the %d-byte bound: %v", w.max, w.over)
	}
	return w, st
}

func boundConfig() Config {
	cfg := quietConfig()
	cfg.Brokers = []string{"x"}
	cfg.FlushInterval = time.Hour
	cfg.MaxBatch = 2000
	cfg.MaxBatchBytes = 64 << 10
	return cfg
}

// Catching up over heavy user-days, the flusher flushes a partition early
// once the states it holds would pass MaxBatchBytes (long before
// FlushInterval or MaxBatch), one state larger than the bound is flushed
// alone, and every day ends at its newest state.
func TestFlushesEarlyAtTheByteBound(t *testing.T) {
	cfg := boundConfig()
	sc := newFlusher(cfg, nil).sinkConfig()
	if sc.MaxBatchBytes != 64<<10 || sc.BatchSize != 2000 || sc.Linger != time.Hour || sc.Name != Name || sc.ReadAhead != 8 {
		t.Fatalf("sink config %+v", sc)
	}
	// 30 user-days of about 26 KiB, then one of about 130 KiB (over the
	// bound) between two small ones.
	var recs []*sarama.ConsumerMessage
	want := map[string]int{}
	total := 0
	for u := range 30 {
		key := fmt.Sprintf("user%02d|2026-03-%02d", u, 1+u%28)
		recs = append(recs, recOf(key, heavyDay(200)))
		want[key] = 200
		total += sink.RecordBytes(recs[len(recs)-1])
	}
	recs = append(recs, recOf("small|2026-03-01", dayWith(3)), recOf("whale|2026-03-02", heavyDay(1000)),
		recOf("small|2026-03-03", dayWith(4)))
	want["small|2026-03-01"], want["whale|2026-03-02"] = 3, 1000
	w, st := flushThroughSink(t, cfg, recs)
	if min := total / cfg.MaxBatchBytes; w.flushes < min {
		t.Errorf("%d flushes of %d bytes, want at least %d", w.flushes, total, min)
	}
	_, days := st.snapshot()
	for k, plays := range want {
		if days[k] != int64(plays) {
			t.Errorf("user_days %s = %d, want %d", k, days[k], plays)
		}
	}
}

// The bound counts the states a partition holds, not the changes read: 40
// successive states of each of three heavy user-days (about 1 MiB read,
// 16 times the bound) take one flush of three states, as under MaxBatch
// alone, and the superseded states are not held meanwhile.
func TestByteBoundKeepsCoalescing(t *testing.T) {
	cfg := boundConfig()
	cfg.MaxBatch = 120
	var recs []*sarama.ConsumerMessage
	read := 0
	for s := 1; s <= 40; s++ {
		for _, key := range []string{"ann|2026-03-01", "ben|2026-03-01", "cat|2026-03-02"} {
			recs = append(recs, recOf(key, heavyDay(s*3)))
			read += sink.RecordBytes(recs[len(recs)-1])
		}
	}
	recs = append(recs, recOf("dan|2026-03-03", dayWith(1)))
	superseded := recs[:len(recs)-4]
	w, st := flushThroughSink(t, cfg, recs)
	if w.flushes != 1 || w.records != 3 {
		t.Errorf("%d flushes of %d states for %d bytes read, want 1 of 3", w.flushes, w.records, read)
	}
	for _, m := range superseded {
		if m.Value != nil {
			t.Fatalf("superseded state at offset %d still held", m.Offset)
		}
	}
	_, days := st.snapshot()
	for _, k := range []string{"ann|2026-03-01", "ben|2026-03-01", "cat|2026-03-02"} {
		if days[k] != 120 {
			t.Errorf("user_days %s = %d, want 120", k, days[k])
		}
	}
}

// The cache counts what it holds: its bytes are within a few percent of
// the heap its entries take (encodings with the names in them, user names,
// entries, list and map), and a user cut from a longer string does not
// pin that string.
func TestCacheCountsWhatItHolds(t *testing.T) {
	for _, shape := range []struct{ rows, nameLen, userLen int }{{1, 10, 4}, {5, 20, 40}, {60, 30, 12}, {800, 60, 100}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			rows := make([]topk.EntityItem, shape.rows)
			for i := range rows {
				rows[i] = entityItem(topk.Tracks, uint64(i), strings.Repeat("n", shape.nameLen), "Band", 300)
			}
			n := max(200, 4000/shape.rows)
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			c := newCache(1 << 40)
			for i := range n {
				// a user cut from a longer string, as the flusher's users are
				key := fmt.Sprintf("%0*d|2026-01-01%s", shape.userLen, i, strings.Repeat("x", 1000))
				c.put(dayKey(key[:shape.userLen], time.Date(2026, 1, 1+i%28, 0, 0, 0, 0, time.UTC)), 5, rows)
			}
			runtime.GC()
			runtime.ReadMemStats(&m1)
			heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
			counted := float64(c.bytes())
			if r := heap / counted; r < 0.8 || r > 1.15 {
				t.Errorf("%d entries take %.0f bytes of heap, the cache counts %.0f (ratio %.2f)", n, heap, counted, r)
			}
			runtime.KeepAlive(c)
			runtime.KeepAlive(rows)
		})
	}
}
