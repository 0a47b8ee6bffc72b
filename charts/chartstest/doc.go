// Package chartstest helps test the charts and what they read: a World
// of test users with an independent count of their charts (Expect), an
// in-memory View and Store on it, a Redis stand-in, a heavy view for
// benchmarks, and StoreSuite, the contract every charts.Store passes
// (the in-memory Store here; cassandra.Reader in its integration tests).
package chartstest
