package localstore

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/syndtr/goleveldb/leveldb"
)

func open(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(db, o)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadsSeeUnflushedWritesAndCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{FlushInterval: time.Hour})
	if err := s.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	_ = s.Set("b", []byte("2"))
	_ = s.Delete("b")
	_ = s.SetOffset(41)
	if v, _ := s.Get("a"); string(v) != "1" {
		t.Fatalf("unflushed a = %q", v)
	}
	if ok, _ := s.Has("b"); ok {
		t.Fatal("deleted b is still there")
	}
	if o, _ := s.GetOffset(-2); o != 41 {
		t.Fatalf("offset %d", o)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	defer s.Close()
	if v, _ := s.Get("a"); string(v) != "1" {
		t.Fatalf("after reopen a = %q", v)
	}
	if v, _ := s.Get("missing"); v != nil {
		t.Fatalf("missing key = %q", v)
	}
	if o, _ := s.GetOffset(-2); o != 41 {
		t.Fatalf("offset after reopen %d", o)
	}
}

func TestDefaultOffsetAndBackgroundFlush(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{FlushInterval: 5 * time.Millisecond})
	if o, _ := s.GetOffset(-2); o != -2 {
		t.Fatalf("empty store offset %d, want the default", o)
	}
	_ = s.Set("k", []byte("v"))
	_ = s.SetOffset(7)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := s.db.Get([]byte("k"), nil)
		if err == nil && string(v) == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background flush never wrote k")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
}

func TestIteratorSkipsOffsetAndSeesPending(t *testing.T) {
	s := open(t, t.TempDir(), Options{FlushInterval: time.Hour})
	defer s.Close()
	_ = s.SetOffset(3)
	for _, k := range []string{"u1|2026-01-01", "u1|2026-01-02", "u2|2026-01-01"} {
		_ = s.Set(k, []byte(k))
	}
	it, err := s.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	it.Release()
	if len(keys) != 3 {
		t.Fatalf("keys %q", keys)
	}
	it, _ = s.IteratorWithRange([]byte("u1|"), nil)
	n := 0
	for it.Next() {
		n++
	}
	it.Release()
	if n != 2 {
		t.Fatalf("prefix u1| has %d keys, want 2", n)
	}
}

func TestMaxPendingFlushesEarly(t *testing.T) {
	s := open(t, t.TempDir(), Options{FlushInterval: time.Hour, MaxPending: 2})
	defer s.Close()
	_ = s.Set("a", []byte("1"))
	_ = s.Set("b", []byte("2"))
	if v, err := s.db.Get([]byte("a"), nil); err != nil || string(v) != "1" {
		t.Fatalf("a not flushed at MaxPending: %q %v", v, err)
	}
}

// The pending writes are bounded in bytes: a key written twice counts
// once (with its latest value), reaching MaxPendingBytes flushes values
// and the offset in one batch, and a value over the bound alone is written
// at once.
func TestMaxPendingBytesFlushesEarly(t *testing.T) {
	s := open(t, t.TempDir(), Options{FlushInterval: time.Hour, MaxPendingBytes: 1000})
	defer s.Close()
	inDB := func(k string) bool {
		_, err := s.db.Get([]byte(k), nil)
		return err == nil
	}
	bytes0 := value(pendingBytes)
	_ = s.Set("a", make([]byte, 399)) // 400
	_ = s.Set("a", make([]byte, 299)) // 300: replaces the 400
	_ = s.Set("b", make([]byte, 399)) // 700
	_ = s.SetOffset(12)
	if inDB("a") || inDB("b") {
		t.Fatal("flushed under the bound (a rewritten key counted twice?)")
	}
	if s.bytes != 700 || value(pendingBytes)-bytes0 != 700 {
		t.Fatalf("pending %d bytes (gauge %v), want 700", s.bytes, value(pendingBytes)-bytes0)
	}
	byBytes := value(flushes.WithLabelValues("bytes"))
	_ = s.Set("c", make([]byte, 299)) // 1000: the bound
	if !inDB("a") || !inDB("b") || !inDB("c") {
		t.Fatal("not flushed at MaxPendingBytes")
	}
	if o, err := s.db.Get([]byte(offsetKey), nil); err != nil || string(o) != "12" {
		t.Fatalf("offset in LevelDB %q %v, want 12 (written with the values)", o, err)
	}
	if s.bytes != 0 || value(pendingBytes) != bytes0 || value(flushes.WithLabelValues("bytes")) != byBytes+1 {
		t.Fatalf("after the flush: pending %d, gauge %v, bytes flushes %v", s.bytes, value(pendingBytes)-bytes0,
			value(flushes.WithLabelValues("bytes"))-byBytes)
	}
	_ = s.Set("whale", make([]byte, 5000))
	if !inDB("whale") {
		t.Fatal("a value over the bound waited")
	}
	if v, _ := s.Get("whale"); len(v) != 5000 {
		t.Fatalf("whale has %d bytes", len(v))
	}
	if o := (Options{}).WithDefaults(); o.MaxPendingBytes != 8<<20 || o.MaxPending != 4096 || o.FlushInterval != 20*time.Millisecond {
		t.Errorf("defaults %+v", o)
	}
}

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
