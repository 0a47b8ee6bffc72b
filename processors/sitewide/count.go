package sitewide

import (
	"encoding/binary"
	"fmt"

	"github.com/topk-charts/topk"
)

// Count is the fan-out's message to the group, under a Key: one user's
// plays of the key's item on the key's day, absolute (not a delta), with
// the version of the user-day state it was read from (the aggregator's
// Day.Version). A Count whose version is not above the one the key holds
// for its user changes nothing, so replays and redeliveries are harmless.
type Count struct {
	User    string
	Version uint32
	// Plays is 0 once every listen of the item that day was deleted.
	Plays uint32
	// Name is the user's display spelling of the item that day; Artist
	// the artist's (tracks and albums).
	Name, Artist string
}

const countEncoding = 1

// AppendCount appends c's encoding: a version byte, then the user, the
// version and plays (uvarints), the name and the artist.
func AppendCount(b []byte, c *Count) []byte {
	b = append(b, countEncoding)
	b = topk.AppendString(b, c.User)
	b = binary.AppendUvarint(b, uint64(c.Version))
	b = binary.AppendUvarint(b, uint64(c.Plays))
	b = topk.AppendString(b, c.Name)
	return topk.AppendString(b, c.Artist)
}

// DecodeCount reads AppendCount's bytes.
func DecodeCount(b []byte) (Count, error) {
	d := topk.NewDecoder(b)
	if v := d.Byte(); d.Err() == nil && v != countEncoding {
		return Count{}, fmt.Errorf("sitewide count: encoding %d, want %d", v, countEncoding)
	}
	c := Count{User: d.String()}
	ver, plays := d.Uvarint(), d.Uvarint()
	c.Name, c.Artist = d.String(), d.String()
	if ver > 1<<32-1 || plays > 1<<32-1 {
		d.Fail()
	}
	if !d.Done() {
		return Count{}, fmt.Errorf("sitewide count: %w", topk.ErrCorrupt)
	}
	c.Version, c.Plays = uint32(ver), uint32(plays)
	return c, nil
}
