package sitewide

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/topk-charts/topk"
)

// The group changes a key's encoded Value in place: it reads the header,
// scans the listeners (sorted by user; no copies, no allocation) for the
// Count's user and splices the new listener into one new buffer. A full
// DecodeValue and AppendValue of a 500-listener key would allocate 500
// strings per Count (see BenchmarkApply).

// MaxSpellings is the most distinct (name, artist) spellings a key keeps.
// A Count with another spelling past them is shown under the key's
// spelling of the same name in another case (the first one), else under
// the key's first spelling: the display spelling is the majority's, and
// past 16 spellings of one item's day in one bucket the 17th is noise.
const MaxSpellings = 16

// rawValue is an encoded Value read in place.
type rawValue struct {
	b       []byte
	full    bool
	version uint64
	// spells are the encoded spellings (after their count); nSpell their
	// number.
	spells []byte
	nSpell int
	// list is the offset of the first listener (after their count), n
	// their number.
	list, n int
}

var errCorruptValue = fmt.Errorf("sitewide value: %w", topk.ErrCorrupt)

// parseValue reads b's header and skips its spellings; an empty b is the
// value of a key nobody wrote yet.
func parseValue(b []byte) (rawValue, error) {
	r := rawValue{b: b}
	if len(b) == 0 {
		return r, nil
	}
	if len(b) < 2 || b[0] != valueEncoding {
		return r, errCorruptValue
	}
	r.full = b[1]&1 != 0
	i := 2
	var ok bool
	if r.version, i, ok = uvarint(b, i); !ok {
		return r, errCorruptValue
	}
	ns, i, ok := uvarint(b, i)
	if !ok || ns > uint64(len(b)) {
		return r, errCorruptValue
	}
	start := i
	for range 2 * ns {
		if i, ok = skipString(b, i); !ok {
			return r, errCorruptValue
		}
	}
	r.spells, r.nSpell = b[start:i], int(ns)
	n, i, ok := uvarint(b, i)
	if !ok || n > uint64(len(b)) {
		return r, errCorruptValue
	}
	r.list, r.n = i, int(n)
	return r, nil
}

func uvarint(b []byte, i int) (uint64, int, bool) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, true
	}
	v, k := binary.Uvarint(b[i:])
	if k <= 0 {
		return 0, i, false
	}
	return v, i + k, true
}

func skipString(b []byte, i int) (int, bool) {
	n, i, ok := uvarint(b, i)
	if !ok || n > uint64(len(b)-i) {
		return i, false
	}
	return i + int(n), true
}

// found is the place of a user among a value's listeners: its record's
// bytes [start, end) when there, else the offset it would be inserted at
// (start = end).
type found struct {
	start, end int
	ok         bool
	plays      uint32
	version    uint32
	spelling   uint32
}

// find scans the listeners for user. The records before the place are
// checked (sorted, well formed); the ones after it are copied as they are.
func (r *rawValue) find(user []byte) (found, error) {
	b, p := r.b, r.list
	var prev []byte
	for k := 0; k < r.n; k++ {
		start := p
		l, q, ok := uvarint(b, p)
		if !ok || l > uint64(len(b)-q) {
			return found{}, errCorruptValue
		}
		u := b[q : q+int(l)]
		p = q + int(l)
		c := bytes.Compare(u, user)
		if c > 0 {
			return found{start: start, end: start}, nil
		}
		if k > 0 && bytes.Compare(prev, u) >= 0 {
			return found{}, errCorruptValue
		}
		prev = u
		var plays, ver, sp uint64
		ok1, ok2, ok3 := false, false, false
		plays, p, ok1 = uvarint(b, p)
		ver, p, ok2 = uvarint(b, p)
		sp, p, ok3 = uvarint(b, p)
		if !ok1 || !ok2 || !ok3 || plays > 1<<32-1 || ver > 1<<32-1 || sp >= uint64(r.nSpell) {
			return found{}, errCorruptValue
		}
		if c == 0 {
			return found{start: start, end: p, ok: true, plays: uint32(plays), version: uint32(ver), spelling: uint32(sp)}, nil
		}
	}
	if p != len(b) {
		return found{}, errCorruptValue
	}
	return found{start: p, end: p}, nil
}

// spellingFor is the index of the spelling (name, artist) among the
// value's, and whether it is new (to be appended, as index nSpell) — only
// while the value has fewer than MaxSpellings and may add one; otherwise
// the first spelling whose name equals name but for case, else 0.
func (r *rawValue) spellingFor(name, artist string, mayAdd bool) (uint32, bool) {
	b, i := r.spells, 0
	fold := -1
	for k := 0; k < r.nSpell; k++ {
		n, j, _ := uvarint(b, i)
		sn := b[j : j+int(n)]
		i = j + int(n)
		n, j, _ = uvarint(b, i)
		sa := b[j : j+int(n)]
		i = j + int(n)
		if string(sn) == name && string(sa) == artist {
			return uint32(k), false
		}
		if fold < 0 && strings.EqualFold(string(sn), name) {
			fold = k
		}
	}
	if mayAdd && r.nSpell < MaxSpellings {
		return uint32(r.nSpell), true
	}
	return uint32(max(fold, 0)), false
}

// listener is a record to write: the user and its fields.
type listener struct {
	user                     []byte
	plays, version, spelling uint32
}

// splice is the value with the version one higher, flags full, the
// spelling s appended when add, and the bytes [f.start, f.end) of the
// listeners replaced by l's record (none when l is nil).
func (r *rawValue) splice(full bool, add bool, s Spelling, f found, l *listener) []byte {
	n := r.n
	if f.ok {
		n--
	}
	size := len(r.b) + 32
	if add {
		size += len(s.Name) + len(s.Artist) + 10
	}
	if l != nil {
		n++
		size += len(l.user) + 20
	}
	out := make([]byte, 0, size)
	var flags byte
	if full {
		flags |= 1
	}
	out = append(out, valueEncoding, flags)
	out = binary.AppendUvarint(out, r.version+1)
	ns := r.nSpell
	if add {
		ns++
	}
	out = binary.AppendUvarint(out, uint64(ns))
	out = append(out, r.spells...)
	if add {
		out = topk.AppendString(out, s.Name)
		out = topk.AppendString(out, s.Artist)
	}
	out = binary.AppendUvarint(out, uint64(n))
	if len(r.b) > 0 {
		out = append(out, r.b[r.list:f.start]...)
	}
	if l != nil {
		out = binary.AppendUvarint(out, uint64(len(l.user)))
		out = append(out, l.user...)
		out = binary.AppendUvarint(out, uint64(l.plays))
		out = binary.AppendUvarint(out, uint64(l.version))
		out = binary.AppendUvarint(out, uint64(l.spelling))
	}
	if len(r.b) > 0 {
		out = append(out, r.b[f.end:]...)
	}
	return out
}

// outcome is what a Count does to a key.
type outcome int

const (
	// applied: the value changed (the user's Count is in it).
	applied outcome = iota
	// stale: the key holds the user at this version or a later one.
	stale
	// forward: the key is Full and does not hold the user: the Count goes
	// on to the child, the value unchanged.
	forward
	// filled: the user did not fit; the value is now Full and the Count
	// goes on to the child.
	filled
	// moved: the user's update did not fit (its numbers grew, the key at
	// its limit): the user left the key, which is now Full, and the Count
	// goes on to the child, where it counts from now on.
	moved
)

// apply is what Count c does to the encoded value b of a key holding at
// most keyBytes: the outcome and, unless stale or forward, the new value.
// A new user is inserted while the value stays within keyBytes; once one
// does not fit the key is Full, for good, and every user it does not hold
// goes to the child. A user it holds stays unless an update would pass
// keyBytes even without a new spelling; then it moves to the child. So
// each user is in exactly one key of its spill path, and no Count makes
// the key's value pass keyBytes: a key not yet Full keeps one byte free
// for the Full mark's Version, whose varint may grow by one.
func apply(b []byte, c *Count, user []byte, keyBytes int) (outcome, []byte, error) {
	r, err := parseValue(b)
	if err != nil {
		return 0, nil, err
	}
	f, err := r.find(user)
	if err != nil {
		return 0, nil, err
	}
	limit := keyBytes
	if !r.full {
		limit--
	}
	s := Spelling{Name: c.Name, Artist: c.Artist}
	l := &listener{user: user, plays: c.Plays, version: c.Version}
	switch {
	case f.ok && c.Version <= f.version:
		return stale, nil, nil
	case f.ok:
		sp, add := r.spellingFor(s.Name, s.Artist, true)
		l.spelling = sp
		out := r.splice(r.full, add, s, f, l)
		if len(out) <= limit {
			return applied, out, nil
		}
		if add {
			l.spelling, _ = r.spellingFor(s.Name, s.Artist, false)
			if out = r.splice(r.full, false, s, f, l); len(out) <= limit {
				return applied, out, nil
			}
		}
		return moved, r.splice(true, false, s, f, nil), nil
	case r.full:
		return forward, nil, nil
	}
	sp, add := r.spellingFor(s.Name, s.Artist, true)
	l.spelling = sp
	if out := r.splice(false, add, s, f, l); len(out) <= limit {
		return applied, out, nil
	}
	return filled, r.splice(true, false, s, f, nil), nil
}
