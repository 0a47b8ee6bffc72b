package views

import (
	"bytes"
	"slices"
	"sort"
	"sync"

	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk/listen"
)

// MemStore is the in-memory storage of one partition of a view (the
// per-user view's, and views/sitewide's): a map, no ordering kept on
// write. Goka's storage.NewMemory sorts its key list on every new key and
// scans it on every delete, which makes a recovery over many keys
// quadratic; here only iterators (Goka's monitor, tests) pay for sorting,
// once per iterator.
//
// In the per-user view every write and delete is also reported to an
// index (the view's decoded days), so reads never decode.
type MemStore struct {
	mu     sync.RWMutex
	m      map[string][]byte
	offset int64
	hasOff bool
	index  index
}

// index is told about every key a store sets or deletes. A key set with
// a nil value was indexed already (the view's update callback decodes a
// record once, into the index); the store then asks the index for the
// value (encoded).
type index interface {
	set(key string, value []byte)
	delete(key string)
	encoded(key string) []byte
}

type noIndex struct{}

func (noIndex) set(string, []byte)    {}
func (noIndex) delete(string)         {}
func (noIndex) encoded(string) []byte { return nil }

var _ storage.Storage = (*MemStore)(nil)

// NewMemStore is a MemStore without an index.
func NewMemStore() *MemStore { return newDayStore(nil) }

func newDayStore(ix index) *MemStore {
	if ix == nil {
		ix = noIndex{}
	}
	return &MemStore{m: map[string][]byte{}, index: ix}
}

func (s *MemStore) Open() error  { return nil }
func (s *MemStore) Close() error { return nil }

func (s *MemStore) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[key]
	return ok, nil
}

func (s *MemStore) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.value(key), nil
}

// value is key's value (s.mu held): the stored bytes, or the index's
// encoding of a day it holds.
func (s *MemStore) value(key string) []byte {
	v, ok := s.m[key]
	if ok && v == nil {
		return s.index.encoded(key)
	}
	return v
}

// Set keeps value under key; a nil value means the index holds the key's
// day already (see index).
func (s *MemStore) Set(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	if value != nil {
		s.index.set(key, value)
	}
	return nil
}

func (s *MemStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	s.index.delete(key)
	return nil
}

func (s *MemStore) GetOffset(def int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.hasOff {
		return def, nil
	}
	return s.offset, nil
}

func (s *MemStore) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset, s.hasOff = offset, true
	return nil
}

func (s *MemStore) MarkRecovered() error { return nil }

// Len is the number of keys held.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// userDay is the day of a per-user key (user|YYYY-MM-DD): its end.
func userDay(k string) (string, bool) {
	if len(k) <= len(listen.DayLayout) {
		return "", false
	}
	return k[len(k)-len(listen.DayLayout):], true
}

// Prune drops the keys whose day (dayOf; false: none) is before cutoff
// (a DayLayout date: dates in DayLayout sort as strings).
func (s *MemStore) Prune(cutoff string, dayOf func(key string) (string, bool)) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.m {
		if d, ok := dayOf(k); ok && d < cutoff {
			delete(s.m, k)
			s.index.delete(k)
			n++
		}
	}
	return n
}

func (s *MemStore) Iterator() (storage.Iterator, error) { return s.snapshot(nil, nil, false), nil }

// IteratorWithRange iterates over [start, limit); an empty limit means
// every key with the prefix start (as Goka's LevelDB storage does).
func (s *MemStore) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	return s.snapshot(start, limit, true), nil
}

func (s *MemStore) snapshot(start, limit []byte, ranged bool) *memIter {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := &memIter{i: -1}
	for k, v := range s.m {
		if ranged {
			kb := []byte(k)
			if bytes.Compare(kb, start) < 0 {
				continue
			}
			if len(limit) == 0 && !bytes.HasPrefix(kb, start) || len(limit) > 0 && bytes.Compare(kb, limit) >= 0 {
				continue
			}
		}
		if v == nil {
			v = s.index.encoded(k)
		}
		it.keys = append(it.keys, k)
		it.vals = append(it.vals, v)
	}
	sort.Sort(it)
	return it
}

// memIter iterates over a sorted snapshot.
type memIter struct {
	keys []string
	vals [][]byte
	i    int
}

func (it *memIter) Len() int           { return len(it.keys) }
func (it *memIter) Less(a, b int) bool { return it.keys[a] < it.keys[b] }
func (it *memIter) Swap(a, b int) {
	it.keys[a], it.keys[b] = it.keys[b], it.keys[a]
	it.vals[a], it.vals[b] = it.vals[b], it.vals[a]
}

func (it *memIter) Next() bool {
	if it.i < len(it.keys) {
		it.i++
	}
	return it.i < len(it.keys)
}

func (it *memIter) Err() error { return nil }

func (it *memIter) Key() []byte {
	if it.i < 0 || it.i >= len(it.keys) {
		return nil
	}
	return []byte(it.keys[it.i])
}

func (it *memIter) Value() ([]byte, error) {
	if it.i < 0 || it.i >= len(it.keys) {
		return nil, nil
	}
	return it.vals[it.i], nil
}

func (it *memIter) Release() { it.i = len(it.keys) }

// Seek moves to the first key ≥ key (LevelDB's semantics); the next call
// of Key returns it.
func (it *memIter) Seek(key []byte) bool {
	j, _ := slices.BinarySearch(it.keys, string(key))
	it.i = j
	return j < len(it.keys)
}
