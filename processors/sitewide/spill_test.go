package sitewide

import (
	"math"
	"strconv"
	"testing"
)

// level is the depth of a bucket in the spill tree (0: top-level).
func level(b uint32) int {
	n := 0
	for b >= spillBase {
		b = (b - spillBase) / spillFanout
		n++
	}
	return n
}

// TestSpillLevelsDisjoint walks every level's range: each child lies above
// its level's predecessors, has its parent as the unique (c-1024)/8, and
// the ranges of two levels never meet.
func TestSpillLevelsDisjoint(t *testing.T) {
	lo, hi := uint64(0), uint64(Buckets-1) // level 0
	levels := 0
	for {
		clo, chi := spillBase+spillFanout*lo, spillBase+spillFanout*hi+spillFanout-1
		if chi > math.MaxInt32 {
			break
		}
		if clo <= hi {
			t.Fatalf("level %d [%d, %d] meets level %d [%d, %d]", levels+1, clo, chi, levels, lo, hi)
		}
		lo, hi = clo, chi
		levels++
	}
	if levels < 6 {
		t.Fatalf("only %d spill levels", levels)
	}
	for i := range 2000 {
		user := "user-" + strconv.Itoa(i)
		b := BucketOf(user)
		depth := 0
		for {
			c, ok := Spill(b, user)
			if !ok {
				break
			}
			if c <= b || (c-spillBase)/spillFanout != b || level(c) != depth+1 {
				t.Fatalf("user %s: child %d of %d (level %d) is not on level %d", user, c, b, level(c), depth+1)
			}
			if c2, _ := Spill(b, user); c2 != c {
				t.Fatalf("Spill(%d, %s) not deterministic: %d, %d", b, user, c, c2)
			}
			if !OnPath(c, user) {
				t.Fatalf("child %d not on %s's path", c, user)
			}
			b = c
			depth++
		}
		if depth != levels {
			t.Fatalf("user %s: %d levels, want %d", user, depth, levels)
		}
		if _, ok := Spill(b, user); ok {
			t.Fatal("a bucket past the last level")
		}
	}
}

// TestSpillSpread: the users of one bucket (those on its path) spread
// evenly over its eight children, at the first and deeper levels, and a
// user's child of one bucket does not decide its child of another.
func TestSpillSpread(t *testing.T) {
	const users = 16000
	for _, parent := range []uint32{3, 1024 + 8*3 + 5, 1024 + 8*(1024+8*3+5) + 2} {
		var per [spillFanout]int
		for i := 0; per[0]+per[1]+per[2]+per[3]+per[4]+per[5]+per[6]+per[7] < users; i++ {
			u := "u" + strconv.Itoa(i)
			if !OnPath(parent, u) {
				continue
			}
			c, ok := Spill(parent, u)
			if !ok {
				t.Fatal("no child")
			}
			per[c-spillBase-spillFanout*parent]++
		}
		for j, n := range per {
			if n < users/spillFanout*8/10 || n > users/spillFanout*12/10 {
				t.Errorf("bucket %d: child %d takes %d of %d users", parent, j, n, users)
			}
		}
	}
	same := 0
	for i := range users {
		u := "u" + strconv.Itoa(i)
		a, _ := Spill(1, u)
		b, _ := Spill(2, u)
		if a-spillBase-8 == b-spillBase-16 {
			same++
		}
	}
	if same > users/spillFanout*12/10 {
		t.Errorf("%d of %d users take the same child index under buckets 1 and 2", same, users)
	}
}

func TestOnPath(t *testing.T) {
	u := "alice"
	b := BucketOf(u)
	if !OnPath(b, u) || OnPath((b+1)%Buckets, u) {
		t.Fatal("top-level bucket")
	}
	c, _ := Spill(b, u)
	other := spillBase + spillFanout*b + (c-spillBase-spillFanout*b+1)%spillFanout
	if !OnPath(c, u) || OnPath(other, u) || OnPath(500, u) {
		t.Fatal("child bucket")
	}
}
