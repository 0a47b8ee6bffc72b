// ListenBrainz's listen export (Settings → Export). Since 2025 it is a
// zip, listenbrainz_<user>_<unix time>.zip, holding user.json
// ({"user_id", "username"}), listens/<year>/<month>.jsonl (no leading
// zero: listens/2024/3.jsonl), and feedback.jsonl and
// pinned_recording.jsonl when the user has any; each listens line is
//
//	{"inserted_at": 1700000100, "listened_at": 1700000000.0, "recording_msid": "…",
//	 "track_metadata": {"artist_name": "…", "track_name": "…", "release_name": "…",
//	  "additional_info": {…}, "mbid_mapping": {…} or null}}
//
// listened_at is written from a timestamp, so it may carry a fraction
// (1700000000.0, or 1700000000.000000 from some versions). Older exports
// were one JSON array of such listens, with user_name. Only the listens
// files are read: user.json, feedback and pinned recordings are not
// listens, and their content tells so (sniff).

package imports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/topk-charts/topk/listenbrainz"
)

// lbListen is the part of an exported listen the mapping reads.
type lbListen struct {
	ListenedAt    json.RawMessage `json:"listened_at"`
	TrackMetadata *struct {
		ArtistName     *string         `json:"artist_name"`
		TrackName      *string         `json:"track_name"`
		ReleaseName    *string         `json:"release_name"`
		AdditionalInfo json.RawMessage `json:"additional_info"`
	} `json:"track_metadata"`
}

// listenBrainz maps one exported listen as package listenbrainz maps a
// submitted one (listenbrainz.Submitted.Map): artist_name, track_name and
// release_name as names; from additional_info, duration_ms (or
// duration × 1000), recording_mbid (track_id), the first of artist_mbids
// (artist_id) and release_mbid (album_id); played_at = listened_at, which
// is when the listen started, truncated to the second; source
// "listenbrainz-export". The rules, in order:
//
//  1. A line that is not JSON: refused, RefuseNotJSON. Not an object, or
//     track_metadata or a name of another type: RefuseBadRecord.
//  2. listened_at missing or not a number: RefuseBadTime.
//  3. The export is what ListenBrainz accepted, so its submission checks
//     are not applied again; a duration or duration_ms that is not a
//     positive number within ListenBrainz's maximum (stored before
//     ListenBrainz checked it) is dropped as metadata, not a reason to
//     refuse the listen. mbid_mapping (ListenBrainz's own matching of the
//     listen to MusicBrainz) is not read: a submitted listen has none.
//  4. The contract's checks, with its reasons (a missing or empty name is
//     empty_name, a listened_at before 2002 played_at_out_of_range).
func (rd *reader) listenBrainz(raw []byte) outcome {
	if !json.Valid(raw) {
		return outcome{refuse: RefuseNotJSON, detail: "not JSON"}
	}
	if !isObject(raw) {
		return outcome{refuse: RefuseBadRecord, detail: "not a JSON object"}
	}
	var lb lbListen
	if err := json.Unmarshal(raw, &lb); err != nil {
		return outcome{refuse: RefuseBadRecord, detail: jsonDetail(err)}
	}
	tm := lb.TrackMetadata
	if tm == nil {
		return outcome{refuse: RefuseBadRecord, detail: "track_metadata missing"}
	}
	at, err := listenedAt(lb.ListenedAt)
	if err != nil {
		return outcome{refuse: RefuseBadTime, detail: err.Error()}
	}
	s := listenbrainz.Submitted{ListenedAt: at, AdditionalInfo: additionalInfo(tm.AdditionalInfo)}
	for _, f := range [...]struct {
		to   *string
		from *string
	}{{&s.ArtistName, tm.ArtistName}, {&s.TrackName, tm.TrackName}, {&s.ReleaseName, tm.ReleaseName}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	l := s.Map(rd.opts.User)
	l.Source = SourceListenBrainz
	return outcome{l: l}
}

// listenedAt is listened_at in Unix seconds: a JSON number, its fraction
// truncated (towards the past).
func listenedAt(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, fmt.Errorf("listened_at missing")
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return sec, nil
	}
	if s[0] == '"' {
		return 0, fmt.Errorf("listened_at %.40s is a string, not a number", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) >= 1<<62 {
		return 0, fmt.Errorf("listened_at %.40s is not a Unix time", s)
	}
	return int64(math.Floor(f)), nil
}

// additionalInfo decodes additional_info for listenbrainz.Submitted.Map
// (numbers as json.Number), keeping duration and duration_ms only when
// they are what ListenBrainz's checks leave: int(float(x)) positive and
// within its maximum, as an integer. Not an object: nil.
func additionalInfo(raw json.RawMessage) map[string]any {
	if !isObject(raw) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ai map[string]any
	if err := dec.Decode(&ai); err != nil {
		return nil
	}
	for key, limit := range map[string]int64{"duration": listenbrainz.MaxDuration, "duration_ms": listenbrainz.MaxDurationMS} {
		v, ok := ai[key]
		if !ok {
			continue
		}
		n, _ := v.(json.Number)
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsNaN(f) || f < 1 || f >= float64(limit)+1 {
			delete(ai, key)
			continue
		}
		ai[key] = json.Number(strconv.FormatInt(int64(f), 10))
	}
	return ai
}
