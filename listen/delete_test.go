package listen

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDeleteRecord: Encode and ParseDelete agree; IsDelete tells a delete
// record from a listen; every malformed record is an *InvalidError naming
// what is wrong; a listen parser refuses a delete record.
func TestDeleteRecord(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	msid := MSID("Radiohead", "Creep")
	d := Delete{UserID: "alice", PlayedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), MSID: msid}
	raw := d.Encode()
	if !IsDelete(raw) {
		t.Fatalf("IsDelete(%s) false", raw)
	}
	got, err := ParseDelete(raw, now)
	if err != nil || got != d || got.Key() != "alice|2026-12-01" {
		t.Fatalf("ParseDelete(%s) = %+v, %v", raw, got, err)
	}
	if _, err := Parse(raw, now); err == nil {
		t.Error("a delete record parses as a listen")
	}
	if v, err := (Codec{}).Decode(raw); err != nil || v.(Delete) != d {
		t.Errorf("Codec.Decode: %v, %v", v, err)
	}
	unix, err := ParseDelete([]byte(`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"`+msid+`"}}`), now)
	if err != nil || !unix.PlayedAt.Equal(d.PlayedAt) {
		t.Errorf("Unix seconds: %+v %v", unix, err)
	}
	if IsDelete([]byte(`{"user_id":"alice","delete":1}`)) || IsDelete([]byte(`[]`)) || IsDelete(nil) {
		t.Error("IsDelete of a record whose first member is not delete")
	}
	for _, c := range []struct{ raw, field string }{
		{`{"delete":{"user_id":"alice","recording_msid":"` + msid + `"}}`, FieldPlayedAt},
		{`{"delete":{"played_at":1796119200,"recording_msid":"` + msid + `"}}`, FieldUserID},
		{`{"delete":{"user_id":"alice","played_at":1796119200}}`, FieldRecordingMSID},
		{`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"` + strings.ToUpper(msid) + `"}}`, FieldRecordingMSID},
		{`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"not-a-uuid"}}`, FieldRecordingMSID},
		{`{"delete":{"user_id":"alice","played_at":1864583200,"recording_msid":"` + msid + `"}}`, FieldPlayedAt},
		{`{"delete":{"user_id":"al|ice","played_at":1796119200,"recording_msid":"` + msid + `"}}`, FieldUserID},
		{`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"` + msid + `","x":1}}`, FieldDelete},
		{`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"` + msid + `"},"user_id":"bob"}`, FieldDelete},
		{`{"delete":null}`, FieldDelete},
		{`{"delete":{"user_id":"alice","played_at":1796119200,"recording_msid":"` + msid + `"}} {}`, ""},
	} {
		_, err := ParseDelete([]byte(c.raw), now)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: %v, want an InvalidError of field %q", c.raw, err, c.field)
		}
	}
}
