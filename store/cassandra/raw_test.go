package cassandra

import (
	"testing"

	"github.com/gocql/gocql"
)

// Absent optional fields, and durations duration_ms cannot hold, are
// written unset: no null (no tombstone), and an earlier copy's value stays.
func TestOptionalColumnsStayUnset(t *testing.T) {
	if optional("") != gocql.UnsetValue || optional("x") != "x" {
		t.Error("optional")
	}
	for _, ms := range []int64{0, -1, 1 << 31} {
		if duration(ms) != gocql.UnsetValue || StoresDuration(ms) {
			t.Errorf("duration(%d) is set", ms)
		}
	}
	if duration(215000) != int32(215000) || !StoresDuration(215000) {
		t.Error("duration(215000)")
	}
}
