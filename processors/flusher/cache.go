package flusher

import (
	"container/list"
	"encoding/binary"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/topk-charts/topk"
)

// cache remembers the content of day states and month rollups by
// (user, period, version): an entry says "the rows of this period at this
// version (a day state's Version, a month rollup's sum of its days'
// versions) are these". It is content, not a copy of Cassandra's current
// value, so it cannot go stale: the rollup recompute reads the current
// versions (user_days, WRITETIME) from Cassandra and uses an entry only
// when its version is the current one. Keyed by version, not by plays:
// deletions make plays go down and up again, so equal plays can be two
// states. See the package doc for why that is exact and which entries may
// be put (put's callers).
//
// It also remembers, without rows, the highest version of each month and
// year rollup this instance has written (wrote, written): a recompute
// whose version is not above it has nothing to add and is not written
// again.
//
// Entries are stored encoded (about 36 bytes per row, and each other
// spelling's) and bounded in bytes, least recently used evicted first. One
// entry per (user, period): the one with the highest version. What an entry counts against the bound is what
// it holds on the heap (cost): its encoding (names included), its own copy
// of the user name, and the entry, list element and map slot.
type cache struct {
	mu    sync.Mutex
	max   int // bytes; 0: disabled
	size  int
	items map[cacheKey]*list.Element
	lru   list.List // of *cacheEntry, most recent first
}

type cacheKey struct {
	user  string
	level level
	part  int32 // days since 1970-01-01, yyyymm or yyyy
}

// level is what an entry holds.
type level uint8

const (
	levelDay          level = iota // a day state's rows
	levelMonth                     // a month rollup's rows (computed or read, see the package doc)
	levelMonthWritten              // no rows: the highest version of a month rollup written
	levelYearWritten               // no rows: the highest version of a year rollup written
)

type cacheEntry struct {
	key     cacheKey
	version int64
	enc     []byte
}

func newCache(maxBytes int) *cache {
	return &cache{max: maxBytes, items: map[cacheKey]*list.Element{}}
}

func dayKey(user string, day time.Time) cacheKey {
	return cacheKey{user: user, level: levelDay, part: int32(unixDay(day))}
}

func monthKey(user string, month int) cacheKey {
	return cacheKey{user: user, level: levelMonth, part: int32(month)}
}

// writtenKey is the key of the highest version written of t's (user, part).
func writtenKey(t table, user string, part int) cacheKey {
	if t == yearItems {
		return cacheKey{user: user, level: levelYearWritten, part: int32(part)}
	}
	return cacheKey{user: user, level: levelMonthWritten, part: int32(part)}
}

// wrote remembers that a rollup with version was written for k (writtenKey).
func (c *cache) wrote(k cacheKey, version int64) { c.put(k, version, nil) }

// written is the highest version remembered written for k (writtenKey).
func (c *cache) written(k cacheKey) (int64, bool) {
	if c == nil || c.max <= 0 {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[k]
	if el == nil {
		return 0, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).version, true
}

// get returns the rows of k if the entry's version is version.
func (c *cache) get(k cacheKey, version int64) ([]topk.EntityItem, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	el := c.items[k]
	if el == nil || el.Value.(*cacheEntry).version != version {
		c.mu.Unlock()
		return nil, false
	}
	c.lru.MoveToFront(el)
	enc := el.Value.(*cacheEntry).enc
	c.mu.Unlock()
	return decodeRows(enc)
}

// has reports whether get(k, version) would answer (without decoding).
func (c *cache) has(k cacheKey, version int64) bool {
	if c == nil || c.max <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[k]
	return el != nil && el.Value.(*cacheEntry).version == version
}

// put remembers rows as the content of k at version, unless an entry with
// a higher version is there already.
func (c *cache) put(k cacheKey, version int64, rows []topk.EntityItem) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[k]; el != nil {
		e := el.Value.(*cacheEntry)
		if e.version > version {
			return
		}
		if e.version == version {
			c.lru.MoveToFront(el)
			return
		}
		c.remove(el)
	}
	// Its own copy of the user: a substring would pin, uncounted, the
	// string it was cut from (a record's key, a decoded state).
	k.user = strings.Clone(k.user)
	e := &cacheEntry{key: k, version: version, enc: encodeRows(rows)}
	cost := e.cost()
	if cost > c.max {
		return
	}
	c.items[k] = c.lru.PushFront(e)
	c.size += cost
	for c.size > c.max {
		c.remove(c.lru.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	c.size -= e.cost()
}

// cost is an entry's memory: the allocations of its encoding and user
// name, rounded up as Go's allocator does, and entryOverhead.
func (e *cacheEntry) cost() int {
	return allocSize(cap(e.enc)) + allocSize(len(e.key.user)) + entryOverhead
}

// entryOverhead is an entry's memory besides its encoding and user name:
// the list element (48 bytes), the cacheEntry (64) and its map slot (a
// 24-byte key and a pointer at the map's load factor, about 64).
const entryOverhead = 176

// sizeClasses are Go's allocation size classes up to 32 KiB
// (runtime/sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
	2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240,
	10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// allocSize is the memory an allocation of n bytes takes.
func allocSize(n int) int {
	if n == 0 {
		return 0
	}
	if n > 32768 {
		return (n + 8191) &^ 8191
	}
	return sizeClasses[sort.SearchInts(sizeClasses, n)]
}

// Bytes is what the cache holds (metrics, tests).
func (c *cache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

var entityCode = map[topk.Entity]byte{topk.Artists: 0, topk.Albums: 1, topk.Tracks: 2}
var codeEntity = []topk.Entity{topk.Artists, topk.Albums, topk.Tracks}

// otherEntity is the code of an entity not in entityCode, followed by its
// name.
const otherEntity = 255

// encodeRows: the count (uvarint), then per row its entity's code and the
// item in the item codec (topk.AppendItem). Unknown entities are kept by
// name (otherEntity, then the name as topk.AppendString writes it).
func encodeRows(rows []topk.EntityItem) []byte {
	// The exact size, not topk.ItemSize's bound: the cache counts the
	// encoding's capacity, and the bound is about 20 bytes a row too many.
	size := uvarintLen(uint64(len(rows)))
	for i := range rows {
		size += rowSize(&rows[i])
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for i := range rows {
		r := &rows[i]
		if code, ok := entityCode[r.Entity]; ok {
			b = append(b, code)
		} else {
			b = append(b, otherEntity)
			b = topk.AppendString(b, string(r.Entity))
		}
		b = topk.AppendItem(b, &r.Item)
	}
	return b
}

// rowSize is the bytes encodeRows writes for r: its entity's code (and
// name when it has no code), then what topk.AppendItem writes.
func rowSize(r *topk.EntityItem) int {
	n := 1 + 8 + uvarintLen(uint64(r.Plays)) + stringLen(r.Name) + stringLen(r.Artist) +
		varintLen(r.First) + uvarintLen(uint64(len(r.Spellings)))
	if _, ok := entityCode[r.Entity]; !ok {
		n += stringLen(string(r.Entity))
	}
	for _, s := range r.Spellings {
		n += stringLen(s.Name) + uvarintLen(uint64(s.Plays)) + varintLen(s.First)
	}
	return n
}

// uvarintLen is the bytes of x as a uvarint.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintLen is the bytes of x as a varint (zig-zag encoded).
func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

// stringLen is the bytes of s as topk.AppendString writes it.
func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// minRowBytes is the fewest bytes encodeRows writes for a row: the code,
// the key, and a byte each for the plays, the two lengths, First and the
// count of other spellings.
const minRowBytes = 1 + 8 + 5

// decodeRows reverses encodeRows; ok is false (a cache miss) if b is not
// what it wrote.
func decodeRows(b []byte) (rows []topk.EntityItem, ok bool) {
	d := topk.NewDecoder(b)
	rows = make([]topk.EntityItem, d.Count(minRowBytes))
	for k := range rows {
		r := &rows[k]
		switch code := d.Byte(); {
		case code == otherEntity:
			r.Entity = topk.Entity(d.String())
		case int(code) < len(codeEntity):
			r.Entity = codeEntity[code]
		default:
			d.Fail()
		}
		r.Item = d.Item()
	}
	if !d.Done() {
		return nil, false
	}
	return rows, true
}
