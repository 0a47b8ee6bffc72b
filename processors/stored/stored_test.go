package stored

import (
	"testing"
	"time"
)

// TestOld: a day counts as old from the day before yesterday (UTC: at
// 00:30 CET it is still the 30th).
func TestOld(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		day  string
		want bool
	}{{"2026-11-29", false}, {"2026-11-30", false}, {"2026-11-28", true}, {"2026-12-01", false}, {"2025-01-01", true}} {
		d, _ := time.Parse("2006-01-02", c.day)
		if Old(d, now) != c.want {
			t.Errorf("Old(%s) at %s = %v", c.day, now.UTC(), !c.want)
		}
	}
}

// TestPublishNothingRecent: a write of today and yesterday only sends no
// notice (and needs no Kafka).
func TestPublishNothingRecent(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p, err := NewPublisher(PublisherConfig{Brokers: []string{"127.0.0.1:1"}, Writer: "test", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	days := map[string][]time.Time{"alice": {now.Truncate(24 * time.Hour), now.Truncate(24*time.Hour).AddDate(0, 0, -1)}}
	if err := p.Publish(t.Context(), days); err != nil {
		t.Fatalf("a notice for recent days only: %v", err)
	}
	var nilP *Publisher
	if err := nilP.Publish(t.Context(), map[string][]time.Time{"bob": {time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
}
