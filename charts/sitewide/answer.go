package sitewide

import (
	"strconv"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// Query asks for a page of the sitewide chart of one entity over a range.
type Query struct {
	Entity topk.Entity
	Range  charts.Range
	// K is the page size (1–charts.MaxK); Offset the items skipped
	// (0–charts.MaxOffset).
	K, Offset int
}

// Validate checks the query's parameters, in the order the api reads
// them: the entity (unknown: topk.ErrNotFound), the range, k, offset
// (topk.ErrInvalid naming the parameter).
func (q *Query) Validate() error {
	switch q.Entity {
	case topk.Tracks, topk.Artists, topk.Albums:
	default:
		return topk.NotFound("entity", "unknown chart entity "+strconv.Quote(string(q.Entity)))
	}
	if err := q.Range.Validate(); err != nil {
		return err
	}
	if q.K < 1 || q.K > charts.MaxK {
		return topk.Invalid("k", "k must be between 1 and "+strconv.Itoa(charts.MaxK))
	}
	if q.Offset < 0 || q.Offset > charts.MaxOffset {
		return topk.Invalid("offset", "offset must be between 0 and "+strconv.Itoa(charts.MaxOffset))
	}
	return nil
}

// Answer is a page of the sitewide chart: the per-user TopAnswer's shape
// without the user, each item with its distinct listeners beside its
// plays.
type Answer struct {
	// Entity is the chart's name in paths: tracks, artists, albums.
	Entity string           `json:"entity"`
	Range  charts.RangeJSON `json:"range"`
	// Source: view (every day of the range in the view), cassandra (none),
	// mixed.
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	charts.Freshness
	// ListenersExact: each item's Listeners is the number of distinct
	// users who played it in the range. False when the range reads
	// Cassandra: Listeners is then the sum over the range's days of each
	// day's distinct listeners (a user counts once per day played), an
	// upper bound.
	ListenersExact bool `json:"listeners_exact"`
	// Total is the number of items with plays in the range.
	Total int    `json:"total"`
	Items []Item `json:"items"`
}

// Item is one ranked item of the sitewide chart; IDs as in
// charts.TopItem.
type Item struct {
	Rank      int               `json:"rank"`
	Name      string            `json:"name"`
	Artist    string            `json:"artist,omitempty"`
	Plays     int64             `json:"plays"`
	Listeners int64             `json:"listeners"`
	IDs       map[string]string `json:"ids"`
}
