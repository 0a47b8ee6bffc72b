package sitewide

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/lovoo/goka/storage"

	"github.com/topk-charts/topk"
)

// keyStore is the in-memory storage of one partition of the view: a map of
// the records as they arrived, no ordering kept on write (only iterators,
// for Goka's monitor and tests, sort, once per iterator), as the per-user
// view's dayStore. The index is kept by the view's update callback and
// Prune, not here: the store holds the encoded values for Get.
type keyStore struct {
	mu     sync.RWMutex
	m      map[string][]byte
	offset int64
	hasOff bool
}

var _ storage.Storage = (*keyStore)(nil)

func newKeyStore() *keyStore { return &keyStore{m: map[string][]byte{}} }

func (s *keyStore) Open() error  { return nil }
func (s *keyStore) Close() error { return nil }

func (s *keyStore) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[key]
	return ok, nil
}

func (s *keyStore) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[key], nil
}

func (s *keyStore) Set(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

func (s *keyStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *keyStore) GetOffset(def int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.hasOff {
		return def, nil
	}
	return s.offset, nil
}

func (s *keyStore) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset, s.hasOff = offset, true
	return nil
}

func (s *keyStore) MarkRecovered() error { return nil }

// len is the number of keys held.
func (s *keyStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// prune drops the keys of days before cutoff (a DayLayout date; dates in
// DayLayout sort as strings).
func (s *keyStore) prune(cutoff string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.m {
		if d, ok := keyDate(k); ok && d < cutoff {
			delete(s.m, k)
			n++
		}
	}
	return n
}

// keyDate is the date of a sitewide key (entity|16 hex|YYYY-MM-DD|bucket)
// without parsing it whole.
func keyDate(k string) (string, bool) {
	i := strings.IndexByte(k, '|')
	if i < 0 || len(k) < i+1+17+len(topk.DayLayout) {
		return "", false
	}
	return k[i+18 : i+18+len(topk.DayLayout)], true
}

func (s *keyStore) Iterator() (storage.Iterator, error) { return s.snapshot(nil, nil, false), nil }

// IteratorWithRange iterates over [start, limit); an empty limit means
// every key with the prefix start (as Goka's LevelDB storage does).
func (s *keyStore) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	return s.snapshot(start, limit, true), nil
}

func (s *keyStore) snapshot(start, limit []byte, ranged bool) *memIter {
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

// Seek moves to the first key ≥ key (LevelDB's semantics).
func (it *memIter) Seek(key []byte) bool {
	j, _ := slices.BinarySearch(it.keys, string(key))
	it.i = j
	return j < len(it.keys)
}
