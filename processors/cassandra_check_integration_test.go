//go:build integration

package processors_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/store/cassandra"
)

// keyspace migrates the test's keyspace and opens a session on it.
func (s *stack) keyspace(t *testing.T) *gocql.Session {
	testenv.Keyspace(t, s.cfg)
	session, err := cassandra.Connect(t.Context(), wiring.Cassandra(s.cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	return session
}

// waitSinks waits until the raw writer and the flusher committed everything.
func (s *stack) waitSinks(t *testing.T, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, gt := range [][2]string{
		{rawwriter.Group(s.cfg.Namespace), string(s.topics.Valid)},
		{flusher.Group(s.cfg.Namespace), string(aggregator.Table(s.cfg.Namespace))},
	} {
		if err := kafka.WaitCaughtUp(ctx, s.client, s.admin, gt[0], gt[1], nil); err != nil {
			t.Fatal(err)
		}
	}
}

type itemKey struct {
	user   string
	period string // day 2006-01-02, month 200601, year 2006
	entity string
	item   int64
}

// checkCassandra compares every Cassandra table with the independent count:
// raw listens, day values, plays per day, month and year rollups. The
// raw_listens rows of the user-day keys in ignoreRaw are not compared (the
// raw writer keeps every valid listen, also those the aggregator
// dead-letters).
func (s *stack) checkCassandra(t *testing.T, session *gocql.Session, want *expected, ignoreRaw ...string) {
	ctx := context.Background()
	// Raw listens: one row per distinct identity of each user-day.
	raw := map[string]int{}
	it := session.Query(`SELECT user_id, day FROM raw_listens`).WithContext(ctx).PageSize(5000).Iter()
	var user string
	var day time.Time
	for it.Scan(&user, &day) {
		raw[user+"|"+day.Format("2006-01-02")]++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	wantDays := map[itemKey]uint32{}
	wantTotals := map[string]int{}
	for k, ids := range want.seen {
		u, d, _ := listen.SplitKey(k)
		if len(ids) == 0 {
			continue // every listen deleted: no rows, or rows of 0 plays
		}
		wantTotals[k] = len(ids)
		for e, items := range want.items[k] {
			for item, plays := range items {
				for _, period := range []string{d.Format("2006-01-02"), d.Format("200601"), d.Format("2006")} {
					wantDays[itemKey{u, period, string(e), int64(item)}] += plays
				}
			}
		}
	}
	diff := func(what string, got, want map[string]int) {
		t.Helper()
		bad := 0
		for k, w := range want {
			if got[k] != w {
				bad++
				if bad <= 5 {
					t.Errorf("%s %s: %d, want %d", what, k, got[k], w)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d keys, want %d", what, len(got), len(want))
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d differ", what, bad, len(want))
		}
	}
	rawWant := wantTotals
	if len(ignoreRaw) > 0 {
		rawWant = maps.Clone(wantTotals)
		for _, k := range ignoreRaw {
			delete(raw, k)
			delete(rawWant, k)
		}
	}
	diff("raw_listens rows", raw, rawWant)

	days := map[string]int{}
	it = session.Query(`SELECT user_id, day, plays FROM user_days`).WithContext(ctx).PageSize(5000).Iter()
	var plays int64
	for it.Scan(&user, &day, &plays) {
		if plays > 0 { // deletions leave rows of 0 plays
			days[user+"|"+day.Format("2006-01-02")] = int(plays)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	diff("user_days plays", days, wantTotals)

	got := map[string]int{}
	wantItems := map[string]int{}
	for k, v := range wantDays {
		wantItems[fmt.Sprint(k)] = int(v)
	}
	var entity string
	var item int64
	it = session.Query(`SELECT user_id, day, entity, item, plays FROM day_items`).WithContext(ctx).PageSize(5000).Iter()
	for it.Scan(&user, &day, &entity, &item, &plays) {
		if plays > 0 { // deletions leave rows of 0 plays
			got[fmt.Sprint(itemKey{user, day.Format("2006-01-02"), entity, item})] = int(plays)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	var period int
	it = session.Query(`SELECT user_id, month, entity, item, plays FROM month_items`).WithContext(ctx).PageSize(5000).Iter()
	for it.Scan(&user, &period, &entity, &item, &plays) {
		if plays > 0 { // deletions leave rows of 0 plays
			got[fmt.Sprint(itemKey{user, fmt.Sprint(period), entity, item})] = int(plays)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	it = session.Query(`SELECT user_id, year, entity, item, plays FROM year_items`).WithContext(ctx).PageSize(5000).Iter()
	for it.Scan(&user, &period, &entity, &item, &plays) {
		if plays > 0 { // deletions leave rows of 0 plays
			got[fmt.Sprint(itemKey{user, fmt.Sprint(period), entity, item})] = int(plays)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	diff("day, month and year item plays", got, wantItems)
}
