// Package api is topk's public HTTP server (echo): the Top-K charts
// (charts.go: top, activity, listens, user search), the admin endpoints
// (admin.go), the browser UIs behind basic auth (asynqmon at /asynq/, the
// Goka monitor at /goka/), /healthz, /readyz (store health as detail),
// /metrics (topk_ prefix: requests and latency by route and source, cache
// tiers) and /openapi.yaml. Every error becomes a status code and a JSON
// body in one function (errors.go).
//
// A chart's days inside the view's window come from the Goka view when it
// is recovered (checked per request), the others from Cassandra: whole
// years and months from the rollups, at most two partial months from day
// values. Cassandra answers are cached in this process and in Redis for a
// short TTL (cache.go); Redis down is served uncached. The api declares
// the small interfaces it reads through (View, Store, Cache); views.View,
// cassandra.Reader and RedisCache implement them.
//
// Flow: Goka views + Cassandra (+ Redis cache) → api → users.
package api
