// Package outage is how topk services wait out an unreachable dependency
// (Kafka, Cassandra, PostgreSQL, Redis) instead of exiting: a Tracker
// follows one dependency through its outages (down since when, the last
// error, one log line when it goes down and one when it is back), Retry
// calls a set-up step with capped backoff until it succeeds, and Watch
// pings a dependency a running component needs. Past the outage limit
// (TOPK_OUTAGE_LIMIT_MS, default 5 minutes) both return a *LimitError
// naming the dependency and its last error, and the service exits non-zero
// with it.
//
// Flow: beside every stage; cmd/topk, views, processors/sink and the
// crawler's reconciler use it.
package outage
