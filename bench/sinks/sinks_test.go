package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
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

// The rollups sum spellings as the flusher does: each month row's
// spellings are the sums of its days', and its name and first are the
// majority's (an independent tally of the day rows, not Merge); some rows
// have several spellings, so the check covers them.
func TestRollupSpellings(t *testing.T) {
	g := newGenerator(3, 40, 3000, 16)
	for range 3000 {
		g.next()
	}
	type key struct {
		user  string
		month int
		e     topk.Entity
		item  uint64
	}
	tally := map[key]map[string]topk.Spelling{}
	for _, days := range g.ds.dayP {
		for _, st := range days {
			for _, r := range st.rows {
				k := key{st.user, st.day.Year()*100 + int(st.day.Month()), r.Entity, r.Key}
				if tally[k] == nil {
					tally[k] = map[string]topk.Spelling{}
				}
				for _, s := range r.AllSpellings() {
					acc := tally[k][s.Name]
					if acc.Name == "" || s.First < acc.First {
						acc.First = s.First
					}
					acc.Name, acc.Plays = s.Name, acc.Plays+s.Plays
					tally[k][s.Name] = acc
				}
			}
		}
	}
	several := 0
	for _, m := range g.ds.months {
		for _, r := range m.rows {
			want := tally[key{m.user, m.part, r.Entity, r.Key}]
			var sp []topk.Spelling
			for _, s := range want {
				sp = append(sp, s)
			}
			best := topk.Majority(sp)
			if r.Name != best.Name || r.First != best.First || len(r.AllSpellings()) != len(want) {
				t.Fatalf("%s %d %s %d: %+v, want majority %+v of %+v", m.user, m.part, r.Entity, r.Key, r.Item, best, want)
			}
			var plays int64
			for _, s := range r.AllSpellings() {
				if want[s.Name] != s {
					t.Fatalf("%s %d %d: spelling %+v, want %+v", m.user, m.part, r.Key, s, want[s.Name])
				}
				plays += s.Plays
			}
			if plays != r.Plays {
				t.Fatalf("%s %d %d: spellings sum to %d plays, row has %d", m.user, m.part, r.Key, plays, r.Plays)
			}
			if len(r.Spellings) > 1 {
				several++
			}
		}
	}
	if several == 0 {
		t.Fatal("no month row has several spellings: respell does not reach the rollups")
	}
}
