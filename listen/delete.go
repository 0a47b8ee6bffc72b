package listen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Delete asks the pipeline to take one counted listen out of every count:
// the listen of UserID at PlayedAt (a second) whose track has recording
// msid MSID (any spelling of the track: MSID normalizes).
//
// On user.listen.raw and user.listen.valid it is the JSON object
//
//	{"delete":{"user_id":"alice","played_at":"2026-12-01T10:00:00Z","recording_msid":"<uuid>"}}
//
// with an optional "album_name" (see Album)
// keyed like a listen: by user_id on raw (so it is ordered after the
// user's listens of every source), by user_id|day on valid. played_at
// takes the forms a listen's does (RFC 3339 or Unix seconds); the msid
// is in the canonical form (lowercase, hyphenated). A record like this has
// no top-level played_at, so a consumer that predates deletions refuses it
// as a listen (dead-letter, replayable) instead of counting it. Codec
// decodes it as a Delete.
type Delete struct {
	UserID   string
	PlayedAt time.Time
	MSID     string
	// Album, when set, is the album name the listen was stored with in
	// raw_listens ("" for none), which the api looks up: the aggregator
	// uses it only for a listen counted before its state recorded each
	// listen's album (state version 3). Member "album_name", optional.
	Album *string
}

// FieldDelete and FieldRecordingMSID name the delete record's members in
// an InvalidError.
const (
	FieldDelete        = "delete"
	FieldRecordingMSID = "recording_msid"
)

// ReasonBadDelete is a delete record that is not the object above.
const ReasonBadDelete Reason = "bad_delete"

// Key is the state key user_id|day of the deleted listen (Listen.Key).
func (d Delete) Key() string { return DayKey(d.UserID, d.PlayedAt) }

// Encode renders d as its record, played_at in RFC 3339.
func (d Delete) Encode() []byte {
	b := make([]byte, 0, 96+len(d.UserID))
	b = append(b, `{"delete":{"user_id":`...)
	b = appendJSONString(b, d.UserID)
	b = append(b, `,"played_at":"`...)
	b = d.PlayedAt.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","recording_msid":`...)
	b = appendJSONString(b, d.MSID)
	if d.Album != nil {
		b = append(b, `,"album_name":`...)
		b = appendJSONString(b, *d.Album)
	}
	return append(b, "}}"...)
}

// IsDelete reports whether raw is meant as a delete record: a JSON object
// whose first member is "delete". Parse it with ParseDelete; anything else
// is a listen (Parse).
func IsDelete(raw []byte) bool {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(b[1:], " \t\r\n"), []byte(`"delete"`))
}

// ParseDelete reads a delete record received at now: played_at within
// [MinPlayedAtUnix, now+MaxFutureSkew] as a listen's, a valid user_id,
// the msid in the canonical form, album_name (if any) a valid name, no
// other member. Errors are
// *InvalidError.
func ParseDelete(raw []byte, now time.Time) (Delete, error) {
	d, err := parseDelete(raw, now.Add(MaxFutureSkew).Unix())
	if err != nil {
		return Delete{}, err
	}
	return d, nil
}

// DecodeDelete reads a delete record from user.listen.valid: ParseDelete
// without the clock (a record valid when it was written stays valid).
func DecodeDelete(raw []byte) (Delete, error) {
	d, err := parseDelete(raw, maxStoredUnix)
	if err != nil {
		return Delete{}, err
	}
	return d, nil
}

func parseDelete(raw []byte, hi int64) (Delete, *InvalidError) {
	if len(raw) > MaxRecordBytes {
		return Delete{}, invalid(ReasonTooLarge, "", fmt.Sprintf("over %d bytes", MaxRecordBytes))
	}
	var rec struct {
		Delete *struct {
			UserID   *string         `json:"user_id"`
			PlayedAt json.RawMessage `json:"played_at"`
			MSID     *string         `json:"recording_msid"`
			Album    *string         `json:"album_name"`
		} `json:"delete"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Delete{}, invalid(ReasonBadDelete, FieldDelete, "want {\"delete\":{\"user_id\",\"played_at\",\"recording_msid\"}} and nothing else: "+err.Error())
	}
	if dec.More() {
		return Delete{}, invalid(ReasonBadDelete, "", "data after the delete object")
	}
	if rec.Delete == nil {
		return Delete{}, invalid(ReasonMissingField, FieldDelete, "required")
	}
	r := rec.Delete
	if r.UserID == nil {
		return Delete{}, invalid(ReasonMissingField, FieldUserID, "required")
	}
	if err := checkUserID(*r.UserID); err != nil {
		return Delete{}, err
	}
	sec, err := playedAt(r.PlayedAt)
	if err != nil {
		return Delete{}, err
	}
	if err := checkPlayedAt(sec, MinPlayedAtUnix, hi); err != nil {
		return Delete{}, err
	}
	if r.MSID == nil {
		return Delete{}, invalid(ReasonMissingField, FieldRecordingMSID, "required")
	}
	if !canonicalUUID(*r.MSID) {
		return Delete{}, invalid(ReasonBadDelete, FieldRecordingMSID, "not a UUID in the canonical form (lowercase hex, 8-4-4-4-12)")
	}
	if r.Album != nil {
		if err := checkName(FieldAlbumName, CollapseSpace(*r.Album), false, 0); err != nil {
			return Delete{}, err
		}
	}
	return Delete{UserID: *r.UserID, PlayedAt: time.Unix(sec, 0).UTC(), MSID: *r.MSID, Album: r.Album}, nil
}

// canonicalUUID reports whether s is a UUID as FormatUUID writes it.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
