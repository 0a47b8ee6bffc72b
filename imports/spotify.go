// Spotify's Extended Streaming History: the zip Spotify sends on request
// (Account → Privacy → "Extended streaming history"), a folder "Spotify
// Extended Streaming History" of Streaming_History_Audio_<years>_<n>.json
// and Streaming_History_Video_<years>.json files plus a PDF describing the
// fields. Each JSON file is one array of stream objects:
//
//	{"ts": "2019-03-01T12:34:56Z", "platform": "...", "ms_played": 212000,
//	 "conn_country": "SE", "ip_addr": "...",
//	 "master_metadata_track_name": "...", "master_metadata_album_artist_name": "...",
//	 "master_metadata_album_album_name": "...", "spotify_track_uri": "spotify:track:<id>",
//	 "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null,
//	 "audiobook_title": null, "audiobook_uri": null, "audiobook_chapter_uri": null,
//	 "audiobook_chapter_title": null, "reason_start": "trackdone", "reason_end": "trackdone",
//	 "shuffle": false, "skipped": false, "offline": false, "offline_timestamp": null,
//	 "incognito_mode": false}
//
// Spotify's description of the fields: ts is "when the track stopped
// playing in UTC", ms_played "for how many milliseconds the track was
// played". Older files lack the audiobook fields and call ip_addr
// ip_addr_decrypted; fields not read here are ignored.

package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/topk-charts/topk/listen"
)

// spotifyStream is the part of a stream object the mapping reads. null and
// absent are the same.
type spotifyStream struct {
	TS                    *string         `json:"ts"`
	MSPlayed              json.RawMessage `json:"ms_played"`
	Track                 *string         `json:"master_metadata_track_name"`
	Artist                *string         `json:"master_metadata_album_artist_name"`
	Album                 *string         `json:"master_metadata_album_album_name"`
	TrackURI              *string         `json:"spotify_track_uri"`
	EpisodeName           *string         `json:"episode_name"`
	EpisodeShow           *string         `json:"episode_show_name"`
	EpisodeURI            *string         `json:"spotify_episode_uri"`
	AudiobookTitle        *string         `json:"audiobook_title"`
	AudiobookURI          *string         `json:"audiobook_uri"`
	AudiobookChapterURI   *string         `json:"audiobook_chapter_uri"`
	AudiobookChapterTitle *string         `json:"audiobook_chapter_title"`
	Incognito             *bool           `json:"incognito_mode"`
}

// spotify maps one stream object. The rules, in the order they apply (the
// first that applies decides):
//
//  1. Not an object, or a known field of another type (ms_played a
//     string, a name a number): refused, RefuseBadRecord.
//  2. Music only. A podcast episode (episode_name or spotify_episode_uri
//     set) is skipped, SkipEpisode; an audiobook (any audiobook_* field
//     set), SkipAudiobook; a stream without a track name or artist name
//     (null or only whitespace: real exports hold such streams, with
//     every metadata field null), SkipNoMetadata. topk charts
//     tracks, artists and albums; these are none of them.
//  3. ts missing or not a date and time: refused, RefuseBadTime. ts is
//     UTC (Spotify says so). Accepted forms: RFC 3339 with any offset
//     (Z, z, +00:00, -00:00 are UTC; another offset is converted, so the
//     instant is kept), and without a zone ("2019-03-01 12:34:56",
//     "2019-03-01T12:34:56", "2019-03-01 12:34"), read as UTC; a fraction
//     of a second is allowed, T or a space between date and time.
//  4. ms_played missing, negative or not an integer: refused,
//     RefuseBadMSPlayed.
//  5. ms_played under Options.MinPlayed (30 s by default; Spotify itself
//     counts a stream as a play from 30 s on): skipped, SkipTooShort. A
//     skip, a preview, a track started by mistake is not a listen.
//  6. A private session (incognito_mode) with Options.SkipIncognito:
//     skipped, SkipIncognito.
//  7. The listen: played_at = ts, truncated to the second. ts is when
//     the stream ended; the start could be derived (ts − ms_played) but
//     is not, because the same stream reaches topk from two other
//     sources with the end's second: the crawler's Spotify provider
//     writes the Web API's recently-played played_at as played_at, and
//     that is the same instant as the export's ts (ListenBrainz's own
//     Spotify reader and its export importer both use them as
//     listened_at as they are). Identity is user, second, artist and
//     track (package listen), so a derived start would make every
//     crawled Spotify listen count a second time when its export is
//     imported. The cost: a long stream that began before midnight
//     counts on the day it ended. artist_name = master_metadata_album_artist_name (Spotify's
//     only artist field, which it describes as the track's artist),
//     track_name = master_metadata_track_name, album_name =
//     master_metadata_album_album_name (null: no album); track_id = the
//     id of spotify_track_uri without "spotify:track:" (the form the
//     crawler's Spotify provider writes, from the Web API's track.id; any
//     other URI is kept whole); source "spotify-export". duration_ms is
//     left out: the contract's duration_ms is the track's length (the
//     crawler writes the Web API's track.duration_ms), and ms_played is
//     how long this stream played, which is shorter for every skip. The
//     export has no artist or album id.
//  8. Then the contract's checks (as ingest applies them: refused with
//     the contract's reason, e.g. played_at_out_of_range for the 1970
//     timestamps some offline streams carry, name_too_long).
func (rd *reader) spotify(raw []byte) outcome {
	if !isObject(raw) {
		return outcome{refuse: RefuseBadRecord, detail: "not a JSON object"}
	}
	var s spotifyStream
	if err := json.Unmarshal(raw, &s); err != nil {
		return outcome{refuse: RefuseBadRecord, detail: jsonDetail(err)}
	}
	switch {
	case set(s.EpisodeName) || set(s.EpisodeURI):
		return outcome{skip: SkipEpisode}
	case set(s.AudiobookTitle) || set(s.AudiobookURI) || set(s.AudiobookChapterURI) || set(s.AudiobookChapterTitle):
		return outcome{skip: SkipAudiobook}
	case !set(s.Track) || !set(s.Artist):
		return outcome{skip: SkipNoMetadata}
	}
	if s.TS == nil {
		return outcome{refuse: RefuseBadTime, detail: "ts missing"}
	}
	end, err := parseUTC(*s.TS)
	if err != nil {
		return outcome{refuse: RefuseBadTime, detail: err.Error()}
	}
	ms, err := msPlayed(s.MSPlayed)
	if err != nil {
		return outcome{refuse: RefuseBadMSPlayed, detail: err.Error()}
	}
	if rd.opts.MinPlayed > 0 && time.Duration(ms)*time.Millisecond < rd.opts.MinPlayed {
		return outcome{skip: SkipTooShort}
	}
	if rd.opts.SkipIncognito && s.Incognito != nil && *s.Incognito {
		return outcome{skip: SkipIncognito}
	}
	l := listen.Listen{
		UserID:     rd.opts.User,
		PlayedAt:   end,
		ArtistName: *s.Artist,
		TrackName:  *s.Track,
		Source:     SourceSpotify,
	}
	if s.Album != nil {
		l.AlbumName = *s.Album
	}
	if s.TrackURI != nil {
		l.TrackID = strings.TrimPrefix(*s.TrackURI, "spotify:track:")
	}
	return outcome{l: l}
}

// set: present, not null, not only whitespace.
func set(s *string) bool {
	return s != nil && strings.TrimSpace(*s) != ""
}

// maxMSPlayed keeps ms_played × time.Millisecond within time.Duration.
const maxMSPlayed = math.MaxInt64 / int64(time.Millisecond)

// msPlayed is ms_played: a JSON number with an integer value (212000 or
// 212000.0), not negative.
func msPlayed(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, fmt.Errorf("ms_played missing")
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > float64(maxMSPlayed) {
			return 0, fmt.Errorf("ms_played %.40s is not an integer", s)
		}
		ms = int64(f)
	}
	if ms < 0 || ms > maxMSPlayed {
		return 0, fmt.Errorf("ms_played %d out of range", ms)
	}
	return ms, nil
}

// utcLayouts are the forms of ts after parseUTC's changes (upper case, T
// between date and time): with an offset, then without (UTC). Parsing
// accepts a fraction of a second after the seconds of any of them.
var utcLayouts = [...]string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
}

// parseUTC reads a date and time of a history file (see rule 3 of
// spotify): an offset is honoured, none means UTC.
func parseUTC(s string) (time.Time, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if len(t) > 10 && t[10] == ' ' {
		t = t[:10] + "T" + t[11:]
	}
	t = strings.TrimSuffix(t, " UTC")
	for _, layout := range utcLayouts {
		if v, err := time.ParseInLocation(layout, t, time.UTC); err == nil {
			return v.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("ts %q is not a date and time", truncate(s, 40))
}

// truncate cuts s to at most n bytes, at a rune boundary, for details.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// jsonDetail words a decoding error of one record.
func jsonDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: a JSON %s where the format has another type", te.Field, te.Value)
	}
	return err.Error()
}

// isObject: raw is a JSON object (its first byte tells, as raw is one
// JSON value).
func isObject(raw []byte) bool {
	s := bytes.TrimLeft(raw, " \t\r\n")
	return len(s) > 0 && s[0] == '{'
}
