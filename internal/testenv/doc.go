// Package testenv gives integration tests their own corner of the real
// stack: a random namespace for topics and groups, and a keyspace and a
// database of their own, all removed when the test ends. What `make run`
// left on the same servers is never touched.
package testenv
