// Package api is topk's public HTTP server (echo): the Top-K charts, the
// admin endpoints and the browser UIs are added here by later stages; from
// the start it serves /healthz, /readyz (store health as detail), /metrics
// (topk_ prefix: requests and latency by route) and maps every error to a
// status code and a JSON body in one function (errors.go).
//
// Flow: Goka views + Cassandra (+ Redis cache) → api → users.
package api
