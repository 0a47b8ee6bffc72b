package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The bare writer must send the sinks' own statements: they are copied
// from unexported constants, so this test reads the sinks' source.
func TestStatementsMatchTheSinks(t *testing.T) {
	for file, stmts := range map[string][]string{
		"../../store/cassandra/raw.go":  {insertListen},
		"../../store/cassandra/days.go": {insertUserDay, insertItems[dayTable], insertItems[monthTable], insertItems[yearTable]},
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if !strings.Contains(string(src), "`"+s+"`") {
				t.Errorf("%s no longer has the statement\n%s\nupdate bench/sinks/bare.go", file, s)
			}
		}
	}
}

// The generated dataset adds up: every listen is a raw row, every user-day
// is counted, and the rollups hold every counted play.
func TestDataset(t *testing.T) {
	g := newGenerator(7, 5, 100, 16)
	for range 100 {
		g.next()
	}
	ds := g.ds
	if ds.listens != 100 || ds.userDays != 35 || ds.counted != 100 {
		t.Fatalf("listens %d, user-days %d, counted %d", ds.listens, ds.userDays, ds.counted)
	}
	var months, years int64
	for _, m := range ds.months {
		months += m.total
	}
	for _, y := range ds.years {
		years += y.total
	}
	if months != 100 || years != 100 {
		t.Fatalf("month rollups hold %d plays, year rollups %d, want 100", months, years)
	}
	if ds.want.raw.rows != 100 || ds.want.dayItems.partitions != 35 || ds.want.userDays.rows != 35 || ds.want.userDays.partitions != 7 {
		t.Fatalf("want: %+v", ds.want)
	}
}

func TestProfile(t *testing.T) {
	if k := kindOf(insertItems[monthTable]); k != "write month_items" {
		t.Errorf("kind %q", k)
	}
	if k := kindOf(`SELECT day, plays FROM user_days WHERE user_id = ?`); k != "read user_days" {
		t.Errorf("kind %q", k)
	}
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	// Two requests overlap for 5 ms of a 15 ms span; 2 is "full".
	p := newProfile([]request{{"a", at(0), at(10)}, {"b", at(5), at(15)}}, 2)
	if p.span != 15*time.Millisecond || p.under != 10*time.Millisecond || p.inFlight < 1.33 || p.inFlight > 1.34 {
		t.Errorf("%+v", p)
	}
}
