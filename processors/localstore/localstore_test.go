package localstore

import (
	"testing"
	"time"

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
