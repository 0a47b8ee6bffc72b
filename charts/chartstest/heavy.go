package chartstest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/views"
)

// HeavyView is a recovered view of one heavy user: 35 days up to Now's,
// 91 plays a day over 20k tracks (Zipf), for benchmarks.
type HeavyView struct{ days []views.Day }

// NewHeavyView makes the days.
func NewHeavyView() *HeavyView {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.05, 10, 19_999)
	v := &HeavyView{}
	today := charts.Midnight(Now)
	for d := 34; d >= 0; d-- {
		day := views.Day{Date: today.AddDate(0, 0, -d)}
		idx := map[uint64]int{}
		for range 91 {
			t := z.Uint64()
			key := t*2654435761 + 1
			if i, ok := idx[key]; ok {
				day.Tracks[i].Plays++
			} else {
				idx[key] = len(day.Tracks)
				day.Tracks = append(day.Tracks, topk.Item{Key: key, Name: fmt.Sprint("Track ", t), Artist: fmt.Sprint("Artist ", t%1500), Plays: 1})
			}
			day.Plays++
		}
		v.days = append(v.days, day)
	}
	return v
}

// Recovered implements charts.View.
func (v *HeavyView) Recovered() bool { return true }

// FirstDay implements charts.View.
func (v *HeavyView) FirstDay(now time.Time) time.Time { return charts.Midnight(now).AddDate(0, 0, -34) }

// Range implements charts.View.
func (v *HeavyView) Range(_ string, from, to time.Time) ([]views.Day, error) {
	var out []views.Day
	for _, d := range v.days {
		if !d.Date.Before(from) && !d.Date.After(to) {
			out = append(out, d)
		}
	}
	return out, nil
}
