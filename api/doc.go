// Package api is topk's public HTTP server (echo): the Top-K charts
// (charts.go: top, activity, listens, user search; sitewide.go:
// everyone's top, GET /v1/charts/top/{entity}, from the sitewide query
// service behind the small SitewideCharts interface, Config.Sitewide),
// the ListenBrainz-compatible API (listenbrainz.go, its sitewide stats
// included), the admin endpoints
// (admin.go; users' API tokens in tokens.go), the browser UIs (browser.go: the charts page at /, and
// behind basic auth asynqmon at /asynq/ and the Goka monitor at /goka/;
// none may be framed, and a request that changes something through the
// last two must come from the api's own origin), /healthz, /readyz (each
// store check ok or error; the errors go to the log), /metrics (topk_
// prefix: requests and latency by route and source) and /openapi.yaml.
//
// The api is thin: a chart handler parses its parameters (ranges.go),
// calls the charts service (package charts, behind the small Charts
// interface) and writes its answer with the X-Topk-Cassandra-Lag header;
// everything about where days come from, merging, caching and the lag is
// the service's. The public read routes are rate limited per client
// (limits.go: 429 with Retry-After, X-RateLimit-* headers on every
// answer; the client is the peer, or what a trusted proxy says), a
// charts.ErrBusy refusal is a 503 with Retry-After, and the HTTP server
// has read, write and idle timeouts. Every error — the api's own codes,
// the domain's (topk.Error, topk.ErrInvalid/ErrNotFound/ErrUnavailable)
// and echo's — becomes a status code and a JSON body in one function,
// StatusOf (errors.go), and so do the router's misses: an unknown path is
// a 404 naming it, a method the path does not take a 405 with Allow.
//
// Flow: Goka views + Cassandra (+ Redis cache) → charts → api → users;
// the sitewide view + Cassandra's sitewide_days → charts/sitewide → api.
package api
