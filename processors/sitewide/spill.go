package sitewide

import "math"

// The spill tree. A key holds at most Config.KeyBytes of listeners; once
// it is Full, the Counts of users it does not hold go to one of its eight
// children, chosen by a hash of the user and the parent's bucket, and so
// on down. The top-level buckets are 0…Buckets-1 (BucketOf); the children
// of bucket b are spillBase + 8·b + h(user, b) mod 8, so level 1 is
// 1024…1087, level 2 9216…9727, level 3 74752…78847: every level's
// buckets lie above the previous level's (spillBase + 8·lo > hi at every
// level), a bucket has exactly one parent ((c − spillBase) / 8), and a
// user's path from its top-level bucket is fixed by the user alone.
// Buckets Buckets…spillBase-1 are never used.
const (
	spillBase   = 1024
	spillFanout = 8
)

// Spill is the child of bucket a user's Count goes to when the key of
// bucket is Full, or ok false when the tree has no level left there (the
// child would pass math.MaxInt32, the largest bucket Cassandra's int
// column holds: after about eight levels).
func Spill(bucket uint32, user string) (child uint32, ok bool) {
	c := uint64(spillBase) + spillFanout*uint64(bucket) + uint64(spillHash(user, bucket)%spillFanout)
	if c > math.MaxInt32 {
		return 0, false
	}
	return uint32(c), true
}

// spillHash is FNV-1a of the user's bytes then the bucket's four bytes
// (big-endian), mixed by MurmurHash3's 32-bit finalizer. FNV-1a alone
// will not do: its low bits depend only on the input's low bits (xor and
// an odd multiplier carry nothing down), so h mod 8 of the users of one
// bucket (who share FNV-1a(user) mod 8, BucketOf) is one child for all,
// and its high bits barely move with the bucket's last byte
// (TestSpillSpread measured one child index shared by 15,003 of 16,000
// users under buckets 1 and 2).
func spillHash(user string, bucket uint32) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(user); i++ {
		h ^= uint32(user[i])
		h *= prime32
	}
	for _, c := range [4]byte{byte(bucket >> 24), byte(bucket >> 16), byte(bucket >> 8), byte(bucket)} {
		h ^= uint32(c)
		h *= prime32
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// OnPath reports whether bucket is on user's spill path: its top-level
// bucket (BucketOf) or a descendant Spill chooses for the user. A Count
// elsewhere would count the user in a second key of the item's day.
func OnPath(bucket uint32, user string) bool {
	b := BucketOf(user)
	for b < bucket {
		c, ok := Spill(b, user)
		if !ok {
			return false
		}
		b = c
	}
	return b == bucket
}
