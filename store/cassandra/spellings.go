package cassandra

import (
	"fmt"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
)

// The item tables' first and spellings columns (schemas/cassandra/
// 005_spellings.cql), shared by the flusher's DayStore and the api's
// Reader: both write and read the same row shape.

// spellingsValue is the spellings column's value of an item: its
// spellings as topk.AppendSpellings encodes them, an empty list (one zero
// byte) when Name is the only one. Never a null (a tombstone), and never
// left unset: the cell must be overwritten like name and plays, or an
// older write's list would outlive a newer row with one spelling.
func spellingsValue(it *topk.Item) []byte {
	return topk.AppendSpellings(nil, it.Spellings)
}

// firstColumn scans the first column, telling a null (a row written
// before the column existed) from a value.
type firstColumn struct {
	v   int64
	set bool
}

// UnmarshalCQL implements gocql.Unmarshaler.
func (c *firstColumn) UnmarshalCQL(info gocql.TypeInfo, data []byte) error {
	c.v, c.set = 0, data != nil
	if data == nil {
		return nil
	}
	return gocql.Unmarshal(info, data, &c.v)
}

// spellingsColumn scans the spellings column straight from the driver's
// bytes (no copy of the blob per row). A null or an empty list is nil; a
// list that does not decode is an error wrapping topk.ErrCorrupt.
type spellingsColumn struct{ sp []topk.Spelling }

// UnmarshalCQL implements gocql.Unmarshaler.
func (c *spellingsColumn) UnmarshalCQL(_ gocql.TypeInfo, data []byte) error {
	c.sp = nil
	if len(data) == 0 || (len(data) == 1 && data[0] == 0) {
		return nil
	}
	d := topk.NewDecoder(data)
	sp := d.Spellings()
	if !d.Done() {
		return fmt.Errorf("spellings column (%d bytes): %w", len(data), topk.ErrCorrupt)
	}
	if len(sp) > 1 { // one spelling is Name itself: Item.Spellings stays nil
		c.sp = sp
	}
	return nil
}

// itemColumns are the columns an item row adds to name, artist and plays.
type itemColumns struct {
	first     firstColumn
	spellings spellingsColumn
}

// fill sets it's First and Spellings from the scanned row of period p: a
// row without first (written before the column existed) counts from the
// period's start.
func (c *itemColumns) fill(it *topk.Item, p topk.Period) {
	it.First = p.Start.Unix()
	if c.first.set {
		it.First = c.first.v
	}
	it.Spellings = c.spellings.sp
}
