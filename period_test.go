package topk

import (
	"testing"
	"time"
)

func TestPeriods(t *testing.T) {
	d := time.Date(2024, 2, 17, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		p          Period
		start, end string
		name       string
	}{
		{DayPeriod(d), "2024-02-17", "2024-02-17", "2024-02-17"},
		{MonthPeriod(d), "2024-02-01", "2024-02-29", "2024-02"},
		{YearPeriod(d), "2024-01-01", "2024-12-31", "2024"},
	} {
		if got := c.p.Start.Format("2006-01-02") + " " + c.p.End().Format("2006-01-02") + " " + c.p.String(); got != c.start+" "+c.end+" "+c.name {
			t.Errorf("%s, want %s %s %s", got, c.start, c.end, c.name)
		}
	}
}
