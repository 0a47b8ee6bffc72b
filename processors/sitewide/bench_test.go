package sitewide

import (
	"fmt"
	"testing"
)

// BenchmarkApply is the group's work on a key per Count (the callback's
// apply: scan, splice, one new buffer) against the reference of a full
// DecodeValue, update and AppendValue of the same change, for keys of 10
// and 500 listeners. Run: go test -run - -bench Apply -benchtime 20000x.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{10, 500} {
		v := &Value{Version: 7, Spellings: []Spelling{{"Song", "Band"}, {"song", "band"}}}
		for i := range n {
			v.Listeners = append(v.Listeners, Listener{User: fmt.Sprintf("user-%05d", i), Plays: 3, Version: 2})
		}
		enc := AppendValue(nil, v)
		if len(enc) > DefaultKeyBytes {
			b.Fatalf("%d listeners: %d bytes", n, len(enc))
		}
		user := fmt.Sprintf("user-%05d", n/2)
		c := Count{User: user, Version: 3, Plays: 4, Name: "Song", Artist: "Band"}
		b.Run(fmt.Sprintf("listeners=%d/splice", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, out, err := apply(enc, &c, []byte(c.User), DefaultKeyBytes)
				if err != nil || res != applied || len(out) != len(enc) {
					b.Fatal(res, err)
				}
			}
		})
		b.Run(fmt.Sprintf("listeners=%d/decode-encode", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := DecodeValue(enc)
				if err != nil {
					b.Fatal(err)
				}
				i, ok := d.Find(c.User)
				if !ok || d.Listeners[i].Version >= c.Version {
					b.Fatal("not found")
				}
				d.Listeners[i].Plays, d.Listeners[i].Version = c.Plays, c.Version
				d.Version++
				if out := AppendValue(nil, d); len(out) != len(enc) {
					b.Fatal(len(out))
				}
			}
		})
	}
}
