package listen

import "errors"

// Reason is a short machine-readable DLQ reason, sent as the reason header
// of user.listen.dlq records and used as a metric label.
type Reason string

// Reasons a record is rejected, in the order Parse checks them: size and
// emptiness first, then the JSON text, then each field in the order of the
// contract table (user_id, played_at, artist_name, track_name, album_name,
// track_id, artist_id, album_id, duration_ms, source, event_id); within a
// field, presence, then JSON type, then string validity, then the field's
// rule. The first problem found is the one reported.
const (
	// ReasonTooLarge: the record is over MaxRecordBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonNilValue: the record value is nil (a Kafka tombstone) or empty.
	ReasonNilValue Reason = "nil_value"
	// ReasonNotJSON: the bytes are not exactly one JSON value (syntax error,
	// trailing garbage, only whitespace) or not valid UTF-8.
	ReasonNotJSON Reason = "not_json"
	// ReasonNotObject: valid JSON, but not an object (array, string, number,
	// true, false, null).
	ReasonNotObject Reason = "not_object"
	// ReasonDuplicateField: a field of the contract appears twice in the
	// object (JSON parsers disagree on which one wins). Unknown fields may
	// repeat.
	ReasonDuplicateField Reason = "duplicate_field"
	// ReasonMissingField: a required field is absent or null.
	ReasonMissingField Reason = "missing_field"
	// ReasonBadFieldType: a field of the contract has the wrong JSON type
	// (e.g. user_id a number, duration_ms a string, played_at a boolean).
	ReasonBadFieldType Reason = "bad_field_type"
	// ReasonBadString: a string field is not valid Unicode text: a lone
	// UTF-16 surrogate \u escape in a record, or invalid UTF-8 in a built
	// Listen.
	ReasonBadString Reason = "bad_string"
	// ReasonBadUserID: user_id breaks its rules (empty, over 128 bytes, a
	// control character, '|', leading or trailing whitespace).
	ReasonBadUserID Reason = "bad_user_id"
	// ReasonBadPlayedAt: a played_at string that is not RFC 3339.
	ReasonBadPlayedAt Reason = "bad_played_at"
	// ReasonPlayedAtOutOfRange: played_at before 2002-01-01T00:00:00Z or
	// after now + MaxFutureSkew.
	ReasonPlayedAtOutOfRange Reason = "played_at_out_of_range"
	// ReasonEmptyName: artist_name or track_name empty or only whitespace.
	ReasonEmptyName Reason = "empty_name"
	// ReasonBadName: artist_name, track_name or album_name contains a
	// control character other than whitespace (e.g. U+0000, U+001B).
	ReasonBadName Reason = "bad_name"
	// ReasonNameTooLong: artist_name, track_name or album_name has more
	// characters (Unicode code points, after CollapseSpace) than the limit
	// (DefaultMaxNameChars, or Limits.MaxNameChars: TOPK_MAX_NAME_CHARS).
	// Long names would bloat the aggregator's state of every day they are
	// played on.
	ReasonNameTooLong Reason = "name_too_long"
	// ReasonBadDuration: duration_ms is a number but not a non-negative
	// integer that fits in int64.
	ReasonBadDuration Reason = "bad_duration"
)

// Reasons lists every Reason this package returns (e.g. to pre-register
// metric labels).
func Reasons() []Reason {
	return []Reason{
		ReasonTooLarge, ReasonNilValue, ReasonNotJSON, ReasonNotObject,
		ReasonDuplicateField, ReasonMissingField, ReasonBadFieldType,
		ReasonBadString, ReasonBadUserID, ReasonBadPlayedAt,
		ReasonPlayedAtOutOfRange, ReasonEmptyName, ReasonBadName,
		ReasonNameTooLong, ReasonBadDuration,
	}
}

// Field names of the contract, as spelled in JSON.
const (
	FieldUserID     = "user_id"
	FieldPlayedAt   = "played_at"
	FieldArtistName = "artist_name"
	FieldTrackName  = "track_name"
	FieldAlbumName  = "album_name"
	FieldTrackID    = "track_id"
	FieldArtistID   = "artist_id"
	FieldAlbumID    = "album_id"
	FieldDurationMS = "duration_ms"
	FieldSource     = "source"
	FieldEventID    = "event_id"
)

// InvalidError says why a record was rejected.
type InvalidError struct {
	Reason Reason // machine-readable, one of the Reason constants
	Field  string // JSON name of the offending field; "" for the whole record
	Detail string // human-readable; never contains the record's bytes
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "listen: invalid record: " + string(e.Reason) + ": " + e.Detail
	}
	return "listen: invalid record: " + string(e.Reason) + ": " + e.Field + ": " + e.Detail
}

// ReasonOf returns the Reason of the first *InvalidError in err's chain, or
// "" if there is none.
func ReasonOf(err error) Reason {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

func invalid(r Reason, field, detail string) *InvalidError {
	return &InvalidError{Reason: r, Field: field, Detail: detail}
}
