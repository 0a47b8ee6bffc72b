package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterIsIdempotentPerCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "topk_test_total", Help: "A test counter."})
	if err := Register(reg, c); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, c); err != nil {
		t.Fatalf("the same collector again: %v", err)
	}
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "topk_test_total", Help: "A test counter."})
	if err := Register(reg, other); err == nil {
		t.Fatal("another collector with the same name registered")
	}
	if Registerer(nil) != prometheus.DefaultRegisterer || Registerer(reg) != reg {
		t.Fatal("Registerer: nil is the default registerer, others are kept")
	}
}
