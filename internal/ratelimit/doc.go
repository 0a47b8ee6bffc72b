// Package ratelimit is the per-client token bucket of topk's public HTTP
// routes: one golang.org/x/time/rate limiter per client key (an IP
// address; an IPv6 client's /64, which one host usually holds whole), in
// a map bounded by a client count, whose idle entries are dropped (a
// bucket that has filled up again is the same as a new one). A Decision
// carries the numbers of the answer's headers, written with the names
// ListenBrainz uses (X-RateLimit-Limit, -Remaining, -Reset-In, -Reset,
// and Retry-After on a 429), so any HTTP surface can share one limiter.
//
// Flow: beside the api; api's middleware asks it before a public read
// reaches the charts service.
package ratelimit
