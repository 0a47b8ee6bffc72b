package listenbrainz

import (
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// ListenBrainz's bounds of GET pages (api_tools.py DEFAULT_ITEMS_PER_GET,
// MAX_ITEMS_PER_GET): a larger count is clamped, not refused.
const (
	DefaultItemsPerGet = 25
	MaxItemsPerGet     = 1000
)

// StatsEntity is one of the stats endpoints' entities: the topk chart it
// answers from and the payload's keys.
type StatsEntity struct {
	// Entity is the chart.
	Entity topk.Entity
	// ListKey and TotalKey are the payload's keys of the list and of its
	// length before paging.
	ListKey, TotalKey string
}

// StatsEntities are the stats endpoints by path segment. topk's albums
// are (artist, album name) pairs, normalized: editions of one album with
// the same name are one item, which is what ListenBrainz calls a release
// group; topk has no edition-level data, so /releases and
// /release-groups answer the same items (a release's name is its
// group's).
var StatsEntities = map[string]StatsEntity{
	"artists":        {topk.Artists, "artists", "total_artist_count"},
	"recordings":     {topk.Tracks, "recordings", "total_recording_count"},
	"releases":       {topk.Albums, "releases", "total_release_count"},
	"release-groups": {topk.Albums, "release_groups", "total_release_group_count"},
}

// EntityStats is the payload of a stats answer: the page of ans (the
// charts service's Top over the range's days, from offset) in
// ListenBrainz's shape.
// MBIDs are null and artist_mbids empty: topk keys items by name.
// last_updated is when the answer was computed (ans.AsOf): topk's stats
// are live.
func EntityStats(e StatsEntity, user, rangeName string, p Period, offset int, ans *charts.TopAnswer) map[string]any {
	items := make([]map[string]any, 0, len(ans.Items))
	for _, it := range ans.Items {
		var m map[string]any
		switch e.Entity {
		case topk.Artists:
			m = map[string]any{"artist_name": it.Name, "artist_mbid": nil, "artist_mbids": []string{}, "listen_count": it.Plays}
		case topk.Tracks:
			m = map[string]any{"track_name": it.Name, "artist_name": it.Artist, "artist_mbids": []string{}, "recording_mbid": nil,
				"release_name": nil, "release_mbid": nil, "caa_id": nil, "caa_release_mbid": nil, "artists": nil, "listen_count": it.Plays}
		default:
			name := "release_name"
			mbid := "release_mbid"
			if e.ListKey == "release_groups" {
				name, mbid = "release_group_name", "release_group_mbid"
			}
			m = map[string]any{name: it.Name, mbid: nil, "artist_name": it.Artist, "artist_mbids": []string{},
				"caa_id": nil, "caa_release_mbid": nil, "artists": nil, "listen_count": it.Plays}
		}
		items = append(items, m)
	}
	from, to := p.FromTS(), p.ToTS()
	if rangeName == "all_time" {
		if d, ok := charts.ParseDay(ans.Range.From); ok {
			from = d.Unix()
		}
	}
	return map[string]any{
		"user_id":      user,
		e.ListKey:      items,
		"count":        len(items),
		e.TotalKey:     ans.Total,
		"offset":       offset,
		"range":        rangeName,
		"from_ts":      from,
		"to_ts":        to,
		"last_updated": ans.AsOf.Unix(),
	}
}

// ActivityRow is one bucket of a listening-activity answer.
type ActivityRow struct {
	FromTS      int64  `json:"from_ts"`
	ToTS        int64  `json:"to_ts"`
	TimeRange   string `json:"time_range"`
	ListenCount int64  `json:"listen_count"`
}

// Activity is the payload of a listening-activity answer: every bucket
// (empty ones included, as ListenBrainz has them) with the plays of its
// days in ans (the charts service's activity over the period).
func Activity(user, rangeName string, p Period, buckets []Bucket, ans *charts.ActivityAnswer) map[string]any {
	rows := make([]ActivityRow, len(buckets))
	for i, b := range buckets {
		rows[i] = ActivityRow{FromTS: b.FromTS(), ToTS: b.ToTS(), TimeRange: b.Label}
	}
	for _, d := range ans.Days {
		day, ok := charts.ParseDay(d.Day)
		if !ok {
			continue
		}
		if i := bucketOf(buckets, day); i >= 0 {
			rows[i].ListenCount += d.Plays
		}
	}
	return map[string]any{
		"user_id":            user,
		"listening_activity": rows,
		"from_ts":            p.FromTS(),
		"to_ts":              p.ToTS(),
		"range":              rangeName,
		"last_updated":       ans.AsOf.Unix(),
	}
}

// bucketOf is the index of the bucket holding day, or -1 (buckets are
// ascending and contiguous).
func bucketOf(buckets []Bucket, day time.Time) int {
	lo, hi := 0, len(buckets)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case day.Before(buckets[m].From):
			hi = m
		case !day.Before(buckets[m].To):
			lo = m + 1
		default:
			return m
		}
	}
	return -1
}
