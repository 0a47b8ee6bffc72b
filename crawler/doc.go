// Package crawler is where listens come from: Asynq crawl jobs (scheduled
// in Redis from PostgreSQL schedules) fetch each user's history from a
// provider (Last.fm, Spotify, or the simulated one) and publish every listen
// to user.listen.raw keyed by user id. It lands with the crawler issue.
//
// Flow: PostgreSQL schedules → Asynq (Redis) → crawler → user.listen.raw.
package crawler
