package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w*time.Millisecond {
			t.Errorf("ceiling of attempt %d = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.Ceiling(1000); got != 10*time.Second {
		t.Errorf("ceiling of attempt 1000 = %v (overflow?)", got)
	}
	for attempt := 1; attempt < 12; attempt++ {
		c := b.Ceiling(attempt)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(attempt)
			if d < c/2 || d > c {
				t.Fatalf("delay %v of attempt %d outside [%v, %v]", d, attempt, c/2, c)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct delays in 200: no jitter", attempt, len(seen))
		}
	}
	if got := (Backoff{}).Ceiling(1); got != DefaultBackoff.Min {
		t.Errorf("zero Backoff starts at %v, want the default %v", got, DefaultBackoff.Min)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{}.Validate()
	for _, want := range []string{"Name", "Brokers", "Group", "Topic"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("empty config: error %v does not mention %s", err, want)
		}
	}
	ok := Config{Name: "n", Brokers: []string{"b"}, Group: "g", Topic: "t"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ok, nil); err == nil {
		t.Error("New accepted a nil Writer")
	}
}

// scriptedWriter fails the first fail attempts of every batch, then records it.
type scriptedWriter struct {
	fail int

	mu       sync.Mutex
	attempts int
	batches  [][]int64
	written  chan []int64
	marked   func() []int64
	badMarks bool
}

func (w *scriptedWriter) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	offs := make([]int64, len(batch))
	for i, m := range batch {
		offs[i] = m.Offset
	}
	// Nothing of this batch may be marked before it is written.
	if ms := w.marked(); len(ms) > 0 && ms[len(ms)-1] >= offs[0] {
		w.badMarks = true
	}
	w.attempts++
	if w.attempts <= w.fail {
		return errors.New("injected failure")
	}
	w.attempts = 0
	w.batches = append(w.batches, offs)
	if w.written != nil {
		w.written <- offs
	}
	return nil
}

func newTestSink(t *testing.T, w Writer, batch int, linger time.Duration) *Sink {
	t.Helper()
	s, err := New(Config{Name: "unit_" + t.Name(), Brokers: []string{"x"}, Group: "g", Topic: "t",
		BatchSize: batch, Linger: linger, Backoff: Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func msg(off int64) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Topic: "t", Partition: 3, Offset: off, Timestamp: time.Now()}
}

// A full batch is written at once, a partial one after the linger, failures
// are retried with the same batch, and each batch's records are marked,
// one by one (kafka.OrderedCommits commits only marked prefixes), only
// after it was written.
func TestConsumeBatchesRetriesAndMarksAfterWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 100, 25)
	w := &scriptedWriter{fail: 2, written: make(chan []int64, 10), marked: sess.Marked}
	s := newTestSink(t, w, 10, 50*time.Millisecond)
	failures0 := value(writeFailures.WithLabelValues(s.cfg.Name))
	done := make(chan error, 1)
	go func() { done <- s.consume(sess, claim) }()
	for i := range int64(25) {
		claim.Msgs <- msg(i)
	}
	for _, want := range [][2]int64{{0, 9}, {10, 19}, {20, 24}} {
		select {
		case got := <-w.written:
			if got[0] != want[0] || got[len(got)-1] != want[1] || int64(len(got)) != want[1]-want[0]+1 {
				t.Fatalf("batch %v, want offsets %d..%d", got, want[0], want[1])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %v not written", want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sess.Marked()) < 25 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got := sess.Marked()
	for i := range got {
		if got[i] != int64(i) {
			t.Fatalf("marked %v, want 0..24 in order", got)
		}
	}
	if len(got) != 25 {
		t.Fatalf("marked %v, want 0..24 in order", got)
	}
	if w.badMarks {
		t.Fatal("an offset was marked before its batch was written")
	}
	if n := value(writeFailures.WithLabelValues(s.cfg.Name)) - failures0; n != 6 {
		t.Errorf("failures counted %v, want 6 (2 per batch)", n)
	}
	if n := value(retrying.WithLabelValues(s.cfg.Name)); n != 0 {
		t.Errorf("retrying gauge %v after success, want 0", n)
	}
	s.refreshGauges()
	if n := value(lag.WithLabelValues(s.cfg.Name, "3")); n != 0 {
		t.Errorf("lag %v after writing up to the high-water mark, want 0", n)
	}
	claim.HWM.Store(40)
	s.refreshGauges()
	if n := value(lag.WithLabelValues(s.cfg.Name, "3")); n != 15 {
		t.Errorf("lag %v with 15 records unread, want 15", n)
	}
	close(claim.Msgs)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A batch that keeps failing is never marked, the partition reports its
// retries, and ending the session abandons it (consume returns promptly).
func TestConsumeNeverSkipsAFailingBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 100, 8)
	w := &scriptedWriter{fail: 1 << 30, marked: sess.Marked}
	s := newTestSink(t, w, 4, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.consume(sess, claim) }()
	for i := range int64(8) {
		claim.Msgs <- msg(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		n := w.attempts
		w.mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts in 5 s", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Errorf("Check while retrying = %v, want the write error", err)
	}
	if n := value(retrying.WithLabelValues(s.cfg.Name)); n != 1 {
		t.Errorf("retrying gauge %v, want 1", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("consume did not return after the session ended")
	}
	if got := sess.Marked(); len(got) != 0 {
		t.Fatalf("marked %v while every write failed", got)
	}
	if len(w.batches) != 0 {
		t.Fatalf("batches recorded: %v", w.batches)
	}
	if n := value(retrying.WithLabelValues(s.cfg.Name)); n != 0 {
		t.Errorf("retrying gauge %v after the session ended, want 0", n)
	}
}

// The oldest-unwritten gauge follows the pending batch.
func TestOldestUnwrittenGauge(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 10, 1)
	block := make(chan struct{})
	w := writerFunc(func(ctx context.Context, _ []*sarama.ConsumerMessage) error {
		select {
		case <-block:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s := newTestSink(t, w, 1, time.Millisecond)
	go s.consume(sess, claim)
	m := msg(0)
	m.Timestamp = time.Now().Add(-90 * time.Second)
	claim.Msgs <- m
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.refreshGauges()
		if v := value(oldestUnwritten.WithLabelValues(s.cfg.Name)); v >= 90 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("oldest-unwritten gauge never reached the pending record's age")
		}
		time.Sleep(time.Millisecond)
	}
	close(block)
	for len(sess.Marked()) == 0 {
		time.Sleep(time.Millisecond)
	}
	s.refreshGauges()
	if v := value(oldestUnwritten.WithLabelValues(s.cfg.Name)); v != 0 {
		t.Fatalf("oldest-unwritten %v after the write, want 0", v)
	}
}

type writerFunc func(context.Context, []*sarama.ConsumerMessage) error

func (f writerFunc) Write(ctx context.Context, b []*sarama.ConsumerMessage) error { return f(ctx, b) }

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// A batch that keeps failing for longer than OutageLimit: consume gives up
// with an error naming the partition, the limit and the last write error,
// the batch unmarked; through ConsumeClaim the sink records it as the
// reason Run returns.
func TestConsumeGivesUpPastTheOutageLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 10, 4)
	w := &scriptedWriter{fail: 1 << 30, marked: sess.Marked}
	s := newTestSink(t, w, 4, time.Millisecond)
	s.cfg.OutageLimit = 100 * time.Millisecond
	for i := range int64(4) {
		claim.Msgs <- msg(i)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- handler{s}.ConsumeClaim(sess, claim) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ConsumeClaim returned %v; the reason goes to Run", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still retrying 5 s after a 100 ms outage limit")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("gave up after %v, before the limit", d)
	}
	err := s.fatalErr()
	for _, want := range []string{"partition 3", "offsets 0–3 left unmarked", "outage limit of 100ms", "injected failure"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reason %v lacks %q", err, want)
		}
	}
	var le *outage.LimitError
	if !errors.As(err, &le) {
		t.Errorf("reason %v is not an outage.LimitError", err)
	}
	if got := sess.Marked(); len(got) != 0 {
		t.Fatalf("marked %v", got)
	}
}

// A batch that fails for a while and then succeeds within the limit is
// written and marked: the outage is ridden out.
func TestConsumeRidesOutAnOutageWithinTheLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 10, 2)
	w := &scriptedWriter{fail: 30, written: make(chan []int64, 1), marked: sess.Marked}
	s := newTestSink(t, w, 2, time.Millisecond)
	s.cfg.OutageLimit = 10 * time.Second
	claim.Msgs <- msg(0)
	claim.Msgs <- msg(1)
	go s.consume(sess, claim)
	select {
	case <-w.written:
	case <-time.After(5 * time.Second):
		t.Fatal("not written")
	}
	for len(sess.Marked()) < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := s.fatalErr(); err != nil {
		t.Fatal(err)
	}
}

// Kafka unreachable (nothing listens on the broker's port): Run retries
// creating the consumer group, Check says Kafka is down meanwhile, and
// past OutageLimit Run returns an error naming Kafka.
func TestRunGivesUpWhenKafkaStaysAway(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sc := sarama.NewConfig()
	sc.Metadata.Retry.Max = 0
	sc.Net.DialTimeout = 200 * time.Millisecond
	s, err := New(Config{Name: "unit_kafka_away", Brokers: []string{addr}, Group: "g", Topic: "t",
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, OutageLimit: 600 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Sarama: sc}, writerFunc(func(context.Context, []*sarama.ConsumerMessage) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Check(context.Background()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Check never reported Kafka down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Check(context.Background()); !strings.Contains(err.Error(), "kafka down for") {
		t.Errorf("Check = %v", err)
	}
	select {
	case err := <-done:
		var le *outage.LimitError
		if !errors.As(err, &le) || le.Name != "kafka" || !strings.Contains(err.Error(), "unit_kafka_away") {
			t.Fatalf("Run = %v, want the outage limit on kafka", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still retrying 10 s after a 600 ms outage limit")
	}

	// Cancelled while waiting: nil.
	s2, _ := New(Config{Name: "unit_kafka_away", Brokers: []string{addr}, Group: "g", Topic: "t",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Sarama: sc}, writerFunc(func(context.Context, []*sarama.ConsumerMessage) error { return nil }))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s2.Run(ctx); err != nil {
		t.Fatalf("Run cancelled while waiting for Kafka = %v, want nil", err)
	}
}

func sized(off int64, valueBytes int) *sarama.ConsumerMessage {
	m := msg(off)
	m.Key = []byte("k")
	m.Value = make([]byte, valueBytes-1) // RecordBytes: key + value
	return m
}

// A batch is cut by bytes before its record count: a record that would
// take it past MaxBatchBytes starts the next batch, and a record larger
// than the bound is written alone (never stalled). The written bytes are
// observed, and the in-flight gauge follows the batch being collected.
func TestConsumeCutsBatchesByBytes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 100, 100)
	w := &scriptedWriter{written: make(chan []int64, 10), marked: sess.Marked}
	s := newTestSink(t, w, 100, time.Hour) // neither the count nor the linger cuts
	s.cfg.MaxBatchBytes = 1000
	n0, sum0 := histogram(batchSizeBytes.WithLabelValues(s.cfg.Name))
	done := make(chan error, 1)
	go func() { done <- s.consume(sess, claim) }()
	// 400+400 fit; +400 would be 1200: cut before offset 2. 400+600 reach
	// the bound exactly: cut at once. 5000 alone is over it: cut before and
	// after. 100 then waits for more.
	for i, n := range []int{400, 400, 400, 600, 5000, 100} {
		claim.Msgs <- sized(int64(i), n)
	}
	for _, want := range [][]int64{{0, 1}, {2, 3}, {4}} {
		select {
		case got := <-w.written:
			if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				t.Fatalf("batch %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %v not written", want)
		}
	}
	select {
	case got := <-w.written:
		t.Fatalf("batch %v written before reaching a bound", got)
	case <-time.After(50 * time.Millisecond):
	}
	s.refreshGauges()
	if v := value(batchBytes.WithLabelValues(s.cfg.Name)); v != 100 {
		t.Errorf("topk_sink_batch_bytes %v with one 100-byte record pending, want 100", v)
	}
	claim.Msgs <- sized(6, 950) // 100+950 > 1000: 5 alone, then 6 waits
	select {
	case got := <-w.written:
		if len(got) != 1 || got[0] != 5 {
			t.Fatalf("batch %v, want [5]", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("batch [5] not written")
	}
	for len(sess.Marked()) < 6 {
		time.Sleep(time.Millisecond)
	}
	if got := sess.Marked(); len(got) != 6 || got[5] != 5 {
		t.Fatalf("marked %v, want 0..5", got)
	}
	// The marks come before the flushed batch's bytes are cleared and
	// record 6 is added: the gauge reaches 950 shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.refreshGauges()
		v := value(batchBytes.WithLabelValues(s.cfg.Name))
		if v == 950 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topk_sink_batch_bytes %v with record 6 pending, want 950", v)
		}
		time.Sleep(time.Millisecond)
	}
	if n, sum := histogram(batchSizeBytes.WithLabelValues(s.cfg.Name)); n-n0 != 4 || sum-sum0 != 6900 {
		t.Errorf("written batch bytes: %d batches, %v bytes; want 4, 6900", n, sum)
	}
	close(claim.Msgs)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := value(batchBytes.WithLabelValues(s.cfg.Name)); v != 0 {
		t.Errorf("topk_sink_batch_bytes %v after the claim ended, want 0", v)
	}
}

// The first record of a batch larger than MaxBatchBytes is a batch of one,
// retried like any other until written.
func TestConsumeWritesAnOversizeRecordAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 10, 3)
	w := &scriptedWriter{fail: 2, written: make(chan []int64, 10), marked: sess.Marked}
	s := newTestSink(t, w, 100, time.Hour)
	s.cfg.MaxBatchBytes = 10
	go s.consume(sess, claim)
	for i := range int64(3) {
		claim.Msgs <- sized(i, 1<<20)
	}
	for i := range int64(3) {
		select {
		case got := <-w.written:
			if len(got) != 1 || got[0] != i {
				t.Fatalf("batch %v, want [%d]", got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("oversize record %d not written", i)
		}
	}
	for len(sess.Marked()) < 3 {
		time.Sleep(time.Millisecond)
	}
}

// histogram reads a histogram's count and sum.
func histogram(o prometheus.Observer) (uint64, float64) {
	var m dto.Metric
	if err := o.(prometheus.Histogram).Write(&m); err != nil {
		panic(err)
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

func TestRecordBytesAndDefaults(t *testing.T) {
	m := &sarama.ConsumerMessage{Key: []byte("abc"), Value: make([]byte, 100),
		Headers: []*sarama.RecordHeader{{Key: []byte("reason"), Value: []byte("x")}, nil}}
	if n := RecordBytes(m); n != 110 {
		t.Errorf("RecordBytes = %d, want 110", n)
	}
	c := Config{Name: "n", Brokers: []string{"b"}, Group: "g", Topic: "t"}.withDefaults()
	if c.MaxBatchBytes != 4<<20 || c.BatchSize != 500 {
		t.Errorf("defaults: MaxBatchBytes %d, BatchSize %d", c.MaxBatchBytes, c.BatchSize)
	}
	if err := (Config{Name: "n", Brokers: []string{"b"}, Group: "g", Topic: "t", MaxBatchBytes: -1}).Validate(); err == nil {
		t.Error("negative MaxBatchBytes accepted")
	}
}

// coalescingWriter ranks records by their value's length (records with an
// empty key are not ranked) and records the batches it is given.
type coalescingWriter struct {
	mu      sync.Mutex
	batches [][]string // "key:len"
	written chan []string
}

func (w *coalescingWriter) Rank(m *sarama.ConsumerMessage) (int64, bool) {
	return int64(len(m.Value)), len(m.Key) > 0
}

func (w *coalescingWriter) Write(_ context.Context, batch []*sarama.ConsumerMessage) error {
	var b []string
	for _, m := range batch {
		b = append(b, fmt.Sprintf("%s:%d", m.Key, len(m.Value)))
	}
	w.mu.Lock()
	w.batches = append(w.batches, b)
	w.mu.Unlock()
	w.written <- b
	return nil
}

func keyed(off int64, key string, valueBytes int) *sarama.ConsumerMessage {
	m := msg(off)
	m.Key, m.Value = []byte(key), make([]byte, valueBytes)
	return m
}

// A Coalescer's batch keeps one record per ranked key (the highest rank,
// the later on a tie) in the place of the key's first record; the others
// are marked and never written, and only the records kept count against
// MaxBatchBytes, so the batch holds many successive states of a few keys.
func TestConsumeCoalescesByKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := sinktest.NewSession(ctx)
	claim := sinktest.NewClaim(3, 100, 100)
	w := &coalescingWriter{written: make(chan []string, 10)}
	s := newTestSink(t, w, 100, time.Hour)
	s.cfg.MaxBatchBytes = 1000
	coalesced0 := value(coalesced.WithLabelValues(s.cfg.Name))
	go s.consume(sess, claim)
	// a grows 100→300, b 100→200 then an older 150 arrives (dropped), an
	// unranked record is kept as is: 1+300 + 1+200 + 50 = 552 bytes after
	// 7 records whose values sum to 1150.
	recs := []*sarama.ConsumerMessage{keyed(0, "a", 100), keyed(1, "b", 100), keyed(2, "a", 200), keyed(3, "", 50),
		keyed(4, "b", 200), keyed(5, "a", 300), keyed(6, "b", 150)}
	dropped := []*sarama.ConsumerMessage{recs[0], recs[1], recs[2], recs[6]}
	for _, m := range recs {
		claim.Msgs <- m
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.refreshGauges()
		if value(batchBytes.WithLabelValues(s.cfg.Name)) == 552 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch bytes %v, want 552", value(batchBytes.WithLabelValues(s.cfg.Name)))
		}
		time.Sleep(time.Millisecond)
	}
	for _, m := range dropped {
		if m.Value != nil {
			t.Errorf("superseded record %d still holds its value", m.Offset)
		}
	}
	// a at 500 bytes: 1+500 + 201 + 50 = 752 fits; a at 800 would make
	// 1052: the batch is written first, a:800 starts the next one.
	claim.Msgs <- keyed(7, "a", 500)
	claim.Msgs <- keyed(8, "a", 800)
	select {
	case got := <-w.written:
		if want := "[a:500 b:200 :50]"; fmt.Sprint(got) != want {
			t.Fatalf("batch %v, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the batch was not cut by bytes")
	}
	for len(sess.Marked()) < 8 {
		time.Sleep(time.Millisecond)
	}
	if got := sess.Marked(); fmt.Sprint(got) != "[0 1 2 3 4 5 6 7]" {
		t.Errorf("marked %v, want 0..7 (superseded records too)", got)
	}
	if n := value(coalesced.WithLabelValues(s.cfg.Name)) - coalesced0; n != 5 {
		t.Errorf("coalesced %v, want 5", n)
	}
	// One key's states alone never cut the batch, however large they grow:
	// the batch is the one record.
	claim.Msgs <- keyed(9, "a", 5000)
	claim.Msgs <- keyed(10, "c", 10)
	select {
	case got := <-w.written:
		if want := "[a:5000]"; fmt.Sprint(got) != want {
			t.Fatalf("batch %v, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the oversize state was not written")
	}
}
