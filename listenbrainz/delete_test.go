package listenbrainz

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Every answer of POST /1/delete-listen's body check: ListenBrainz's
// messages (api.py delete_listen, Flask's request.json), Python's int()
// and uuid.UUID() on the values, topk's window of listened_at.
func TestParseDeleteListen(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const msid = "d23f4719-9212-49f0-ad08-ddbfbfc50d6f"
	at := now.Add(-time.Hour).Unix()
	for _, tc := range []struct {
		name, ctype, body string
		code              int
		msg               string
		at                int64 // 0: at
	}{
		{"plain", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, at, msid), 200, "", 0},
		{"charset", "application/json; charset=utf-8", fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, at, msid), 200, "", 0},
		{"+json", "application/vnd.x+json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, at, msid), 200, "", 0},
		{"string timestamp", "application/json", fmt.Sprintf(`{"listened_at": " %d ", "recording_msid": %q}`, at, msid), 200, "", 0},
		{"float truncated", "application/json", fmt.Sprintf(`{"listened_at": %d.9, "recording_msid": %q}`, at, msid), 200, "", 0},
		{"underscores", "application/json", fmt.Sprintf(`{"listened_at": "1_764_000_000", "recording_msid": %q}`, msid), 200, "", 1764000000},
		{"msid other forms", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": "urn:uuid:{D23F47199212-49F0-AD08-DDBFBFC50D6F}"}`, at), 200, "", 0},
		{"extra keys ignored", "application/json", fmt.Sprintf(`{"x": 1, "listened_at": %d, "recording_msid": %q}`, at, msid), 200, "", 0},

		{"no content type", "", `{}`, 415, msgNotJSON, 0},
		{"text/plain", "text/plain", `{}`, 415, msgNotJSON, 0},
		{"not json", "application/json", `{"listened_at": `, 400, msgBadRequest, 0},
		{"empty", "application/json", ``, 400, msgBadRequest, 0},
		{"array", "application/json", `[]`, 400, "Listen timestamp missing.", 0},
		{"missing timestamp", "application/json", fmt.Sprintf(`{"recording_msid": %q}`, msid), 400, "Listen timestamp missing.", 0},
		{"timestamp text", "application/json", fmt.Sprintf(`{"listened_at": "yesterday", "recording_msid": %q}`, msid), 400, "yesterday: Listen timestamp invalid.", 0},
		{"timestamp float text", "application/json", fmt.Sprintf(`{"listened_at": "1764000000.5", "recording_msid": %q}`, msid), 400, "1764000000.5: Listen timestamp invalid.", 0},
		{"timestamp null", "application/json", fmt.Sprintf(`{"listened_at": null, "recording_msid": %q}`, msid), 400, "None: Listen timestamp invalid.", 0},
		{"timestamp array", "application/json", fmt.Sprintf(`{"listened_at": [1, "a"], "recording_msid": %q}`, msid), 400, `[1,"a"]: Listen timestamp invalid.`, 0},
		{"timestamp too old", "application/json", fmt.Sprintf(`{"listened_at": 0, "recording_msid": %q}`, msid), 400,
			"0: Listen timestamp invalid: this server holds no listen before 1009843200 (2002-01-01 00:00:00 UTC).", 0},
		{"timestamp true", "application/json", fmt.Sprintf(`{"listened_at": true, "recording_msid": %q}`, msid), 400,
			"True: Listen timestamp invalid: this server holds no listen before 1009843200 (2002-01-01 00:00:00 UTC).", 0},
		{"timestamp ahead", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, now.Add(11*time.Minute).Unix(), msid), 400,
			fmt.Sprintf("%d: Listen timestamp invalid: it is more than 10 minutes ahead of this server's clock, and this server holds no such listen.", now.Add(11*time.Minute).Unix()), 0},
		{"timestamp huge float", "application/json", fmt.Sprintf(`{"listened_at": 1e300, "recording_msid": %q}`, msid), 400,
			"1e+300: Listen timestamp invalid: it is more than 10 minutes ahead of this server's clock, and this server holds no such listen.", 0},
		{"missing msid", "application/json", fmt.Sprintf(`{"listened_at": %d}`, at), 400, "Recording MSID missing.", 0},
		{"msid text", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": "abc"}`, at), 400, "abc: Recording MSID format invalid.", 0},
		{"msid number", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": 5}`, at), 400, "5: Recording MSID format invalid.", 0},
		{"msid null", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": null}`, at), 400, "None: Recording MSID format invalid.", 0},
		{"msid empty", "application/json", fmt.Sprintf(`{"listened_at": %d, "recording_msid": ""}`, at), 400, ": Recording MSID format invalid.", 0},
	} {
		d, err := ParseDeleteListen("alice", tc.ctype, []byte(tc.body), now)
		if tc.code == 200 {
			want := tc.at
			if want == 0 {
				want = at
			}
			if err != nil {
				t.Errorf("%s: %d %s", tc.name, err.Code, err.Message)
			} else if d.UserID != "alice" || d.PlayedAt.Unix() != want || d.MSID != msid {
				t.Errorf("%s: %+v, want alice at %d msid %s", tc.name, d, want, msid)
			}
			continue
		}
		if err == nil || err.Code != tc.code || err.Message != tc.msg {
			t.Errorf("%s: %v, want %d %q", tc.name, err, tc.code, tc.msg)
		}
	}
	big := fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q, "pad": "%0*d"}`, at, msid, MaxDeleteBytes, 0)
	if _, err := ParseDeleteListen("alice", "application/json", []byte(big), now); err == nil || err.Code != 400 {
		t.Errorf("a body over %d bytes: %v", MaxDeleteBytes, err)
	}
}

func TestPyStr(t *testing.T) {
	for v, want := range map[string]string{"1": "1", "-0": "0", "1.5": "1.5", "1000.0": "1000.0", "1e3": "1000.0",
		"1e16": "1e+16", "1.5e-7": "1.5e-07", "0.0001": "0.0001", "18446744073709551616": "1.8446744073709552e+19"} {
		if got := pyStr(json.Number(v)); got != want {
			t.Errorf("str(%s) = %q, want %q", v, got, want)
		}
	}
}
