package listen

import "time"

// Limits are the configurable limits of the contract. The zero value is
// the defaults, which Parse and Listen.Validate apply; ingest passes the
// configured ones (TOPK_MAX_NAME_CHARS):
//
//	l, err := listen.Limits{MaxNameChars: cfg.Pipeline.MaxNameChars}.Parse(raw, time.Now())
//
// The other limits of the contract are fixed: MaxRecordBytes (10 KiB per
// record), MaxUserIDBytes (128 bytes of user_id).
type Limits struct {
	// MaxNameChars is the most characters each of artist_name, track_name
	// and album_name may have: Unicode code points (not bytes, not
	// grapheme clusters: "e" + U+0301 counts 2) of the name as kept, i.e.
	// after CollapseSpace (trimmed, whitespace runs collapsed to one space),
	// before any normalization. A longer name is refused with
	// ReasonNameTooLong. 0 or less: DefaultMaxNameChars.
	MaxNameChars int
}

// maxNameChars is MaxNameChars with the default applied.
func (lim Limits) maxNameChars() int {
	if lim.MaxNameChars <= 0 {
		return DefaultMaxNameChars
	}
	return lim.MaxNameChars
}

// Parse is the package's Parse with these limits.
func (lim Limits) Parse(raw []byte, now time.Time) (Listen, error) {
	return parseRecord(raw, now, lim.maxNameChars())
}

// Validate is Listen.Validate with these limits.
func (lim Limits) Validate(l Listen, now time.Time) error {
	if err := l.check(MinPlayedAtUnix, now.Add(MaxFutureSkew).Unix(), lim.maxNameChars()); err != nil {
		return err
	}
	return nil
}
