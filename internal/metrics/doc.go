// Package metrics registers a component's Prometheus collectors on the
// Registerer its Config names, so that importing a package registers
// nothing and tests and benchmarks can give each run a registry of its
// own. It sits beside every stage of the flow and knows none of them.
//
// The rule for where collectors live (per instance in the api, charts,
// views and crawler; per package in the processors, of which a process
// runs one each) is in docs/ARCHITECTURE.md, "Rules the tree keeps".
package metrics
