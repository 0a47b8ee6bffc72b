package chartstest_test

import (
	"testing"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
)

// The in-memory store keeps the contract cassandra.Reader keeps.
func TestStoreContract(t *testing.T) {
	chartstest.StoreSuite(t, func(_ *testing.T, d *chartstest.Data) charts.Store { return chartstest.NewStore(d) })
}
