package listenbrainz

import (
	"testing"
	"time"

	"github.com/topk-charts/topk/listen"
)

// Map is the mapping of Listen: for a listen the contract accepts, the
// same Listen.
func TestMapIsListensMapping(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"listen_type":"import","payload":[` +
		`{"listened_at":1690000000,"track_metadata":{"artist_name":" Radiohead ","track_name":"Reckoner","release_name":"In Rainbows",` +
		`"additional_info":{"duration":290,"recording_mbid":"5B11F4CE-A62D-471E-81FC-A69A8278C7DA","artist_mbids":["a74b1b7f-71a5-4011-9441-d0b5e4122711"],"release_mbid":"b8d4c2a6-9c6e-4c8e-9f3b-0c7b2d1e5f40"}}},` +
		`{"listened_at":1690000300,"track_metadata":{"artist_name":"Low","track_name":"Words"}}]}`)
	sub, lbErr := ParseSubmission(body, now)
	if lbErr != nil {
		t.Fatal(lbErr)
	}
	for _, s := range sub.Listens {
		want, lbErr := s.Listen("alice", listen.Limits{}, now)
		if lbErr != nil {
			t.Fatal(lbErr)
		}
		if got := s.Map("alice"); got != want {
			t.Errorf("Map %+v\nListen %+v", got, want)
		}
	}
	if got := sub.Listens[0].Map("alice"); got.DurationMS != 290000 || got.TrackID != "5b11f4ce-a62d-471e-81fc-a69a8278c7da" || got.Source != Source {
		t.Errorf("Map %+v", got)
	}
}
