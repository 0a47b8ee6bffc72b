package listenbrainz

import (
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/topk-charts/topk/listen"
)

// MSID is topk's recording_msid of a track (listen.MSID): /1/user/{user}/listens
// returns it, and /1/delete-listen takes it with listened_at to find a
// listen.
func MSID(artist, track string) string { return listen.MSID(artist, track) }

// ParseMSID reads a UUID (an msid or an MBID) in every form that Python's
// uuid.UUID(s) accepts, which is what ListenBrainz checks MBIDs with, and
// returns it in the canonical form (lowercase, hyphenated); ok is false for
// anything else. Python removes every "urn:" and then every "uuid:", strips
// braces from both ends, removes every hyphen, requires 32 characters left
// and reads them as int(s, 16): so "{...}", "urn:uuid:...", 32 hex digits
// without hyphens and hyphens anywhere are accepted, and so are the
// oddities int() allows within those 32 characters (surrounding
// whitespace, a "+" sign, a "0x" prefix, underscores between digits,
// non-ASCII decimal digits), each read as the number it spells.
func ParseMSID(s string) (string, bool) {
	u, ok := pyUUID(s)
	if !ok {
		return "", false
	}
	return listen.FormatUUID(u), true
}

// pyUUID is Python's uuid.UUID(s).bytes, or ok false where it raises
// ValueError.
func pyUUID(s string) (u [16]byte, ok bool) {
	h := strings.ReplaceAll(s, "urn:", "")
	h = strings.ReplaceAll(h, "uuid:", "")
	h = strings.Trim(h, "{}")
	h = strings.ReplaceAll(h, "-", "")
	if utf8.RuneCountInString(h) != 32 {
		return u, false
	}
	// int(h, 16)
	t, ok := pyNumberText(h)
	if !ok {
		return u, false
	}
	i := 0
	neg := false
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		neg = t[i] == '-'
		i++
	}
	if i+1 < len(t) && t[i] == '0' && (t[i+1] == 'x' || t[i+1] == 'X') {
		i += 2
		if i < len(t) && t[i] == '_' {
			i++
		}
	}
	end, ok := scanDigits(t, i, true)
	if !ok || end != len(t) {
		return u, false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(t[i:], "_", ""), 16)
	if !ok || (neg && n.Sign() != 0) || n.BitLen() > 128 {
		return u, false
	}
	n.FillBytes(u[:])
	return u, true
}
