// The api's answers against the independent count: each range polled
// until it first answers exactly.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// rangeSpec is one range the benchmark asks for.
type rangeSpec struct {
	label string
	query url.Values
	// days is the range's first and last day (days since 1970-01-01)
	// when the api's today is today.
	days func(today int64) (from, to int64)
}

// ranges are today, 7d, this_year, each past year of the history (as
// from/to) and all.
func ranges(h *history) []rangeSpec {
	first := day(h.listens[0].sec)
	named := func(name string, days func(today int64) (int64, int64)) rangeSpec {
		return rangeSpec{label: name, query: url.Values{"range": {name}}, days: days}
	}
	jan1 := func(d int64) int64 {
		y := time.Unix(d*86400, 0).UTC().Year()
		return day(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	}
	specs := []rangeSpec{
		named("today", func(t int64) (int64, int64) { return t, t }),
		named("7d", func(t int64) (int64, int64) { return t - 6, t }),
		named("this_year", func(t int64) (int64, int64) { return jan1(t), t }),
	}
	thisYear := h.cfg.Now.UTC().Year()
	for y := time.Unix(h.listens[0].sec, 0).UTC().Year(); y < thisYear; y++ {
		from := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		to := time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)
		f, t := day(from.Unix()), day(to.Unix())
		specs = append(specs, rangeSpec{label: strconv.Itoa(y),
			query: url.Values{"from": {from.Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}},
			days:  func(int64) (int64, int64) { return f, t }})
	}
	return append(specs, named("all", func(t int64) (int64, int64) { return first, t }))
}

// rangeState is what the poller learned of one range.
type rangeState struct {
	spec    rangeSpec
	exact   bool
	at      time.Duration // from the start of the import to the end of the first exact check
	took    time.Duration // how long that check took (its requests, one after the other)
	sources string        // activity / tracks / artists / albums
	want    *rangeCount
	from    string
	to      string
	checks  int
	why     string // what differed at the last check that did not match
}

// poller reads the api for every range until each has answered exactly.
type poller struct {
	base   string // http://host:port
	user   string
	client *http.Client
	h      *history
	every  time.Duration

	requests atomic.Int64
	mu       sync.Mutex
	states   []*rangeState
	counts   map[[2]int64]*rangeCount
}

func newPoller(base, user string, h *history, every time.Duration) *poller {
	p := &poller{base: base, user: user, h: h, every: every,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}},
		counts: map[[2]int64]*rangeCount{}}
	for _, s := range ranges(h) {
		p.states = append(p.states, &rangeState{spec: s})
	}
	return p
}

// run polls every range not yet exact, one request at a time, a round
// every p.every, until all are exact or ctx ends. start is the start of
// the import.
func (p *poller) run(ctx context.Context, start time.Time) {
	for {
		round := time.Now()
		pending := 0
		for _, st := range p.snapshot() {
			if st.exact {
				continue
			}
			t := time.Now()
			ok, why, sources, want, from, to := p.check(ctx, st.spec)
			at := time.Since(start)
			p.mu.Lock()
			st.checks++
			st.why, st.want, st.from, st.to = why, want, from, to
			if ok {
				st.exact, st.at, st.took, st.sources = true, at, time.Since(t), sources
			} else {
				pending++
			}
			p.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(round.Add(p.every))):
		}
	}
}

func (p *poller) snapshot() []*rangeState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*rangeState(nil), p.states...)
}

// exactCount is how many ranges have answered exactly.
func (p *poller) exactCount() (exact, all int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.states {
		if st.exact {
			exact++
		}
	}
	return exact, len(p.states)
}

// The answers' parts the benchmark reads (api/openapi.yaml: Activity, Top).
type rangeJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type activityAnswer struct {
	Range  rangeJSON `json:"range"`
	Source string    `json:"source"`
	Plays  int64     `json:"plays"`
	Days   []struct {
		Day   string `json:"day"`
		Plays int64  `json:"plays"`
	} `json:"days"`
}

type topAnswer struct {
	Range  rangeJSON `json:"range"`
	Source string    `json:"source"`
	Total  int       `json:"total"`
	Items  []struct {
		Rank   int    `json:"rank"`
		Name   string `json:"name"`
		Artist string `json:"artist"`
		Plays  int64  `json:"plays"`
	} `json:"items"`
}

// errNotYet: the user has no counted listen yet (a 404).
var errNotYet = fmt.Errorf("user not found yet")

func (p *poller) get(ctx context.Context, path string, q url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	p.requests.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return json.Unmarshal(b, v)
	case http.StatusNotFound:
		return errNotYet
	default:
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
}

// expected is the independent count of the days from..to, computed once.
func (p *poller) expected(from, to int64) *rangeCount {
	k := [2]int64{from, to}
	p.mu.Lock()
	c := p.counts[k]
	p.mu.Unlock()
	if c == nil {
		c = p.h.count(from, to)
		p.mu.Lock()
		p.counts[k] = c
		p.mu.Unlock()
	}
	return c
}

func dayString(d int64) string { return time.Unix(d*86400, 0).UTC().Format(time.DateOnly) }

// check asks the api for the range's activity (plays in total and per
// day: a cheap first test) and, when that matches, for the full top
// lists of tracks, artists and albums (every page), and compares each
// with the independent count. ok: every answer was exact.
func (p *poller) check(ctx context.Context, s rangeSpec) (ok bool, why, sources string, want *rangeCount, from, to string) {
	var act activityAnswer
	if err := p.get(ctx, "/v1/users/"+url.PathEscape(p.user)+"/activity", s.query, &act); err != nil {
		return false, err.Error(), "", nil, "", ""
	}
	today, err := time.Parse(time.DateOnly, act.Range.To)
	if err != nil {
		return false, "activity: range.to " + act.Range.To, "", nil, "", ""
	}
	f, t := s.days(day(today.Unix()))
	want = p.expected(f, t)
	from, to = dayString(f), dayString(t)
	if act.Range.From != from || act.Range.To != to {
		return false, fmt.Sprintf("activity range %s..%s, want %s..%s", act.Range.From, act.Range.To, from, to), "", want, from, to
	}
	if act.Plays != want.plays {
		return false, fmt.Sprintf("activity plays %d of %d", act.Plays, want.plays), "", want, from, to
	}
	days := 0
	for _, d := range act.Days {
		if d.Plays == 0 {
			continue
		}
		days++
		if want.days[d.Day] != d.Plays {
			return false, fmt.Sprintf("activity %s: %d plays, want %d", d.Day, d.Plays, want.days[d.Day]), "", want, from, to
		}
	}
	if days != len(want.days) {
		return false, fmt.Sprintf("activity: %d days with plays, want %d", days, len(want.days)), "", want, from, to
	}
	sources = act.Source
	for _, e := range []struct {
		entity string
		want   map[itemKey]int64
	}{{"tracks", want.tracks}, {"artists", want.artists}, {"albums", want.albums}} {
		src, why := p.checkTop(ctx, s, e.entity, e.want)
		if why != "" {
			return false, e.entity + ": " + why, "", want, from, to
		}
		sources += "/" + src
	}
	return true, "", sources, want, from, to
}

// pageK is the largest page the api serves (charts.MaxK).
const pageK = 1000

// checkTop reads every page of a top list and compares it with want.
func (p *poller) checkTop(ctx context.Context, s rangeSpec, entity string, want map[itemKey]int64) (source, why string) {
	got := make(map[itemKey]int64, len(want))
	q := url.Values{}
	for k, v := range s.query {
		q[k] = v
	}
	q.Set("k", strconv.Itoa(pageK))
	prev := int64(-1)
	for offset := 0; ; offset += pageK {
		q.Set("offset", strconv.Itoa(offset))
		var top topAnswer
		if err := p.get(ctx, "/v1/users/"+url.PathEscape(p.user)+"/top/"+entity, q, &top); err != nil {
			return "", err.Error()
		}
		if offset == 0 {
			source = top.Source
			if top.Total != len(want) {
				return "", fmt.Sprintf("total %d items, want %d", top.Total, len(want))
			}
		}
		for i, it := range top.Items {
			if it.Rank != offset+i+1 {
				return "", fmt.Sprintf("rank %d at position %d", it.Rank, offset+i+1)
			}
			if prev >= 0 && it.Plays > prev {
				return "", fmt.Sprintf("rank %d has %d plays, more than the rank before (%d)", it.Rank, it.Plays, prev)
			}
			prev = it.Plays
			k := itemKey{artist: it.Artist, name: it.Name}
			if entity == "artists" {
				k = itemKey{name: it.Name}
			}
			if _, dup := got[k]; dup {
				return "", fmt.Sprintf("%q by %q twice", it.Name, it.Artist)
			}
			if want[k] != it.Plays {
				return "", fmt.Sprintf("%q by %q: %d plays, want %d", it.Name, it.Artist, it.Plays, want[k])
			}
			got[k] = it.Plays
		}
		if len(top.Items) < pageK || offset+pageK >= top.Total {
			break
		}
	}
	if len(got) != len(want) {
		return "", fmt.Sprintf("%d items listed, want %d", len(got), len(want))
	}
	return source, ""
}
