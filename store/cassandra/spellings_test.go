package cassandra

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
)

// 005 adds first and spellings to the three item tables, each statement
// idempotent (ADD IF NOT EXISTS: a re-run after a partial failure).
func TestSpellingsSchema(t *testing.T) {
	stmts, _, err := render("cassandra/005_spellings.cql", Config{Keyspace: "topk_x", ReplicationFactor: 1})
	if err != nil || len(stmts) != 3 {
		t.Fatalf("%v %q", err, stmts)
	}
	for i, table := range []string{"day_items", "month_items", "year_items"} {
		want := "ALTER TABLE topk_x." + table + " ADD IF NOT EXISTS (first bigint, spellings blob);"
		if stmts[i] != want {
			t.Errorf("statement %d: %q, want %q", i, stmts[i], want)
		}
	}
}

// The spellings column: always a value (an empty list for one spelling,
// never a null), read back as written; an empty list, a null and a list of
// one are nil; bytes that do not decode are an error.
func TestSpellingsColumn(t *testing.T) {
	sp := []topk.Spelling{{Name: "RADIOHEAD", Plays: 2, First: 50}, {Name: "Radiohead", Plays: 3, First: 70}}
	one := &topk.Item{Name: "Nude", Plays: 4, First: 9}
	if v := spellingsValue(one); !reflect.DeepEqual(v, []byte{0}) {
		t.Errorf("one spelling: %v, want the empty list [0]", v)
	}
	var c spellingsColumn
	for _, data := range [][]byte{nil, {}, spellingsValue(one), topk.AppendSpellings(nil, sp[:1])} {
		c.sp = sp
		if err := c.UnmarshalCQL(nil, data); err != nil || c.sp != nil {
			t.Errorf("%v: %v %v, want nil", data, c.sp, err)
		}
	}
	if err := c.UnmarshalCQL(nil, spellingsValue(&topk.Item{Spellings: sp})); err != nil || !reflect.DeepEqual(c.sp, sp) {
		t.Errorf("round trip: %+v %v, want %+v", c.sp, err, sp)
	}
	enc := spellingsValue(&topk.Item{Spellings: sp})
	for _, bad := range [][]byte{enc[:len(enc)-1], append(enc, 7), {200}} {
		if err := c.UnmarshalCQL(nil, bad); !errors.Is(err, topk.ErrCorrupt) {
			t.Errorf("%v: %v, want ErrCorrupt", bad, err)
		}
	}
}

// A row without first (written before 005) counts from its period's
// start; a row with first keeps it.
func TestItemColumnsFill(t *testing.T) {
	day := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	bigint := gocql.NewNativeType(4, gocql.TypeBigInt, "")
	var cols itemColumns
	for _, c := range []struct {
		p    topk.Period
		data []byte
		want int64
	}{
		{topk.DayPeriod(day), nil, day.Unix()},
		{topk.MonthPeriod(day), nil, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()},
		{topk.YearPeriod(day), nil, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()},
		{topk.YearPeriod(day), []byte{0, 0, 0, 0, 0x69, 0xa8, 0xd0, 0x80}, 0x69a8d080},
	} {
		if err := cols.first.UnmarshalCQL(bigint, c.data); err != nil {
			t.Fatal(err)
		}
		var it topk.Item
		cols.fill(&it, c.p)
		if it.First != c.want || it.Spellings != nil {
			t.Errorf("%v %v: first %d spellings %v, want %d and none", c.p, c.data, it.First, it.Spellings, c.want)
		}
	}
}
