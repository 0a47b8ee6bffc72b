package sitewide

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestApplyBounds drives apply with random Counts (users, versions,
// plays up to 2³², names of random lengths and cases) over small keys
// whose Version starts below a varint boundary: no value passes
// keyBytes, every value decodes, its listeners stay sorted and each user
// is held at its latest version or handed on (forward, filled, moved).
func TestApplyBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, keyBytes := range []int{64, 100, 300, 1000} {
		b := AppendValue(nil, &Value{Version: 120})
		latest := map[string]uint32{}
		gone := map[string]bool{}
		for range 3000 {
			u := "u" + strconv.Itoa(rng.IntN(60))
			c := Count{User: u, Version: uint32(rng.IntN(50)), Plays: rng.Uint32() >> uint(rng.IntN(32)),
				Name: strings.Repeat("x", rng.IntN(12)), Artist: "A"}
			if rng.IntN(2) == 0 {
				c.Name = strings.ToUpper(c.Name)
			}
			res, out, err := apply(b, &c, []byte(u), keyBytes)
			if err != nil {
				t.Fatal(err)
			}
			switch res {
			case stale:
				if c.Version > latest[u] {
					t.Fatalf("%+v stale over version %d", c, latest[u])
				}
				continue
			case forward:
				if !gone[u] {
					if _, held := latest[u]; held {
						t.Fatalf("%s forwarded while held", u)
					}
				}
				gone[u] = true
				continue
			case applied:
				if gone[u] {
					t.Fatalf("%s applied after it left the key", u)
				}
				latest[u] = c.Version
			case filled, moved:
				delete(latest, u)
				gone[u] = true
			}
			if len(out) > keyBytes {
				t.Fatalf("key of %d bytes: value of %d", keyBytes, len(out))
			}
			v, err := DecodeValue(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Listeners) != len(latest) || len(v.Spellings) > MaxSpellings {
				t.Fatalf("%d listeners, %d held; %d spellings", len(v.Listeners), len(latest), len(v.Spellings))
			}
			for i, l := range v.Listeners {
				if i > 0 && v.Listeners[i-1].User >= l.User {
					t.Fatal("listeners not sorted")
				}
				if latest[l.User] != l.Version {
					t.Fatalf("%s at version %d, want %d", l.User, l.Version, latest[l.User])
				}
			}
			b = out
		}
	}
}
