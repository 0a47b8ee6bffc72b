package localstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	ldbiter "github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
	"github.com/topk-charts/topk/internal/metrics"
)

// offsetKey is where Goka's LevelDB storage keeps the table offset; the same
// key keeps directories interchangeable with Goka's default storage.
const offsetKey = "__offset"

// Options tune the batching.
type Options struct {
	// FlushInterval is the longest a write waits; default 20 ms.
	FlushInterval time.Duration
	// MaxPending flushes early when this many keys wait; default 4096.
	MaxPending int
	// MaxPendingBytes flushes early when the writes waiting hold this many
	// bytes (keys and values; a key written twice counts once, with its
	// latest value). It bounds the memory of a store between flushes:
	// 4096 states of up to 512 KiB were up to 2 GiB per partition. A value
	// larger than this is written at once. Default
	// DefaultMaxPendingBytes (TOPK_STORE_PENDING_BYTES).
	MaxPendingBytes int
	// Registerer takes topk_localstore_flushes_total and
	// topk_localstore_pending_bytes (registered by Open); nil:
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// DefaultMaxPendingBytes is Options.MaxPendingBytes unless set: 8 MiB,
// the default of TOPK_STORE_PENDING_BYTES.
const DefaultMaxPendingBytes = 8 << 20

func (o *Options) defaults() {
	if o.FlushInterval <= 0 {
		o.FlushInterval = 20 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 4096
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
}

// WithDefaults returns o with every unset field at its default (what a
// store uses; for logs).
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

// Flushes by reason: interval (the ticker), keys (MaxPending), bytes
// (MaxPendingBytes), read (an iterator or the end of recovery needs the
// writes in LevelDB), close. Pending bytes: all stores of the process.
var (
	flushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_localstore_flushes_total",
		Help: "Batches written to LevelDB by the aggregator's local stores, by reason (interval, keys, bytes, read, close).",
	}, []string{"reason"})
	pendingBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_localstore_pending_bytes",
		Help: "Bytes (keys and values) written to the local stores and not yet to LevelDB, all partitions together.",
	})
)

// Builder opens one LevelDB per topic partition under path.
func Builder(path string, o Options) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		db, err := leveldb.OpenFile(filepath.Join(path, fmt.Sprintf("%s.%d", topic, partition)), &opt.Options{
			// A bloom filter per table file: most Gets of new user-days miss.
			Filter: filter.NewBloomFilter(10),
		})
		if err != nil {
			return nil, fmt.Errorf("localstore: open leveldb: %w", err)
		}
		return New(db, o), nil
	}
}

// pending is a write not yet flushed; del marks a deletion.
type pending struct {
	value []byte
	del   bool
}

// Store is a batching goka storage.Storage over LevelDB.
type Store struct {
	db   *leveldb.DB
	opts Options

	mu          sync.Mutex
	pending     map[string]pending
	bytes       int // keys and values of pending
	offset      int64
	offsetDirty bool
	err         error // the first failed flush; every later call returns it

	stop chan struct{}
	done chan struct{}
}

// New wraps an open LevelDB.
func New(db *leveldb.DB, o Options) *Store {
	o.defaults()
	return &Store{db: db, opts: o, pending: map[string]pending{}}
}

// Open starts the background flusher.
func (s *Store) Open() error {
	if err := metrics.Register(s.opts.Registerer, flushes, pendingBytes); err != nil {
		return fmt.Errorf("localstore: %w", err)
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				_ = s.flushLocked("interval")
				s.mu.Unlock()
			}
		}
	}()
	return nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	err := s.flushLocked("close")
	s.mu.Unlock()
	return errors.Join(err, s.db.Close())
}

// flushLocked writes the pending values and the offset in one batch:
// LevelDB then holds every value Set before the offset was (Goka sets a
// record's value before its changelog acknowledgement gives the offset),
// so after a crash the store is never missing what its offset claims.
func (s *Store) flushLocked(reason string) error {
	if s.err != nil {
		return s.err
	}
	if len(s.pending) == 0 && !s.offsetDirty {
		return nil
	}
	var b leveldb.Batch
	for k, p := range s.pending {
		if p.del {
			b.Delete([]byte(k))
		} else {
			b.Put([]byte(k), p.value)
		}
	}
	if s.offsetDirty {
		b.Put([]byte(offsetKey), []byte(strconv.FormatInt(s.offset, 10)))
	}
	if err := s.db.Write(&b, nil); err != nil {
		s.err = fmt.Errorf("localstore: write batch: %w", err)
		return s.err
	}
	flushes.WithLabelValues(reason).Inc()
	pendingBytes.Sub(float64(s.bytes))
	clear(s.pending)
	s.bytes = 0
	s.offsetDirty = false
	return nil
}

// Has reports whether key has a value.
func (s *Store) Has(key string) (bool, error) {
	v, err := s.Get(key)
	return v != nil, err
}

// Get returns the value of key, nil when there is none.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.err
	}
	if p, ok := s.pending[key]; ok {
		s.mu.Unlock()
		if p.del {
			return nil, nil
		}
		return p.value, nil
	}
	s.mu.Unlock()
	v, err := s.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// Set stores value under key (flushed within FlushInterval).
func (s *Store) Set(key string, value []byte) error {
	return s.put(key, pending{value: value})
}

// Delete removes key.
func (s *Store) Delete(key string) error { return s.put(key, pending{del: true}) }

func (s *Store) put(key string, p pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	n := len(key) + len(p.value)
	if old, ok := s.pending[key]; ok {
		n -= len(key) + len(old.value)
	}
	s.pending[key] = p
	s.bytes += n
	pendingBytes.Add(float64(n))
	switch {
	case s.bytes >= s.opts.MaxPendingBytes:
		return s.flushLocked("bytes")
	case len(s.pending) >= s.opts.MaxPending:
		return s.flushLocked("keys")
	}
	return nil
}

// GetOffset returns the table offset, or def when none was stored.
func (s *Store) GetOffset(def int64) (int64, error) {
	s.mu.Lock()
	if s.offsetDirty || s.offset != 0 {
		o := s.offset
		s.mu.Unlock()
		return o, nil
	}
	s.mu.Unlock()
	v, err := s.db.Get([]byte(offsetKey), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, err
	}
	o, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("localstore: offset %q: %w", v, err)
	}
	return o, nil
}

// SetOffset records the offset of the latest changelog record the store
// holds; it is written in the same batch as the values.
func (s *Store) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset, s.offsetDirty = offset, true
	return s.err
}

// MarkRecovered flushes what recovery wrote.
func (s *Store) MarkRecovered() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked("read")
}

// Iterator traverses a snapshot of the flushed store.
func (s *Store) Iterator() (storage.Iterator, error) {
	return s.iterator(nil)
}

// IteratorWithRange traverses keys in [start, limit), or with prefix start
// when limit is empty.
func (s *Store) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if len(limit) > 0 {
		return s.iterator(&util.Range{Start: start, Limit: limit})
	}
	return s.iterator(util.BytesPrefix(start))
}

func (s *Store) iterator(r *util.Range) (storage.Iterator, error) {
	s.mu.Lock()
	err := s.flushLocked("read")
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &iter{s.db.NewIterator(r, &opt.ReadOptions{DontFillCache: true})}, nil
}

type iter struct{ it ldbiter.Iterator }

func (i *iter) Next() bool {
	for i.it.Next() {
		if string(i.it.Key()) != offsetKey {
			return true
		}
	}
	return false
}
func (i *iter) Err() error             { return i.it.Error() }
func (i *iter) Key() []byte            { return i.it.Key() }
func (i *iter) Value() ([]byte, error) { return i.it.Value(), nil }
func (i *iter) Release()               { i.it.Release() }
func (i *iter) Seek(key []byte) bool   { return i.it.Seek(key) }
