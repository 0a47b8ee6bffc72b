package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Registerer is reg, or prometheus.DefaultRegisterer when reg is nil (the
// default of every component's Registerer).
func Registerer(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return prometheus.DefaultRegisterer
	}
	return reg
}

// Register registers cs on reg (nil: prometheus.DefaultRegisterer). A
// collector already registered there is fine (components built again, or
// several components sharing a package's collectors); another collector
// with the same name is an error.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	reg = Registerer(reg)
	var errs []error
	for _, c := range cs {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) && are.ExistingCollector == c {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}
