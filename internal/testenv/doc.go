// Package testenv gives integration tests their own corner of the real
// stack: a random namespace for topics and groups, and a keyspace and a
// database of their own, all removed when the test ends. What `make run`
// left on the same servers is never touched. Tests that kill, pause or
// restart Kafka start a broker of their own on free ports (StartKafka);
// Start runs topk subcommands as OS processes that a test can kill -9,
// restart, and check for having exited by themselves.
package testenv
