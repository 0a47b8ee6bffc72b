package listenbrainz

import (
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/sitewide"
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
// ListenBrainz's shape: each item as in the sitewide stats (statsItem)
// plus what ListenBrainz's user stats add, artist_mbids (empty) to an
// artist and artists (null) to the others.
// last_updated is when the answer was computed (ans.AsOf): topk's stats
// are live.
func EntityStats(e StatsEntity, user, rangeName string, p Period, offset int, ans *charts.TopAnswer) map[string]any {
	items := make([]map[string]any, 0, len(ans.Items))
	for _, it := range ans.Items {
		m := statsItem(e, it.Name, it.Artist, it.Plays)
		if e.Entity == topk.Artists {
			m["artist_mbids"] = []string{}
		} else {
			m["artists"] = nil
		}
		items = append(items, m)
	}
	return map[string]any{
		"user_id":      user,
		e.ListKey:      items,
		"count":        len(items),
		e.TotalKey:     ans.Total,
		"offset":       offset,
		"range":        rangeName,
		"from_ts":      fromTS(rangeName, p, ans.Range.From),
		"to_ts":        p.ToTS(),
		"last_updated": ans.AsOf.Unix(),
	}
}

// SitewideStats is the payload of a sitewide stats answer
// (/1/stats/sitewide/{entity}): the page of ans (the sitewide query
// service's Top over the range's days, from offset) in ListenBrainz's
// shape (stats_api.py _get_sitewide_stats): no user_id, and count is the
// page size asked for (clamped at MaxItemsPerGet), not the items on the
// page, as ListenBrainz answers it. The items are ListenBrainz's sitewide
// records (statsItem); listeners, which ListenBrainz does not give, are
// left out. last_updated is ans.AsOf.
func SitewideStats(e StatsEntity, rangeName string, p Period, offset, count int, ans *sitewide.Answer) map[string]any {
	items := make([]map[string]any, 0, len(ans.Items))
	for _, it := range ans.Items {
		items = append(items, statsItem(e, it.Name, it.Artist, it.Plays))
	}
	return map[string]any{
		e.ListKey:      items,
		"count":        count,
		e.TotalKey:     ans.Total,
		"offset":       offset,
		"range":        rangeName,
		"from_ts":      fromTS(rangeName, p, ans.Range.From),
		"to_ts":        p.ToTS(),
		"last_updated": ans.AsOf.Unix(),
	}
}

// statsItem is one item of a stats list with the fields of
// ListenBrainz's sitewide records (listenbrainz_spark's sitewide entity
// queries): artist_name, artist_mbid and listen_count for an artist;
// track_name, recording_mbid, artist_name, artist_mbids, release_name,
// release_mbid, caa_id, caa_release_mbid for a recording; the
// release's or release group's name and MBID, artist_name, artist_mbids,
// caa_id, caa_release_mbid for the others. MBIDs and cover art are null
// and artist_mbids empty (topk keys items by name), and so is a
// recording's release_name (a topk track has no one album).
func statsItem(e StatsEntity, name, artist string, plays int64) map[string]any {
	switch e.Entity {
	case topk.Artists:
		return map[string]any{"artist_name": name, "artist_mbid": nil, "listen_count": plays}
	case topk.Tracks:
		return map[string]any{"track_name": name, "artist_name": artist, "artist_mbids": []string{}, "recording_mbid": nil,
			"release_name": nil, "release_mbid": nil, "caa_id": nil, "caa_release_mbid": nil, "listen_count": plays}
	}
	nameKey, mbidKey := "release_name", "release_mbid"
	if e.ListKey == "release_groups" {
		nameKey, mbidKey = "release_group_name", "release_group_mbid"
	}
	return map[string]any{nameKey: name, mbidKey: nil, "artist_name": artist, "artist_mbids": []string{},
		"caa_id": nil, "caa_release_mbid": nil, "listen_count": plays}
}

// fromTS is a stats payload's from_ts: the period's first midnight, or
// for all_time the answer's first day (first, YYYY-MM-DD: the first day
// with listens).
func fromTS(rangeName string, p Period, first string) int64 {
	if rangeName == "all_time" {
		if d, ok := charts.ParseDay(first); ok {
			return d.Unix()
		}
	}
	return p.FromTS()
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
