package aggregator

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// The state cache keeps the decoded states of the user-days a copy wrote
// last, so a listen of a hot user-day (today's, an import's) neither reads
// its state back from the local store nor decodes it: in a profile of
// `make bench-ingest` reading and decoding took a tenth of the aggregator's
// CPU, and most of its garbage.
//
// A cached state is exactly the value of its key in the local store,
// because only the callback writes the table, a partition's callbacks run
// one at a time, and the cache is dropped whenever that could stop being
// true:
//
//   - on every assignment (the rebalance callback, before any callback of
//     the new assignment runs): a partition may come back with a store
//     another copy advanced meanwhile;
//   - when the callback changes a state it then does not write (over the
//     state size limit): the entry is removed;
//   - when a write fails, Goka stops the processor and the supervisor
//     builds a new one, with a new, empty cache (New).
//
// Its memory is bounded by Config.CacheBytes (TOPK_AGGREGATOR_CACHE_MB) for
// the whole process, counted as an estimate of each decoded state's heap
// (footprint); a partition over the bound evicts its own entries.

var (
	cacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_aggregator_state_cache_total",
		Help: "Lookups of a user-day state in the aggregator's cache of decoded states, by result (hit, miss).",
	}, []string{"result"})
	cacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_aggregator_state_cache_bytes",
		Help: "Estimated heap of the decoded states the aggregator's cache holds (bounded by TOPK_AGGREGATOR_CACHE_MB).",
	})
	cacheHit, cacheMiss = cacheLookups.WithLabelValues("hit"), cacheLookups.WithLabelValues("miss")
)

// (New registers cacheLookups and cacheBytes.)

// DefaultCacheBytes is the default bound of the state cache.
const DefaultCacheBytes = 64 << 20

// stateCache is the cache of one processor: one partCache per partition it
// has processed in the current assignment, and their total footprint.
type stateCache struct {
	max   int64
	total atomic.Int64

	mu    sync.Mutex
	parts map[int32]*partCache
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: int64(max), parts: map[int32]*partCache{}}
}

// partition returns partition p's cache. Only p's callback uses it.
func (s *stateCache) partition(p int32) *partCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc := s.parts[p]
	if pc == nil {
		pc = &partCache{s: s, days: map[string]cachedDay{}}
		s.parts[p] = pc
	}
	return pc
}

// reset drops every entry (a new assignment).
func (s *stateCache) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pc := range s.parts {
		s.add(-pc.bytes)
	}
	s.parts = map[int32]*partCache{}
}

func (s *stateCache) add(n int64) {
	cacheBytes.Add(float64(n))
	s.total.Add(n)
}

// partCache is one partition's decoded states by key.
type partCache struct {
	s     *stateCache
	days  map[string]cachedDay
	bytes int64
}

type cachedDay struct {
	d    *Day
	size int64
}

// get returns key's cached state; the caller may change it, and then
// either puts it back or drops it.
func (pc *partCache) get(key string) (*Day, bool) {
	e, ok := pc.days[key]
	if !ok {
		cacheMiss.Inc()
		return nil, false
	}
	cacheHit.Inc()
	return e.d, true
}

// put caches d as key's state, encoded in encoded bytes, evicting other
// entries of the partition while the whole cache is over its bound.
func (pc *partCache) put(key string, d *Day, encoded int) {
	if pc.s.max <= 0 {
		return
	}
	size := footprint(key, d, encoded)
	old := pc.days[key].size
	pc.days[key] = cachedDay{d, size}
	pc.bytes += size - old
	pc.s.add(size - old)
	if pc.s.total.Load() <= pc.s.max {
		return
	}
	// Map iteration starts at a random entry: this evicts at random,
	// which for a cache of recent writes is close enough to LRU without
	// the bookkeeping.
	for k, e := range pc.days {
		if pc.s.total.Load() <= pc.s.max || len(pc.days) == 1 {
			break
		}
		if k == key {
			continue
		}
		delete(pc.days, k)
		pc.bytes -= e.size
		pc.s.add(-e.size)
	}
}

// drop removes key (its cached state was changed and not written).
func (pc *partCache) drop(key string) {
	if e, ok := pc.days[key]; ok {
		delete(pc.days, key)
		pc.bytes -= e.size
		pc.s.add(-e.size)
	}
}

// footprint estimates the heap of a decoded state: its item, spelling
// and seen slices by capacity, its names (at most the encoding's bytes:
// substrings of one copy of it, or the listens' strings), the key and the
// map entry. TestCacheFootprint checks it against runtime.MemStats.
func footprint(key string, d *Day, encoded int) int64 {
	items := cap(d.Artists) + cap(d.Tracks) + cap(d.Albums)
	spellings := 0
	for _, list := range [][]Item{d.Artists, d.Tracks, d.Albums} {
		for i := range list {
			spellings += cap(list[i].Spellings)
		}
	}
	return int64(items)*int64(unsafe.Sizeof(Item{})) + int64(spellings)*int64(unsafe.Sizeof(Spelling{})) +
		int64(cap(d.seen))*int64(unsafe.Sizeof(seen{})) + int64(encoded+len(key)) + 128
}
