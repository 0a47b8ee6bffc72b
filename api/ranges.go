package api

import (
	"net/url"
	"strconv"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// parseRange reads range, or from and to, of a query. Neither: the
// default range. Both kinds: invalid, naming range. The service resolves
// the range at its clock.
func parseRange(q url.Values) (charts.Range, error) {
	name, hasName := q["range"]
	_, hasFrom := q["from"]
	_, hasTo := q["to"]
	switch {
	case hasName && (hasFrom || hasTo):
		return charts.Range{}, topk.Invalid("range", "give either range or from/to, not both")
	case hasFrom || hasTo:
		return parseFromTo(q)
	}
	r := charts.Named(charts.DefaultRange)
	if hasName {
		r = charts.Named(name[0])
	}
	return r, r.Validate()
}

// parseFromTo reads a custom range: both dates required, from ≤ to.
func parseFromTo(q url.Values) (charts.Range, error) {
	var days [2]time.Time
	for i, p := range []string{"from", "to"} {
		if _, ok := q[p]; !ok {
			return charts.Range{}, topk.Invalid(p, p+" is missing: give both from and to (YYYY-MM-DD, inclusive)")
		}
		d, err := dayParam(q.Get(p), p)
		if err != nil {
			return charts.Range{}, err
		}
		days[i] = d
	}
	r := charts.Custom(days[0], days[1])
	return r, r.Validate()
}

func dayParam(v, name string) (time.Time, error) {
	d, ok := charts.ParseDay(v)
	if !ok {
		return time.Time{}, topk.Invalid(name, name+" must be a date YYYY-MM-DD")
	}
	return d, nil
}

// intParam reads an integer query parameter within [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lo || n > hi {
		return 0, charts.BoundError(name, lo, hi)
	}
	return n, nil
}
