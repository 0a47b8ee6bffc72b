package cassandra

import (
	"strings"
	"testing"
)

func TestUsersByPrefixSchema(t *testing.T) {
	stmts, _, err := render("cassandra/003_users_by_prefix.cql", Config{Keyspace: "topk_x", ReplicationFactor: 1})
	if err != nil || len(stmts) != 1 || !strings.Contains(stmts[0], "topk_x.users_by_prefix") {
		t.Fatalf("%v %q", err, stmts)
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
