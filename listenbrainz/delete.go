package listenbrainz

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/listen"
)

// MaxDeleteBytes is the largest body POST /1/delete-listen reads
// (inclusive); ListenBrainz sets none of its own, and the body it takes is
// two members long.
const MaxDeleteBytes = MaxListenBytes

// Messages of POST /1/delete-listen (listenbrainz/webserver/views/api.py,
// delete_listen, and the Flask and werkzeug errors of request.json).
const (
	msgNotJSON          = "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
	msgBadRequest       = "The browser (or proxy) sent a request that this server could not understand."
	msgTimestampMissing = "Listen timestamp missing."
	msgMSIDMissing      = "Recording MSID missing."
)

// ParseDeleteListen reads the body of POST /1/delete-listen of user,
// received at now, as ListenBrainz's delete_listen does, and returns the
// delete record it asks for:
//
//   - the Content-Type must be application/json (or application/*+json),
//     else a 415, as Flask's request.json answers;
//   - a body that is not JSON is a 400 with werkzeug's generic message
//     (Flask outside debug mode);
//   - "listened_at" missing: "Listen timestamp missing."; a value Python's
//     int() refuses: "<v>: Listen timestamp invalid." (int() truncates a
//     float, reads "1_000" and " 12 ", takes true as 1);
//   - "recording_msid" missing: "Recording MSID missing."; not a UUID as
//     Python's uuid.UUID reads it (ParseMSID), or not a string:
//     "<v>: Recording MSID format invalid.". The msid is kept in the
//     canonical form.
//
// Where ListenBrainz fails with a 500 (a body that is JSON but not an
// object, null or an array as listened_at, one beyond datetime's range),
// topk answers a 400 with the nearest of those messages. topk's own rule:
// listened_at must lie in the window of listens it holds (from
// listen.MinPlayedAtUnix to listen.MaxFutureSkew past now), else a 400
// that says so; ListenBrainz accepts any and deletes nothing. Like
// ListenBrainz, a delete of a listen that does not exist is not an error.
// The body is read as submissions are (decodeBody, orjson's rules), where
// Flask reads it with Python's json module: NaN and Infinity are refused
// here, both errors there too.
func ParseDeleteListen(user, contentType string, body []byte, now time.Time) (listen.Delete, *Error) {
	if !isJSONType(contentType) {
		return listen.Delete{}, NewError(415, msgNotJSON)
	}
	if len(body) > MaxDeleteBytes {
		return listen.Delete{}, badRequest(fmt.Sprintf("Payload too large. Payload cannot exceed %d bytes", MaxDeleteBytes), nil)
	}
	v, err := decodeBody(body)
	if err != nil {
		return listen.Delete{}, badRequest(msgBadRequest, nil)
	}
	obj, ok := v.(*object)
	if !ok {
		return listen.Delete{}, badRequest(msgTimestampMissing, nil)
	}
	ts, ok := obj.get("listened_at")
	if !ok {
		return listen.Delete{}, badRequest(msgTimestampMissing, nil)
	}
	n, ok := pyInt(ts)
	if !ok {
		return listen.Delete{}, badRequest(pyStr(ts)+": Listen timestamp invalid.", nil)
	}
	hi := now.Add(listen.MaxFutureSkew).Unix()
	switch {
	case n.Cmp(big.NewInt(listen.MinPlayedAtUnix)) < 0:
		return listen.Delete{}, badRequest(fmt.Sprintf("%s: Listen timestamp invalid: this server holds no listen before %d (2002-01-01 00:00:00 UTC).",
			pyStr(ts), listen.MinPlayedAtUnix), nil)
	case n.Cmp(big.NewInt(hi)) > 0:
		return listen.Delete{}, badRequest(fmt.Sprintf("%s: Listen timestamp invalid: it is more than %d minutes ahead of this server's clock, and this server holds no such listen.",
			pyStr(ts), listen.MaxFutureSkew/time.Minute), nil)
	}
	raw, ok := obj.get("recording_msid")
	if !ok {
		return listen.Delete{}, badRequest(msgMSIDMissing, nil)
	}
	s, isString := raw.(string)
	msid, ok := ParseMSID(s)
	if !isString || !ok {
		return listen.Delete{}, badRequest(pyStr(raw)+": Recording MSID format invalid.", nil)
	}
	d := listen.Delete{UserID: user, PlayedAt: time.Unix(n.Int64(), 0).UTC(), MSID: msid}
	// The record as ingest will read it: nothing accepted here is
	// dead-lettered downstream.
	if _, err := listen.ParseDelete(d.Encode(), now); err != nil {
		return listen.Delete{}, badRequest("This server cannot delete this listen: "+err.Error(), nil)
	}
	return d, nil
}

// isJSONType is werkzeug's Request.is_json of a Content-Type header:
// application/json or application/*+json, parameters ignored.
func isJSONType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// pyStr is Python's str() of a decoded JSON value, as ListenBrainz's
// "%s" formats it into a message: a string as it is, None, True, False,
// an int's digits, a float's repr; arrays and objects as compact JSON
// (Python would print its repr, with single quotes).
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return v
	case json.Number:
		i, f := pyNumber(v)
		if i != nil {
			return i.String()
		}
		return pyFloatRepr(f)
	}
	b, err := json.Marshal(plainValue(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// pyFloatRepr is Python's repr() of a finite float: the shortest digits
// that read back, in fixed notation from 1e-4 to below 1e16 (with ".0"
// when integral), in exponent notation otherwise ("1e+16", "1.5e-07").
func pyFloatRepr(f float64) string {
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
