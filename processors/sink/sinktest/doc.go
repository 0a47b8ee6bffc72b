// Package sinktest holds what the tests of the sinks (sink, rawwriter,
// flusher) share: the Kafka plumbing of the integration tests (a
// namespaced topic created and deleted around a test, a producer, the
// committed offsets of a group, metrics), a session and a claim without
// Kafka (fake.go), and WriterContract (contract.go), the one suite every
// sink.Writer passes, on a fake store in unit tests and on Cassandra in
// integration tests.
package sinktest
