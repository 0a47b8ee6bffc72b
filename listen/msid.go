package listen

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// msidNamespace is the namespace UUID of MSID, generated once at random
// (b05e4450-9131-4818-9892-b2a377cedd8c) and fixed: changing it changes
// every msid.
var msidNamespace = [16]byte{
	0xb0, 0x5e, 0x44, 0x50, 0x91, 0x31, 0x48, 0x18,
	0x98, 0x92, 0xb2, 0xa3, 0x77, 0xce, 0xdd, 0x8c,
}

// MSID is topk's recording_msid of a track: the name-based UUID (RFC 9562
// version 5, SHA-1) in topk's namespace of
//
//	"<NormalizationVersion>:<len(a)>:<a><len(t)>:<t>"
//
// where a and t are Normalize(artist) and Normalize(track) and
// the lengths count their bytes, so no two pairs share a name. Every
// spelling that normalizes the same has the same msid, as it counts as the
// same item in the charts; it changes when NormalizationVersion does.
//
// It plays the part of ListenBrainz's recording_msid (which MessyBrainz
// assigns from the track, artist and release names, the track number and the
// duration): /1/user/{user}/listens returns it, and /1/delete-listen takes
// it with listened_at to find a listen. Unlike ListenBrainz's, it is
// computed, not looked up, and ignores the release and the duration.
// The result is in the canonical form, lowercase and hyphenated.
func MSID(artist, track string) string {
	a, t := Normalize(artist), Normalize(track)
	name := make([]byte, 0, 32+len(a)+len(t))
	name = strconv.AppendInt(name, NormalizationVersion, 10)
	name = append(name, ':')
	name = strconv.AppendInt(name, int64(len(a)), 10)
	name = append(name, ':')
	name = append(name, a...)
	name = strconv.AppendInt(name, int64(len(t)), 10)
	name = append(name, ':')
	name = append(name, t...)
	return uuidV5(msidNamespace, name)
}

// uuidV5 is the version 5 UUID of name in namespace ns, canonical form.
func uuidV5(ns [16]byte, name []byte) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write(name)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // variant of RFC 9562
	return FormatUUID(u)
}

// FormatUUID writes u in the canonical form, 8-4-4-4-12 lowercase hex.
func FormatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
