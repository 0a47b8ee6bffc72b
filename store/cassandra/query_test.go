package cassandra

import (
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/config"
)

func TestUsersByPrefixSchema(t *testing.T) {
	stmts, _, err := render("cassandra/003_users_by_prefix.cql", config.Cassandra{Keyspace: "topk_x", ReplicationFactor: 1})
	if err != nil || len(stmts) != 1 || !strings.Contains(stmts[0], "topk_x.users_by_prefix") {
		t.Fatalf("%v %q", err, stmts)
	}
}

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

func TestSearchKeyFolds(t *testing.T) {
	for in, want := range map[string][2]string{
		"Alice":  {"a", "alice"},
		"ÉMILE":  {"é", "émile"},
		"Straße": {"s", "strasse"},
		"":       {"", ""},
	} {
		b, f := SearchKey(in)
		if b != want[0] || f != want[1] {
			t.Errorf("%q: %q %q, want %q", in, b, f, want)
		}
	}
	if args := KnownUserArgs("Bob"); args[0] != "b" || args[1] != "bob" || args[2] != "Bob" {
		t.Errorf("%v", args)
	}
}
