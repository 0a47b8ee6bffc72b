package charts

import (
	"context"
	"strconv"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// TopQuery asks for a page of a user's chart of one entity over a range.
type TopQuery struct {
	User   string
	Entity topk.Entity
	Range  Range
	// K is the page size (1–MaxK); Offset the items skipped (0–MaxOffset).
	K, Offset int
}

// RangeJSON is the resolved range of an answer.
type RangeJSON struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// TopAnswer is the Top-K answer of DESIGN.md.
type TopAnswer struct {
	User string `json:"user"`
	// Entity is the chart's name in paths: tracks, artists, albums.
	Entity string    `json:"entity"`
	Range  RangeJSON `json:"range"`
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	Freshness
	Total int       `json:"total"`
	Items []TopItem `json:"items"`
}

// TopItem is one ranked item; IDs holds the 64-bit keys as 16 hex digits
// (JSON numbers lose precision past 2^53): the entity's own and, for
// tracks and albums, their artist's.
type TopItem struct {
	Rank   int               `json:"rank"`
	Name   string            `json:"name"`
	Artist string            `json:"artist,omitempty"`
	Plays  int64             `json:"plays"`
	IDs    map[string]string `json:"ids"`
}

// Validate checks the query's parameters, in the order the api reads
// them.
func (q *TopQuery) Validate() error {
	if err := ValidUser(q.User); err != nil {
		return err
	}
	switch q.Entity {
	case topk.Tracks, topk.Artists, topk.Albums:
	default:
		return topk.NotFound("entity", "unknown chart entity "+strconv.Quote(string(q.Entity)))
	}
	if err := q.Range.Validate(); err != nil {
		return err
	}
	if err := bound("k", q.K, 1, MaxK); err != nil {
		return err
	}
	return bound("offset", q.Offset, 0, MaxOffset)
}

// Top is the items of q.Entity at [Offset, Offset+K) of the user's chart
// over the range: the view's days summed with the Cassandra part (whole
// years and months from the rollups, cached), named by the user's
// all-time majority spellings (names.go), in chart order (topk.Compare on
// those names). A user without listens is ErrNotFound; the store down
// when the range needs it, ErrUnavailable; the store down when only the
// names need it, the range's own majority spellings.
func (s *Service) Top(ctx context.Context, q TopQuery) (*TopAnswer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	now := s.Now()
	r, err := resolve(q.Range, now)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	sp, err := s.plan(ctx, q.User, &r, now)
	if err != nil {
		return nil, err
	}
	ans := &TopAnswer{User: q.User, Entity: string(q.Entity) + "s", Range: RangeJSON{r.Name, day(sp.from), day(sp.to)},
		Source: sp.source(), AsOf: now, Items: []TopItem{}}
	if r.All || !sp.any {
		ans.Range.From, ans.Range.To = day(r.From), day(r.To)
		if r.All {
			ans.Range.From = day(sp.first)
		}
	}
	names := s.allTime(q.User, sp)
	var older *tally
	if from, to, ok := sp.cass(); ok {
		t, periods, asOf, err := s.tally(ctx, q.User, q.Entity, from, to)
		if err != nil {
			return nil, withSource(s.storeError(err, "user", q.User), ans.Source)
		}
		older, ans.AsOf = t, asOf
		if r.All {
			names.reuse(t, periods)
		}
	} else if r.All {
		names.reuse(nil, nil)
	}
	var recent *accumulator
	if len(sp.viewDays) > 0 {
		recent = getAccumulator()
		defer recent.release()
		for i := range sp.viewDays {
			items := sp.viewDays[i].Items(q.Entity)
			for j := range items {
				recent.add(&items[j])
			}
		}
	}
	p := rank(older, recent, q.Offset, q.K)
	if p.total == 0 && !s.exists(ctx, q.User, sp) {
		return nil, withSource(noListens(q.User), ans.Source)
	}
	ans.Total = p.total
	if !names.name(ctx, q.Entity, p.items) {
		s.rangeNames.Inc()
	}
	withArtist := q.Entity != topk.Artists
	for i, it := range p.ordered() {
		ti := TopItem{Rank: q.Offset + i + 1, Name: it.Name, Plays: it.Plays, IDs: map[string]string{string(q.Entity): HexKey(it.Key)}}
		if withArtist {
			ti.Artist = it.Artist
			ti.IDs["artist"] = HexKey(listen.ArtistKey(it.Artist))
		}
		ans.Items = append(ans.Items, ti)
	}
	ans.Freshness = s.freshness(ans.Source)
	return ans, nil
}

// HexKey renders a 64-bit item key as 16 hex digits.
func HexKey(k uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[k&0xf]
		k >>= 4
	}
	return string(b[:])
}
