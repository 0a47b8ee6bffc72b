package sitewide

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/topk-charts/topk"
)

// Listener is one user's latest Count in a key.
type Listener struct {
	User    string
	Plays   uint32
	Version uint32
	// Spelling indexes Value.Spellings.
	Spelling uint32
}

// Spelling is one (name, artist) spelling of a key's item, as users sent
// it.
type Spelling struct{ Name, Artist string }

// Value is the group's table value of one Key: each user's latest Count.
type Value struct {
	// Version counts the changes to the key: it only grows, one per
	// Count that changed the value (the flusher writes USING TIMESTAMP
	// Version).
	Version uint64
	// Full is set once the key holds as many users as it may: new users
	// go to child keys (the group's concern).
	Full bool
	// Spellings are the distinct spellings the listeners used.
	Spellings []Spelling
	// Listeners are sorted by User; a listener with Plays 0 had every
	// listen deleted and counts nowhere.
	Listeners []Listener
}

// Plays is the sum of the listeners' plays.
func (v *Value) Plays() int64 {
	var n int64
	for i := range v.Listeners {
		n += int64(v.Listeners[i].Plays)
	}
	return n
}

// ListenerCount is the number of listeners with plays.
func (v *Value) ListenerCount() int {
	n := 0
	for i := range v.Listeners {
		if v.Listeners[i].Plays > 0 {
			n++
		}
	}
	return n
}

// Display is the majority spelling: the most plays, ties the smaller name
// then artist. Zero when nobody has plays.
func (v *Value) Display() Spelling {
	plays := make([]int64, len(v.Spellings))
	for i := range v.Listeners {
		if s := v.Listeners[i].Spelling; int(s) < len(plays) {
			plays[s] += int64(v.Listeners[i].Plays)
		}
	}
	best := -1
	for i, p := range plays {
		if p == 0 {
			continue
		}
		if best < 0 || p > plays[best] || p == plays[best] && cmpSpelling(v.Spellings[i], v.Spellings[best]) < 0 {
			best = i
		}
	}
	if best < 0 {
		return Spelling{}
	}
	return v.Spellings[best]
}

func cmpSpelling(a, b Spelling) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Artist, b.Artist)
}

// Find returns the index of user's listener and whether it is there.
func (v *Value) Find(user string) (int, bool) {
	return slices.BinarySearchFunc(v.Listeners, user, func(l Listener, u string) int { return strings.Compare(l.User, u) })
}

const valueEncoding = 1

// AppendValue appends v's encoding: a version byte, flags (1: Full), the
// Version, the spellings (count, then name and artist each), the
// listeners (count, then user, plays, version, spelling).
func AppendValue(b []byte, v *Value) []byte {
	b = append(b, valueEncoding)
	var flags byte
	if v.Full {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, v.Version)
	b = binary.AppendUvarint(b, uint64(len(v.Spellings)))
	for _, s := range v.Spellings {
		b = topk.AppendString(b, s.Name)
		b = topk.AppendString(b, s.Artist)
	}
	b = binary.AppendUvarint(b, uint64(len(v.Listeners)))
	for _, l := range v.Listeners {
		b = topk.AppendString(b, l.User)
		b = binary.AppendUvarint(b, uint64(l.Plays))
		b = binary.AppendUvarint(b, uint64(l.Version))
		b = binary.AppendUvarint(b, uint64(l.Spelling))
	}
	return b
}

// DecodeValue reads AppendValue's bytes.
func DecodeValue(b []byte) (*Value, error) {
	d := topk.NewDecoder(b)
	if e := d.Byte(); d.Err() == nil && e != valueEncoding {
		return nil, fmt.Errorf("sitewide value: encoding %d, want %d", e, valueEncoding)
	}
	v := &Value{Full: d.Byte()&1 != 0, Version: d.Uvarint()}
	n := d.Count(2)
	v.Spellings = make([]Spelling, 0, n)
	for range n {
		v.Spellings = append(v.Spellings, Spelling{Name: d.String(), Artist: d.String()})
	}
	n = d.Count(4)
	v.Listeners = make([]Listener, 0, n)
	for range n {
		l := Listener{User: d.String()}
		p, ver, sp := d.Uvarint(), d.Uvarint(), d.Uvarint()
		if p > 1<<32-1 || ver > 1<<32-1 || sp >= uint64(len(v.Spellings)) {
			d.Fail()
			break
		}
		l.Plays, l.Version, l.Spelling = uint32(p), uint32(ver), uint32(sp)
		v.Listeners = append(v.Listeners, l)
	}
	if !d.Done() {
		return nil, fmt.Errorf("sitewide value: %w", topk.ErrCorrupt)
	}
	return v, nil
}
