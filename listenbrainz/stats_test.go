package listenbrainz

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/sitewide"
)

// keysOf is the sorted keys of a JSON object.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// The records of each entity list: ListenBrainz's sitewide records
// (listenbrainz_spark/stats/incremental/sitewide/*.py get_stats_query)
// for the sitewide stats, the same plus artist_mbids (artists) or
// artists (the others) for a user's stats, as the user stats endpoints
// have answered since issue 13. MBIDs and cover art are null.
func TestStatsRecords(t *testing.T) {
	sitewideKeys := map[string]string{
		"artists":        "artist_mbid artist_name listen_count",
		"recordings":     "artist_mbids artist_name caa_id caa_release_mbid listen_count recording_mbid release_mbid release_name track_name",
		"releases":       "artist_mbids artist_name caa_id caa_release_mbid listen_count release_mbid release_name",
		"release-groups": "artist_mbids artist_name caa_id caa_release_mbid listen_count release_group_mbid release_group_name",
	}
	userKeys := map[string]string{
		"artists":        "artist_mbid artist_mbids artist_name listen_count",
		"recordings":     "artist_mbids artist_name artists caa_id caa_release_mbid listen_count recording_mbid release_mbid release_name track_name",
		"releases":       "artist_mbids artist_name artists caa_id caa_release_mbid listen_count release_mbid release_name",
		"release-groups": "artist_mbids artist_name artists caa_id caa_release_mbid listen_count release_group_mbid release_group_name",
	}
	now := time.Date(2026, 3, 11, 15, 0, 0, 0, time.UTC)
	p, err := StatsPeriod("month", now)
	if err != nil {
		t.Fatal(err)
	}
	for path, kind := range StatsEntities {
		sw := &sitewide.Answer{Range: charts.RangeJSON{Name: "custom", From: "2026-02-01", To: "2026-02-28"}, AsOf: now, Total: 7,
			Items: []sitewide.Item{{Rank: 3, Name: "N", Artist: "A", Plays: 5, Listeners: 2}}}
		pl := SitewideStats(kind, "month", p, 2, 1000, sw)
		items := pl[kind.ListKey].([]map[string]any)
		if got := strings.Join(keysOf(t, items[0]), " "); got != sitewideKeys[path] {
			t.Errorf("sitewide %s record: %s, want %s", path, got, sitewideKeys[path])
		}
		nameKey := map[string]string{"artists": "artist_name", "recordings": "track_name", "releases": "release_name", "release-groups": "release_group_name"}[path]
		if items[0][nameKey] != "N" || items[0]["listen_count"] != int64(5) || (path != "artists" && items[0]["artist_name"] != "A") {
			t.Errorf("sitewide %s record: %v", path, items[0])
		}
		wantPayload := []string{"count", "from_ts", "last_updated", kind.ListKey, "offset", "range", "to_ts", kind.TotalKey}
		slices.Sort(wantPayload)
		if got := keysOf(t, pl); !slices.Equal(got, wantPayload) {
			t.Errorf("sitewide %s payload: %v, want %v", path, got, wantPayload)
		}
		// count is the page size asked for; the period's bounds; as_of.
		if pl["count"] != 1000 || pl["offset"] != 2 || pl[kind.TotalKey] != 7 || pl["range"] != "month" ||
			pl["from_ts"] != p.FromTS() || pl["to_ts"] != p.ToTS() || pl["last_updated"] != now.Unix() {
			t.Errorf("sitewide %s payload: %v", path, pl)
		}

		ua := &charts.TopAnswer{Range: sw.Range, AsOf: now, Total: 7, Items: []charts.TopItem{{Rank: 3, Name: "N", Artist: "A", Plays: 5}}}
		upl := EntityStats(kind, "alice", "month", p, 2, ua)
		uitems := upl[kind.ListKey].([]map[string]any)
		if got := strings.Join(keysOf(t, uitems[0]), " "); got != userKeys[path] {
			t.Errorf("user %s record: %s, want %s", path, got, userKeys[path])
		}
		if upl["count"] != 1 || upl["user_id"] != "alice" {
			t.Errorf("user %s payload: %v", path, upl)
		}
	}
	// all_time starts on the answer's first day.
	all, _ := StatsPeriod("all_time", now)
	pl := SitewideStats(StatsEntities["artists"], "all_time", all, 0, 25, &sitewide.Answer{Range: charts.RangeJSON{Name: "all", From: "2024-05-06", To: "2026-03-11"}})
	if want := time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC).Unix(); pl["from_ts"] != want || pl["to_ts"] != all.ToTS() {
		t.Errorf("all_time: from_ts %v to_ts %v, want %d %d", pl["from_ts"], pl["to_ts"], want, all.ToTS())
	}
}
