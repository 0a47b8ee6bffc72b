package listenbrainz

import (
	"encoding/json"
	"time"
)

// DefaultPlayingNowTTL is how long a playing-now listen without a
// duration is kept (ListenBrainz's PLAYING_NOW_MAX_DURATION).
const DefaultPlayingNowTTL = 10 * time.Minute

// NowPlaying is a playing-now listen as ListenBrainz keeps and answers it
// (no listened_at, no recording_msid).
type NowPlaying struct {
	TrackMetadata TrackMetadata `json:"track_metadata"`
	UserName      string        `json:"user_name"`
	PlayingNow    bool          `json:"playing_now"`
}

// NewNowPlaying is s as user's playing now, and how long to keep it: its
// additional_info.duration (seconds) or duration_ms, else
// DefaultPlayingNowTTL — from now, as ListenBrainz counts it.
func NewNowPlaying(user string, s Submitted) (NowPlaying, time.Duration) {
	info := s.AdditionalInfo
	if info == nil {
		info = map[string]any{}
	}
	ttl := DefaultPlayingNowTTL
	if d, ok := number(info["duration"]); ok && d > 0 {
		ttl = time.Duration(d) * time.Second
	} else if d, ok := number(info["duration_ms"]); ok && d >= 1000 {
		ttl = time.Duration(d/1000) * time.Second
	}
	return NowPlaying{UserName: user, PlayingNow: true, TrackMetadata: TrackMetadata{
		ArtistName: s.ArtistName, TrackName: s.TrackName, ReleaseName: s.ReleaseName, AdditionalInfo: info,
	}}, ttl
}

// SameTrack reports whether n and o are the same track and artist, the
// test by which ListenBrainz keeps a playing now instead of replacing it.
func (n NowPlaying) SameTrack(o NowPlaying) bool {
	return n.TrackMetadata.TrackName == o.TrackMetadata.TrackName && n.TrackMetadata.ArtistName == o.TrackMetadata.ArtistName
}

// number reads an integer of additional_info (ParseSubmission leaves
// durations as integers in json.Number).
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}
