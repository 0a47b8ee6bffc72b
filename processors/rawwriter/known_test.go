package rawwriter

import (
	"fmt"
	"testing"

	"github.com/topk-charts/topk/store/cassandra"
)

// Each distinct user of a batch's listens is recorded for the search once
// per process (a user with deletes only is not); a full set starts over rather than grow without bound.
func TestKnownUsers(t *testing.T) {
	l := []cassandra.RawListen{{}}
	groups := []*partitionGroup{{user: "alice", listens: l}, {user: "bob", listens: l}, {user: "carol"}, {user: "alice", listens: l}}
	users := distinctUsers(groups)
	if fmt.Sprint(users) != "[alice bob]" {
		t.Fatalf("distinct users %v", users)
	}
	var k knownUsers
	if m := k.missing(users); len(m) != 2 {
		t.Fatalf("missing %v before any write", m)
	}
	k.add(users)
	if m := k.missing([]string{"alice", "carol"}); fmt.Sprint(m) != "[carol]" {
		t.Fatalf("missing %v, want [carol]", m)
	}
	many := make([]string, maxKnownUsers)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	k.add(many)
	if len(k.users) > maxKnownUsers {
		t.Fatalf("%d users remembered, bound %d", len(k.users), maxKnownUsers)
	}
}
