// Package charts is the charts query service: Top, Activity, Listens and
// SearchUsers of a user over a range, each taking a context and domain
// types (topk.Entity, Range, the queries) and answering domain answers
// or domain errors (topk.Error: invalid naming the parameter, not found,
// unavailable) — nothing of HTTP. The api calls it; tests and benchmarks
// call it without echo.
//
// Where it reads: a range's days inside the Goka view's window come from
// the view when it is recovered (checked per query), the others from the
// Store (Cassandra): whole years and months from the rollups, at most two
// partial months from day values (plan.go, Periods). The view's days are
// summed per query and merged with the Store's sorted tally without
// sorting either whole (merge.go). Items show the user's all-time majority
// spelling, the same in every range (names.go). Store answers are cached in this
// process and in Redis for a short TTL (cache.go) under canonical keys (a
// tally's key is the partitions it reads, from the user's first day on,
// not the dates asked); Redis down is served uncached; answers over
// Config.CacheMaxEntryBytes stay out of Redis. What reads Cassandra is
// bounded (flight.go): a fill is shared by the requests that want it and
// cancelled when all of them have gone, and at most Config.MaxCassandra
// fills run at once — one more waits Config.BusyWait, then fails with
// ErrBusy. Answers that read Cassandra say how far it is behind the view
// (lag.go: LagMonitor, Freshness).
//
// Files: service.go (Config, the View and Store ports, errors), ranges.go
// (range names, resolution, validation), plan.go (view | Cassandra split,
// partition planner), top.go, activity.go (and the search), listens.go
// with cursor.go, merge.go, names.go (display names), cache.go, flight.go
// (shared, cancellable fills; the Cassandra slots; ErrBusy), lag.go. The Store port's contract
// suite and the fakes are in chartstest.
//
// Flow: Goka views + Cassandra (+ Redis cache) → charts → api → users.
package charts
