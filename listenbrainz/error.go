package listenbrainz

import (
	"bytes"
	"encoding/json"
)

// Error is an error answered in ListenBrainz's shape: HTTP status Code and
// the body {"code": Code, "error": Message}. When a listen of a submission
// fails validation, ListenBrainz also copies that listen's top-level keys
// into the body (its APIError payload); Listen holds them then, and is nil
// otherwise. "code" and "error" win over keys of the same name.
type Error struct {
	Code    int
	Message string
	Listen  map[string]any
}

// NewError returns an Error without a listen, for the statuses the
// handlers answer besides 400: 401 (authorization), 404, 429 (rate limit),
// 500, 503.
func NewError(code int, message string) *Error {
	return &Error{Code: code, Message: message}
}

// badRequest is a 400; listen, when not nil, is copied into the body.
func badRequest(message string, listen *object) *Error {
	e := &Error{Code: 400, Message: message}
	if listen != nil {
		e.Listen = listen.plain()
	}
	return e
}

// Error returns the message.
func (e Error) Error() string { return e.Message }

// MarshalJSON writes the body ListenBrainz answers: the keys of Listen
// merged with "code" and "error". Like Flask's jsonify, it does not escape
// <, > and & (json.Marshal escapes them again; an Encoder with
// SetEscapeHTML(false) does not).
func (e Error) MarshalJSON() ([]byte, error) {
	body := make(map[string]any, len(e.Listen)+2)
	for k, v := range e.Listen {
		body[k] = v
	}
	body["code"] = e.Code
	body["error"] = e.Message
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
