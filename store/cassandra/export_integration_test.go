//go:build integration

package cassandra

import (
	"context"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
)

// What solo_integration_test.go needs of the package.

func (r *Reader) SessionForTest() (*gocql.Session, error) { return r.session() }

func IsSolo(s *gocql.Session) bool { _, ok := solo.Load(s); return ok }

// ForgetSoloForTest unmarks s until the returned func marks it again.
func ForgetSoloForTest(s *gocql.Session) func() {
	solo.Delete(s)
	return func() { solo.Store(s, true) }
}

// SpeculateSoonForTest makes day reads speculate after d until the
// returned func restores the delay.
func SpeculateSoonForTest(d time.Duration) func() {
	old := speculate[topk.Daily]
	speculate[topk.Daily] = &gocql.SimpleSpeculativeExecution{NumAttempts: 1, TimeoutDelay: d}
	return func() { speculate[topk.Daily] = old }
}

func ReadForTest(ctx context.Context, s *gocql.Session, stmt string, args ...any) *gocql.Query {
	return read(ctx, s, stmt, args...)
}
