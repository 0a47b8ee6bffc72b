// Package crawler is where listens come from. PostgreSQL holds users, their
// provider account (tokens sealed by crawler/tokens) and a schedule each;
// Asynq (on Redis) holds one crawl:user task per user at its next run time.
// The worker claims the run in PostgreSQL, asks the user's provider
// (crawler/provider/...) for the plays after the cursor, publishes them to
// user.listen.raw keyed by user id, and moves the cursor only after Kafka
// acknowledged the whole page. The reconciler rebuilds Redis from
// PostgreSQL, so a Redis flush drops no one.
//
// Files: store.go (PostgreSQL), task.go (task ids, retries), worker.go
// (one crawl), control.go (register, status, crawl now, reconcile),
// publish.go (Kafka), metrics.go.
//
// Flow: PostgreSQL schedules → Asynq (Redis) → worker → provider →
// user.listen.raw.
package crawler
