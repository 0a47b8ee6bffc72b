//go:build integration

package cassandra_test

import (
	"testing"
	"time"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/cassandra"
)

// On a one-node cluster (the local stack) reads are not speculated: a
// speculative attempt there has no host to go to and gocql answers the
// read with its failure ("no hosts available in the pool") whenever the
// read takes longer than the delay. Shown with a delay of 1 µs: with the
// session marked, every read answers; unmarked, reads fail.
func TestIntegrationReaderDoesNotSpeculateOnOneNode(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	r := cassandra.NewReader(wiring.Cassandra(cfg.Cassandra))
	defer r.Close()
	s, err := r.SessionForTest()
	if err != nil {
		t.Fatal(err)
	}
	if !cassandra.IsSolo(s) {
		t.Fatal("the local stack's Cassandra (one node) was not taken for a one-node cluster")
	}
	defer cassandra.SpeculateSoonForTest(time.Microsecond)()
	reads := func() (failed int, last error) {
		for range 40 {
			var v string
			if err := cassandra.ReadForTest(ctx, s, `SELECT release_version FROM system.local`).Scan(&v); err != nil {
				failed, last = failed+1, err
			}
		}
		return failed, last
	}
	if failed, err := reads(); failed > 0 {
		t.Fatalf("%d of 40 reads failed on a one-node cluster: %v", failed, err)
	}
	restore := cassandra.ForgetSoloForTest(s)
	failed, err := reads()
	restore()
	if failed == 0 {
		t.Fatal("speculated reads on one node never failed: gocql changed, and the solo rule may go")
	}
	t.Logf("speculated on one node: %d of 40 reads failed (%v)", failed, err)
}
