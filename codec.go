package topk

import (
	"encoding/binary"
	"errors"
)

// The one binary codec of items, used wherever items are kept as bytes
// (the api's cached tallies, the flusher's cache, each with its own
// framing): an item is its key (8 bytes, little endian), its plays
// (uvarint), then its name and artist, each a uvarint length and the
// bytes, its First (varint), and its other spellings: a uvarint count
// (0 when Name is the only one), then each spelling's name, plays
// (uvarint) and first (varint). Decoder reads it with bounds checks, so corrupt input is an
// error, never a panic or a huge allocation. The aggregator's day state
// (a Kafka format of its own, with the spelling's second and an artist
// index per item) is read with the same Decoder.

// ErrCorrupt is what a Decoder reports on input it cannot parse.
var ErrCorrupt = errors.New("corrupt encoding")

// AppendItem appends it in the item codec.
func AppendItem(b []byte, it *Item) []byte {
	b = binary.LittleEndian.AppendUint64(b, it.Key)
	b = binary.AppendUvarint(b, uint64(it.Plays))
	b = AppendString(b, it.Name)
	b = AppendString(b, it.Artist)
	b = binary.AppendVarint(b, it.First)
	return AppendSpellings(b, it.Spellings)
}

// AppendSpellings appends sp: a uvarint count, then each spelling's name
// (AppendString), plays (uvarint) and first (varint). It is also the
// value of the item tables' spellings column.
func AppendSpellings(b []byte, sp []Spelling) []byte {
	b = binary.AppendUvarint(b, uint64(len(sp)))
	for _, s := range sp {
		b = AppendString(b, s.Name)
		b = binary.AppendUvarint(b, uint64(s.Plays))
		b = binary.AppendVarint(b, s.First)
	}
	return b
}

// ItemSize is an upper bound of AppendItem's bytes for it.
func ItemSize(it *Item) int {
	n := 8 + 10 + 2*binary.MaxVarintLen32 + len(it.Name) + len(it.Artist) + 10 + binary.MaxVarintLen32
	for _, s := range it.Spellings {
		n += binary.MaxVarintLen32 + len(s.Name) + 20
	}
	return n
}

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decoder reads the item codec and its primitives from one byte slice.
// The strings it returns are substrings of one copy of the input (one
// allocation for all names). After the first error every read returns a
// zero value and Err reports ErrCorrupt.
type Decoder struct {
	b   []byte
	s   string
	i   int
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b, s: string(b)} }

// Err is ErrCorrupt once a read failed, else nil.
func (d *Decoder) Err() error { return d.err }

// Done reports whether every byte was read without error.
func (d *Decoder) Done() bool { return d.err == nil && d.i == len(d.b) }

// Fail marks the input corrupt (a caller's own check failed).
func (d *Decoder) Fail() { d.err = ErrCorrupt }

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil || d.i >= len(d.b) {
		d.err = ErrCorrupt
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

// Uvarint reads a uvarint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.i += n
	return v
}

// Varint reads a varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.i += n
	return v
}

// Count reads a length and checks it against the bytes left, each
// element taking at least min bytes, so corrupt input cannot make a huge
// allocation.
func (d *Decoder) Count(min int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64((len(d.b)-d.i)/max(min, 1)) {
		d.err = ErrCorrupt
		return 0
	}
	return int(n)
}

// Uint64 reads 8 bytes, little endian.
func (d *Decoder) Uint64() uint64 {
	if d.err != nil || len(d.b)-d.i < 8 {
		d.err = ErrCorrupt
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.i:])
	d.i += 8
	return v
}

// String reads a uvarint length and that many bytes.
func (d *Decoder) String() string {
	n := d.Count(1)
	if d.err != nil {
		return ""
	}
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

// Item reads one item written by AppendItem.
func (d *Decoder) Item() Item {
	var it Item
	it.Key = d.Uint64()
	it.Plays = int64(d.Uvarint())
	it.Name = d.String()
	it.Artist = d.String()
	it.First = d.Varint()
	it.Spellings = d.Spellings()
	return it
}

// Spellings reads what AppendSpellings wrote (nil for none).
func (d *Decoder) Spellings() []Spelling {
	n := d.Count(3)
	if n == 0 {
		return nil
	}
	sp := make([]Spelling, n)
	for i := range sp {
		s := &sp[i]
		s.Name = d.String()
		s.Plays = int64(d.Uvarint())
		s.First = d.Varint()
	}
	if d.err != nil {
		return nil
	}
	return sp
}
