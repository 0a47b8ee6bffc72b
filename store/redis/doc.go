// Package redis connects to Redis, which holds Asynq's crawl queues and the
// api's short-lived cache of Cassandra answers. Redis may lose everything:
// schedules are reconciled from PostgreSQL and the cache refills.
//
// Flow: scheduler / crawler (Asynq) and api (cache) → Redis.
package redis
