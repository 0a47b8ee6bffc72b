package listenbrainz

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/topk-charts/topk/listen"
)

// ListenBrainz's limits on a submission (listenbrainz/webserver/views/
// api_tools.py and webserver/__init__.py).
const (
	// MaxPayloadBytes is the largest body POST /1/submit-listens reads
	// (inclusive).
	MaxPayloadBytes = MaxListenBytes * MaxListensPerRequest
	// MaxListenBytes is the average size a listen of a submission may
	// have: a body over len(payload)×MaxListenBytes bytes is refused. No
	// single listen is measured.
	MaxListenBytes = 10240
	// MaxListensPerRequest is the most listens one submission may carry.
	MaxListensPerRequest = 1000
	// MaxTagsPerListen is the most items additional_info.tags may have.
	MaxTagsPerListen = 50
	// MaxTagChars is the most characters one tag may have.
	MaxTagChars = 64
	// MaxDuration is the largest additional_info.duration, in seconds (24
	// days).
	MaxDuration = 24 * 24 * 60 * 60
	// MaxDurationMS is the largest additional_info.duration_ms.
	MaxDurationMS = MaxDuration * 1000
	// MinListenedAt is the earliest listened_at, 2002-10-01T00:00:00Z
	// (inclusive). ListenBrainz's message for an earlier one names
	// 1033410600, which is that midnight in India; the check uses this.
	MinListenedAt = 1033430400
	// ListenedAtSkew is how far ahead of the server's clock listened_at
	// may be (exclusive): listened_at < now + ListenedAtSkew.
	ListenedAtSkew = time.Hour
)

// The listen types of a submission.
const (
	ListenTypeSingle     = "single"      // one listen that has just ended
	ListenTypeImport     = "import"      // up to MaxListensPerRequest past listens
	ListenTypePlayingNow = "playing_now" // the track playing now: not a listen
)

// Submission is a body of POST /1/submit-listens that passed ListenBrainz's
// checks.
type Submission struct {
	Type    string // ListenTypeSingle, ListenTypeImport or ListenTypePlayingNow
	Listens []Submitted
}

// Submitted is one listen of a Submission as ListenBrainz keeps it after its
// checks, which also change it: names trimmed, an empty release_name
// dropped, listened_at, duration and duration_ms made integers, empty MBID
// fields and items dropped.
type Submitted struct {
	// ListenedAt is listened_at in Unix seconds; 0 for playing_now.
	ListenedAt int64
	// TrackName and ArtistName are never empty; ReleaseName may be.
	TrackName, ArtistName, ReleaseName string
	// AdditionalInfo is track_metadata.additional_info (nil when absent or
	// not an object). Numbers are json.Number; duration and duration_ms,
	// when present, are positive integers within MaxDuration and
	// MaxDurationMS; recording_mbid, release_mbid, release_group_mbid and
	// track_mbid are strings ParseMSID accepts (as sent), artist_mbids and
	// work_mbids non-empty []any of such strings.
	AdditionalInfo map[string]any
	// Object is the listen's whole JSON object after those changes, as
	// ListenBrainz would store it and copies it into an error's body.
	Object map[string]any
}

// ParseSubmission checks body, the request body of POST /1/submit-listens,
// with ListenBrainz's rules, in its order and with its messages (a 400
// Error), at server time now: those of submit_listen and validate_listen in
// listenbrainz-server's webserver/views/api.py and api_tools.py, which
// testdata/lbref.py runs to make the vectors TestReferenceVectors replays.
// In order:
// the body's size (MaxPayloadBytes); UTF-8 and JSON (messages "Cannot parse
// JSON document: " and a description of the problem, which is not orjson's
// text); the top level an object; "payload" present, an array, not empty,
// at most MaxListensPerRequest items, the body at most MaxListenBytes per
// listen on average; "listen_type" present and valid, and one listen only
// for single and playing_now. Then each listen in turn:
//
//   - null: "Listen is empty and cannot be validated."
//   - single and import: listened_at present, an int as Python's int() makes
//     one (integers; floats truncated toward zero; strings of digits with
//     an optional sign, underscores between digits and whitespace around;
//     booleans as 0 and 1), MinListenedAt ≤ listened_at < now +
//     ListenedAtSkew; track_metadata present; no other key.
//   - playing_now: no listened_at; track_metadata present; no other key.
//   - track_metadata not null; track_name and artist_name strings, not
//     empty after trimming; release_name a string if present, dropped if
//     empty after trimming.
//   - additional_info: tags at most MaxTagsPerListen items of at most
//     MaxTagChars characters; not both duration and duration_ms; each a
//     positive integer after Python's int(float(x)), at most MaxDuration or
//     MaxDurationMS; recording_mbid, release_mbid, release_group_mbid and
//     track_mbid dropped if null or empty, else UUIDs (ParseMSID);
//     artist_mbids and work_mbids dropped if null or empty, null and empty
//     items dropped, the others UUIDs.
//   - no string contains U+0000: "<string> contains a unicode null".
//
// A listen's errors carry it (Error.Listen) as ListenBrainz's do, with the
// changes made before the error; those of the null check carry the
// innermost object holding the string, as ListenBrainz's do.
//
// Where ListenBrainz fails with a 500 (an uncaught Python exception: a
// listen that is not an object, a track_metadata that is not an object
// holding the name keys, an additional_info or tags of a type its checks do
// not expect, a duration of "inf"), topk answers a 200 or a 400 as the
// comments in the code say; and where ListenBrainz lets U+0000 through (object keys, strings in
// nested arrays or in objects inside arrays), topk refuses it once every
// listen passed ListenBrainz's checks. ListenBrainz also copies a payload
// that is an object into the body of its error, and so does topk.
func ParseSubmission(body []byte, now time.Time) (*Submission, *Error) {
	if len(body) > MaxPayloadBytes {
		return nil, badRequest(fmt.Sprintf("Payload too large. Payload cannot exceed %d bytes", MaxPayloadBytes), nil)
	}
	doc, err := decodeBody(body)
	if err != nil {
		return nil, badRequest("Cannot parse JSON document: "+err.Error(), nil)
	}
	top, ok := doc.(*object)
	if !ok {
		return nil, badRequest("Invalid JSON document submitted. Top level of JSON document should be a json object.", nil)
	}
	pv, ok := top.get("payload")
	if !ok {
		return nil, badRequest("Invalid JSON document submitted.", nil)
	}
	payload, ok := pv.([]any)
	if !ok {
		// ListenBrainz copies a payload that is an object into the body,
		// like a listen (and fails with a 500 on a string or a number).
		echo, _ := pv.(*object)
		return nil, badRequest("The payload in the JSON document should be a list of listens.", echo)
	}
	if len(payload) == 0 {
		return nil, badRequest("JSON document does not contain any listens", nil)
	}
	if len(payload) > MaxListensPerRequest {
		return nil, badRequest(fmt.Sprintf("Too many listens. You may not submit more than %d listens at once.", MaxListensPerRequest), nil)
	}
	if len(body) > len(payload)*MaxListenBytes {
		return nil, badRequest(fmt.Sprintf("JSON document is too large. Each listens may not be larger than %d bytes.", MaxListenBytes), nil)
	}
	tv, ok := top.get("listen_type")
	if !ok {
		return nil, badRequest("Invalid JSON document submitted.", nil)
	}
	typ, _ := tv.(string)
	switch typ {
	case ListenTypeSingle, ListenTypeImport, ListenTypePlayingNow:
	default:
		return nil, badRequest("JSON document requires a valid listen_type key.", nil)
	}
	if typ != ListenTypeImport && len(payload) > 1 {
		return nil, badRequest("JSON document contains more than listen for a single/playing_now. It should contain only one.", nil)
	}
	sub := &Submission{Type: typ, Listens: make([]Submitted, 0, len(payload))}
	objects := make([]*object, 0, len(payload))
	for _, v := range payload {
		s, l, err := validateListen(v, typ, now)
		if err != nil {
			return nil, err
		}
		sub.Listens = append(sub.Listens, s)
		objects = append(objects, l)
	}
	// Only once every listen passed ListenBrainz's checks, so that an error
	// ListenBrainz answers is answered first.
	for _, l := range objects {
		if err := unicodeNullAnywhere(l); err != nil {
			return nil, err
		}
	}
	return sub, nil
}

// validateListen is ListenBrainz's validate_listen: it checks one listen and
// changes it as ListenBrainz does. It also returns the listen's object.
func validateListen(v any, typ string, now time.Time) (Submitted, *object, *Error) {
	if v == nil {
		return Submitted{}, nil, badRequest("Listen is empty and cannot be validated.", nil)
	}
	// A listen that is not an object is one without keys (ListenBrainz fails
	// with a 500 on most): its error is the first key's, without a listen
	// in the body.
	echo, _ := v.(*object)
	l := echo
	if l == nil {
		l = newObject()
	}
	var listenedAt int64
	if typ == ListenTypePlayingNow {
		if l.has("listened_at") {
			return Submitted{}, nil, badRequest("JSON document must not contain listened_at while submitting playing_now.", echo)
		}
		if !l.has("track_metadata") {
			return Submitted{}, nil, badRequest("JSON document must contain the key track_metadata at the top level.", echo)
		}
		if len(l.keys) > 1 {
			return Submitted{}, nil, badRequest("JSON document may only contain track_metadata as top level key when submitting playing_now.", echo)
		}
	} else {
		var err *Error
		if listenedAt, err = validateListenedAt(l, echo, now); err != nil {
			return Submitted{}, nil, err
		}
		if !l.has("track_metadata") {
			return Submitted{}, nil, badRequest("JSON document must contain the key track_metadata at the top level.", echo)
		}
		if len(l.keys) > 2 {
			return Submitted{}, nil, badRequest("JSON document may only contain listened_at and track_metadata top level keys", echo)
		}
	}
	tmv, _ := l.get("track_metadata")
	if tmv == nil {
		return Submitted{}, nil, badRequest("JSON document may not have track_metadata with null value.", echo)
	}
	// A track_metadata that is not an object is one without keys: it lacks
	// track_name (ListenBrainz says so too for most strings and arrays, and
	// fails with a 500 on the others).
	tm, _ := tmv.(*object)
	if tm == nil {
		tm = newObject()
	}
	for _, f := range [...]struct {
		key      string
		required bool
	}{{"track_name", true}, {"artist_name", true}, {"release_name", false}} {
		if err := validateName(l, tm, f.key, f.required); err != nil {
			return Submitted{}, nil, err
		}
	}
	// An additional_info that is not an object is not checked (ListenBrainz
	// fails with a 500 on null and numbers, and lets most strings and
	// arrays through) and is left out of AdditionalInfo.
	ai, _ := tm.vals["additional_info"].(*object)
	if ai != nil {
		if err := validateAdditionalInfo(l, ai); err != nil {
			return Submitted{}, nil, err
		}
	}
	if err := unicodeNull(l); err != nil {
		return Submitted{}, nil, err
	}
	s := Submitted{ListenedAt: listenedAt, Object: l.plain()}
	s.TrackName, _ = tm.vals["track_name"].(string)
	s.ArtistName, _ = tm.vals["artist_name"].(string)
	s.ReleaseName, _ = tm.vals["release_name"].(string)
	if ai != nil {
		s.AdditionalInfo = ai.plain()
	}
	return s, l, nil
}

// validateListenedAt is ListenBrainz's validate_listened_at: it makes
// listened_at an integer in l and returns it.
func validateListenedAt(l, echo *object, now time.Time) (int64, *Error) {
	v, ok := l.get("listened_at")
	if !ok {
		return 0, badRequest("JSON document must contain the key listened_at at the top level.", echo)
	}
	n, ok := pyInt(v)
	if !ok {
		return 0, badRequest("JSON document must contain an int value for listened_at.", echo)
	}
	l.set("listened_at", json.Number(n.String()))
	if n.Cmp(big.NewInt(now.Unix()+int64(ListenedAtSkew/time.Second))) >= 0 {
		return 0, badRequest("Value for key listened_at is too high.", echo)
	}
	if n.Cmp(big.NewInt(MinListenedAt)) < 0 {
		return 0, badRequest("Value for key listened_at is too low. listened_at timestamp should be greater than 1033410600 (2002-10-01 00:00:00 UTC).", echo)
	}
	return n.Int64(), nil
}

// validateName is ListenBrainz's validate_basic_metadata of
// track_metadata[key]: a string, trimmed; if empty, an error when required,
// else dropped.
func validateName(l, tm *object, key string, required bool) *Error {
	v, ok := tm.get(key)
	if !ok {
		if required {
			return badRequest("JSON document does not contain required field track_metadata."+key+".", l)
		}
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return badRequest("track_metadata."+key+" must be a single string.", l)
	}
	s = pyStrip(s)
	tm.set(key, s)
	if s == "" {
		if required {
			return badRequest("field track_metadata."+key+" is empty.", l)
		}
		tm.del(key)
	}
	return nil
}

// validateAdditionalInfo checks and changes additional_info ai of listen l
// as ListenBrainz does.
func validateAdditionalInfo(l, ai *object) *Error {
	if tags, ok := ai.get("tags"); ok {
		// Python's len() and iteration: a string's characters, an object's
		// keys. Where ListenBrainz fails with a 500 (tags or a tag null, a
		// number, a boolean), topk lets it through.
		if n, ok := pyLen(tags); ok && n > MaxTagsPerListen {
			return badRequest(fmt.Sprintf("JSON document may not contain more than %d items in track_metadata.additional_info.tags.", MaxTagsPerListen), l)
		}
		items, _ := pyIter(tags)
		for _, tag := range items {
			if n, ok := pyLen(tag); ok && n > MaxTagChars {
				return badRequest(fmt.Sprintf("JSON document may not contain track_metadata.additional_info.tags longer than %d characters.", MaxTagChars), l)
			}
		}
	}
	if ai.has("duration") && ai.has("duration_ms") {
		return badRequest("JSON document should not contain both duration and duration_ms.", l)
	}
	if err := validateDuration(l, ai, "duration", MaxDuration); err != nil {
		return err
	}
	if err := validateDuration(l, ai, "duration_ms", MaxDurationMS); err != nil {
		return err
	}
	for _, key := range [...]string{"release_mbid", "recording_mbid", "release_group_mbid", "track_mbid"} {
		v, ok := ai.get(key)
		if !ok {
			continue
		}
		if !pyTruthy(v) {
			ai.del(key)
			continue
		}
		if s, ok := v.(string); !ok || !validUUID(s) {
			return badRequest(key+" MBID format invalid.", l)
		}
	}
	for _, key := range [...]string{"artist_mbids", "work_mbids"} {
		v, ok := ai.get(key)
		if !ok {
			continue
		}
		if !pyTruthy(v) {
			ai.del(key)
			continue
		}
		// Python iterates a string's characters (none is a UUID) and an
		// object's keys; a number or true, which ListenBrainz fails on with
		// a 500, is an invalid MBID here.
		items, ok := pyIter(v)
		if !ok {
			return badRequest(key+" MBID format invalid.", l)
		}
		kept := make([]any, 0, len(items))
		for _, item := range items {
			if pyTruthy(item) {
				kept = append(kept, item)
			}
		}
		for _, item := range kept {
			if s, ok := item.(string); !ok || !validUUID(s) {
				return badRequest(key+" MBID format invalid.", l)
			}
		}
		ai.set(key, kept)
	}
	return nil
}

// validateDuration is ListenBrainz's validate_duration_field: int(float(x))
// positive and at most max, stored back as an integer.
func validateDuration(l, ai *object, key string, max int64) *Error {
	v, ok := ai.get(key)
	if !ok {
		return nil
	}
	// int(f) ≤ 0 is f < 1, int(f) > max is f ≥ max+1. Python's int() of
	// ±inf raises OverflowError, which ListenBrainz does not catch (a 500):
	// topk says too large or invalid.
	f, ok := pyFloat(v)
	switch {
	case !ok || math.IsNaN(f) || f < 1:
		return badRequest("Value for "+key+" is invalid, should be a positive integer.", l)
	case f >= float64(max)+1:
		return badRequest(fmt.Sprintf("Value for %s is too large, max permitted value is %d", key, max), l)
	}
	ai.set(key, json.Number(strconv.FormatInt(int64(f), 10)))
	return nil
}

func validUUID(s string) bool {
	_, ok := pyUUID(s)
	return ok
}

// unicodeNull is ListenBrainz's check_for_unicode_null_recursively: the
// values of o in order, recursing into objects; of an array, only its
// strings. The error carries the object holding the string.
func unicodeNull(o *object) *Error {
	for _, k := range o.keys {
		switch v := o.vals[k].(type) {
		case *object:
			if err := unicodeNull(v); err != nil {
				return err
			}
		case []any:
			for _, item := range v {
				if s, ok := item.(string); ok && strings.Contains(s, "\x00") {
					return badRequest(s+" contains a unicode null", o)
				}
			}
		case string:
			if strings.Contains(v, "\x00") {
				return badRequest(v+" contains a unicode null", o)
			}
		}
	}
	return nil
}

// unicodeNullAnywhere finds U+0000 where unicodeNull does not look: keys,
// and strings in arrays within arrays or in objects within arrays.
func unicodeNullAnywhere(o *object) *Error {
	for _, k := range o.keys {
		if strings.Contains(k, "\x00") {
			return badRequest(k+" contains a unicode null", o)
		}
		if err := unicodeNullIn(o.vals[k], o); err != nil {
			return err
		}
	}
	return nil
}

func unicodeNullIn(v any, in *object) *Error {
	switch v := v.(type) {
	case string:
		if strings.Contains(v, "\x00") {
			return badRequest(v+" contains a unicode null", in)
		}
	case *object:
		return unicodeNullAnywhere(v)
	case []any:
		for _, item := range v {
			if err := unicodeNullIn(item, in); err != nil {
				return err
			}
		}
	}
	return nil
}

// Source is the source of the listens submitted through this package, as
// written in listen.Listen.Source.
const Source = "listenbrainz"

// Listen maps a single or import listen to topk's event contract for user
// (playing_now is not a listen: its ListenedAt 0 is refused) and checks it
// with limits at time now, so that what is produced is not refused
// downstream: a refusal is a 400 Error carrying the listen, worded for
// ListenBrainz's field names, as is a listen whose record (json.Marshal of
// the Listen) is over listen.MaxRecordBytes.
//
// The contract has room for these fields of additional_info, which are
// kept: duration_ms, or duration×1000 (DurationMS); recording_mbid
// (TrackID), the first of artist_mbids (ArtistID) and release_mbid
// (AlbumID), each in the canonical UUID form. All others are dropped, as
// the contract has no field for them: tags, release_group_mbid,
// track_mbid, the other artist_mbids, work_mbids, tracknumber, isrc,
// spotify_id, submission_client, media_player, music_service, origin_url
// and any other key a client sends.
func (s Submitted) Listen(user string, limits listen.Limits, now time.Time) (listen.Listen, *Error) {
	l := s.Map(user)
	if err := limits.Validate(l, now); err != nil {
		return listen.Listen{}, &Error{Code: 400, Message: refusal(err, l, limits, now), Listen: s.Object}
	}
	record, err := json.Marshal(l)
	if err != nil {
		return listen.Listen{}, &Error{Code: 400, Message: "This server cannot store this listen: " + err.Error(), Listen: s.Object}
	}
	if len(record) > listen.MaxRecordBytes {
		return listen.Listen{}, &Error{Code: 400, Message: fmt.Sprintf("This listen is too large for this server: as its record it takes %d bytes, over the limit of %d bytes.", len(record), listen.MaxRecordBytes), Listen: s.Object}
	}
	return l, nil
}

// Map is the mapping Listen applies, without its checks: s as topk's event
// contract for user, Source "listenbrainz". It is for other readers of
// ListenBrainz's listens (package imports reads ListenBrainz's export with
// it), which check the result and word refusals themselves; the fields
// kept are those Listen's comment lists.
func (s Submitted) Map(user string) listen.Listen {
	l := listen.Listen{
		UserID:     user,
		PlayedAt:   time.Unix(s.ListenedAt, 0).UTC(),
		ArtistName: s.ArtistName,
		TrackName:  s.TrackName,
		AlbumName:  s.ReleaseName,
		DurationMS: durationMS(s.AdditionalInfo),
		TrackID:    mbid(s.AdditionalInfo["recording_mbid"]),
		AlbumID:    mbid(s.AdditionalInfo["release_mbid"]),
		Source:     Source,
	}
	if artists, ok := s.AdditionalInfo["artist_mbids"].([]any); ok && len(artists) > 0 {
		l.ArtistID = mbid(artists[0])
	}
	return l
}

// durationMS is duration_ms, or duration in milliseconds, or 0.
func durationMS(ai map[string]any) int64 {
	if n, ok := ai["duration_ms"].(json.Number); ok {
		ms, _ := strconv.ParseInt(string(n), 10, 64)
		return ms
	}
	if n, ok := ai["duration"].(json.Number); ok {
		sec, _ := strconv.ParseInt(string(n), 10, 64)
		return sec * 1000
	}
	return 0
}

// mbid is v in the canonical UUID form, or "".
func mbid(v any) string {
	s, _ := v.(string)
	u, _ := ParseMSID(s)
	return u
}

// refusal words the contract's refusal of l for a ListenBrainz client.
func refusal(err error, l listen.Listen, limits listen.Limits, now time.Time) string {
	var ie *listen.InvalidError
	if !errors.As(err, &ie) {
		return "This server cannot store this listen: " + err.Error()
	}
	field := map[string]string{
		listen.FieldArtistName: "track_metadata.artist_name",
		listen.FieldTrackName:  "track_metadata.track_name",
		listen.FieldAlbumName:  "track_metadata.release_name",
		listen.FieldDurationMS: "track_metadata.additional_info.duration_ms",
		listen.FieldTrackID:    "track_metadata.additional_info.recording_mbid",
		listen.FieldArtistID:   "track_metadata.additional_info.artist_mbids",
		listen.FieldAlbumID:    "track_metadata.additional_info.release_mbid",
	}[ie.Field]
	switch {
	case ie.Field == listen.FieldUserID:
		return "This server cannot store listens of this user name (" + ie.Detail + ")."
	case ie.Reason == listen.ReasonPlayedAtOutOfRange && l.PlayedAt.After(now):
		return fmt.Sprintf("Value for key listened_at is too high for this server: it accepts listened_at at most %d minutes ahead of its clock, where ListenBrainz allows one hour.", listen.MaxFutureSkew/time.Minute)
	case ie.Reason == listen.ReasonPlayedAtOutOfRange:
		return fmt.Sprintf("Value for key listened_at is too low for this server: it accepts listened_at from %d (2002-01-01 00:00:00 UTC) on.", listen.MinPlayedAtUnix)
	case ie.Reason == listen.ReasonEmptyName:
		return "field " + field + " is empty."
	case ie.Reason == listen.ReasonBadName:
		return field + " contains a control character, which this server does not accept in names (of U+0000–U+001F and U+007F–U+009F, only whitespace)."
	case ie.Reason == listen.ReasonNameTooLong:
		max := limits.MaxNameChars
		if max <= 0 {
			max = listen.DefaultMaxNameChars
		}
		return fmt.Sprintf("%s is too long for this server: %d characters, over its limit of %d.", field, utf8.RuneCountInString(listen.CollapseSpace(nameOf(l, ie.Field))), max)
	case field != "":
		return field + " cannot be stored by this server: " + ie.Detail + "."
	}
	return "This server cannot store this listen: " + ie.Error()
}

// nameOf is the name of l in the contract's field.
func nameOf(l listen.Listen, field string) string {
	switch field {
	case listen.FieldArtistName:
		return l.ArtistName
	case listen.FieldTrackName:
		return l.TrackName
	}
	return l.AlbumName
}
