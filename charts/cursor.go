package charts

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/topk-charts/topk"
)

// Cursor is a position in a user's listens, newest first: the day, and
// the played_at and identity of the last listen returned. Answers carry
// it encoded (ListensAnswer.Next); ParseCursor reads it back.
type Cursor struct {
	day      time.Time
	playedAt time.Time
	identity []byte
}

// Encoding: "1" then base64url (no padding) of varint day (days since
// 1970-01-01), varint played_at (Unix ms), uvarint length + identity.
func (c *Cursor) encode() string {
	b := binary.AppendVarint(nil, c.day.Unix()/86400)
	b = binary.AppendVarint(b, c.playedAt.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(c.identity)))
	b = append(b, c.identity...)
	return "1" + base64.RawURLEncoding.EncodeToString(b)
}

var errCursor = errors.New("bad cursor")

// ParseCursor reads a cursor an answer gave; anything else is invalid.
func ParseCursor(s string) (*Cursor, error) {
	c, err := decodeCursor(s)
	if err != nil {
		return nil, topk.Invalid("cursor", "cursor is not one this api returned")
	}
	return c, nil
}

// decodeCursor accepts exactly what encode produces: a played_at within
// its day, an identity of at most 32 bytes.
func decodeCursor(s string) (*Cursor, error) {
	if len(s) < 2 || len(s) > 128 || s[0] != '1' {
		return nil, errCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[1:])
	if err != nil {
		return nil, errCursor
	}
	days, n := binary.Varint(b)
	if n <= 0 || days < 0 || days > 200_000 {
		return nil, errCursor
	}
	b = b[n:]
	ms, n := binary.Varint(b)
	if n <= 0 {
		return nil, errCursor
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > 32 || uint64(len(b)-n) != l {
		return nil, errCursor
	}
	c := &Cursor{day: time.Unix(days*86400, 0).UTC(), playedAt: time.UnixMilli(ms).UTC(), identity: append([]byte(nil), b[n:]...)}
	if c.playedAt.Before(c.day) || !c.playedAt.Before(c.day.AddDate(0, 0, 1)) {
		return nil, errCursor
	}
	return c, nil
}
