// Package simulated is a deterministic population of listeners: artists and
// tracks drawn from Zipf distributions (a few favourites, a long tail),
// each listener with a taste of their own, an activity level and a daily
// rhythm in their own time zone. The same listener and hour always give the
// same plays, so a re-crawl of an overlapping window publishes the same
// listens. It is the default provider of `make run` (in-process, no
// network) and, served over HTTP in Last.fm's JSON shape (LastfmHandler),
// the load source of the crawl benchmark.
//
// Flow: crawler worker → simulated (in-process), or lastfm client →
// LastfmHandler (benchmark, tests).
package simulated
