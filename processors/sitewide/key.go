package sitewide

import (
	"fmt"
	"hash"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk"
)

// Buckets is the number of keys one item's day is split into at first
// (BucketOf). Keys past it (Bucket ≥ Buckets) are the group's own.
const Buckets = 8

// Key identifies one value of the sitewide group: an item's listens of
// one UTC day by the users of one bucket.
type Key struct {
	Entity topk.Entity
	Item   uint64
	// Day is midnight UTC.
	Day    time.Time
	Bucket uint32
}

// BucketOf is the bucket of a user's Counts: FNV-1a of the user id mod
// Buckets.
func BucketOf(user string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(user))
	return h.Sum32() % Buckets
}

// String is the key as Kafka holds it: entity|item (16 hex digits)|YYYY-MM-DD|bucket.
func (k Key) String() string {
	b := make([]byte, 0, 48)
	b = append(b, k.Entity...)
	b = append(b, '|')
	b = appendHex16(b, k.Item)
	b = append(b, '|')
	b = k.Day.AppendFormat(b, topk.DayLayout)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(k.Bucket), 10)
	return string(b)
}

func appendHex16(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[(v>>uint(i))&0xf])
	}
	return b
}

// ParseKey reads a Key written by Key.String.
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 {
		return Key{}, fmt.Errorf("sitewide key %q: want entity|item|day|bucket", s)
	}
	var k Key
	switch e := topk.Entity(parts[0]); e {
	case topk.Tracks, topk.Artists, topk.Albums:
		k.Entity = e
	default:
		return Key{}, fmt.Errorf("sitewide key %q: unknown entity", s)
	}
	if len(parts[1]) != 16 {
		return Key{}, fmt.Errorf("sitewide key %q: item is not 16 hex digits", s)
	}
	item, err := strconv.ParseUint(parts[1], 16, 64)
	if err != nil {
		return Key{}, fmt.Errorf("sitewide key %q: item: %w", s, err)
	}
	k.Item = item
	if k.Day, err = time.Parse(topk.DayLayout, parts[2]); err != nil {
		return Key{}, fmt.Errorf("sitewide key %q: day: %w", s, err)
	}
	b, err := strconv.ParseUint(parts[3], 10, 32)
	if err != nil {
		return Key{}, fmt.Errorf("sitewide key %q: bucket: %w", s, err)
	}
	k.Bucket = uint32(b)
	return k, nil
}

// partitionSplit finds the part of a sitewide key Hasher hashes
// (entity|item|bucket, the day left out): b[:head] then b[tail:], or ok
// false for any other key.
func partitionSplit[T string | []byte](b T) (head, tail int, ok bool) {
	// entity|16 hex|YYYY-MM-DD|bucket
	first := -1
	for i := 0; i < len(b); i++ {
		if b[i] == '|' {
			first = i
			break
		}
	}
	if first < 0 {
		return 0, 0, false
	}
	rest := b[first+1:]
	if len(rest) < 16+1+10+1+1 || rest[16] != '|' || rest[27] != '|' {
		return 0, 0, false
	}
	switch topk.Entity(b[:first]) {
	case topk.Tracks, topk.Artists, topk.Albums:
	default:
		return 0, 0, false
	}
	for i := 28; i < len(rest); i++ {
		if c := rest[i]; c < '0' || c > '9' {
			return 0, 0, false
		}
	}
	return first + 1 + 17, first + 1 + 28, true
}

// keyHash is Hasher's sum of key, without allocating: FNV-1a of
// entity|item|bucket for a sitewide key, of the whole key otherwise.
func keyHash[T string | []byte](b T) uint32 {
	const offset32, prime32 = 2166136261, 16777619 // FNV-1a, as hash/fnv
	h := uint32(offset32)
	add := func(p T) {
		for i := 0; i < len(p); i++ {
			h ^= uint32(p[i])
			h *= prime32
		}
	}
	if head, tail, ok := partitionSplit(b); ok {
		add(b[:head])
		add(b[tail:])
	} else {
		add(b)
	}
	return h
}

// KeyPartition is the partition of key among n under Hasher (as sarama's
// hash partitioner and Goka compute it): where the fan-out's and the
// group's emits put a key.
func KeyPartition(key string, n int32) int32 {
	p := int32(keyHash(key)) % n
	if p < 0 {
		p = -p
	}
	return p
}

// Hasher is the partitioner of the counts topic, the group and its views
// (goka.WithHasher, goka.WithViewHasher): a sitewide key goes by FNV-1a
// of entity|item|bucket, so every day of an item's bucket is in one
// partition; any other key (the fan-out's own table, user|day) by FNV-1a
// of the whole key, as goka.DefaultHasher, so the fan-out's partitions
// stay the aggregator's.
func Hasher() hash.Hash32 { return &keyHasher{} }

type keyHasher struct{ b []byte }

func (h *keyHasher) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
func (h *keyHasher) Sum(b []byte) []byte {
	s := h.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
func (h *keyHasher) Reset()         { h.b = h.b[:0] }
func (h *keyHasher) Size() int      { return 4 }
func (h *keyHasher) BlockSize() int { return 1 }
func (h *keyHasher) Sum32() uint32  { return keyHash(h.b) }
