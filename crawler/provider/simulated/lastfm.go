package simulated

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// LastfmHandler serves the population as Last.fm's user.getRecentTracks
// (JSON, numbers as strings, newest first, pages of `limit`, a now-playing
// item on page 1), so the real Last.fm client can crawl it: the load source
// of `make bench-crawl`. now fixes the population's clock (nil: time.Now).
func LastfmHandler(p *Population, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "application/json")
		user := q.Get("user")
		if q.Get("method") != "user.getrecenttracks" || user == "" {
			_ = json.NewEncoder(w).Encode(map[string]any{"error": 6, "message": "Invalid parameters"})
			return
		}
		n := now()
		from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
		to, err := strconv.ParseInt(q.Get("to"), 10, 64)
		if err != nil {
			to = n.Unix()
		}
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit <= 0 || limit > 200 {
			limit = 50
		}
		page, err := strconv.Atoi(q.Get("page"))
		if err != nil || page < 1 {
			page = 1
		}
		plays := p.Plays(user, time.Unix(from, 0), time.Unix(to, 0), n)
		total := len(plays)
		pages := (total + limit - 1) / limit
		items := make([]map[string]any, 0, limit+1)
		if page == 1 {
			items = append(items, map[string]any{
				"artist": map[string]string{"mbid": "", "#text": "Now Playing Artist"}, "name": "Now Playing Track",
				"album": map[string]string{"mbid": "", "#text": ""}, "@attr": map[string]string{"nowplaying": "true"},
				"streamable": "0", "mbid": "", "url": "",
			})
		}
		// Newest first: page 1 holds the newest `limit` plays.
		for i := total - 1 - (page-1)*limit; i >= 0 && i > total-1-page*limit; i-- {
			pl := plays[i]
			items = append(items, map[string]any{
				"artist":     map[string]string{"mbid": pl.ArtistID, "#text": pl.Artist},
				"album":      map[string]string{"mbid": pl.AlbumID, "#text": pl.Album},
				"name":       pl.Track,
				"mbid":       pl.TrackID,
				"streamable": "0",
				"url":        "",
				"date":       map[string]string{"uts": strconv.FormatInt(pl.PlayedAt.Unix(), 10), "#text": pl.PlayedAt.Format("02 Jan 2006, 15:04")},
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"recenttracks": map[string]any{
			"track": items,
			"@attr": map[string]string{"user": user, "page": strconv.Itoa(page), "perPage": strconv.Itoa(limit),
				"totalPages": strconv.Itoa(pages), "total": strconv.Itoa(total)},
		}})
	})
}
