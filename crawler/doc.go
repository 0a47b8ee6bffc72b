// Package crawler is where listens come from. PostgreSQL holds users, their
// provider account (tokens sealed by crawler/tokens) and a schedule each;
// Asynq (on Redis) holds one crawl:user task per user at its next run time.
// The worker claims the run in PostgreSQL, asks the user's provider
// (crawler/provider/...) for the plays after the cursor, publishes them to
// user.listen.raw keyed by user id, and moves the cursor only after Kafka
// acknowledged the whole page. The reconciler rebuilds Redis from
// PostgreSQL, so a Redis flush drops no one.
//
// This package runs no SQL. It declares what it needs of the database as
// ports, each where it is used, and store/postgres implements them:
// UserStore (registration, status, deletion) and ScheduleStore (crawl now,
// the reconciler) in control.go, RunStore (a crawl's lease, cursor, tokens
// and outcome) in worker.go. Their records (Schedule, Run, NewUser, Claim,
// Progress, Outcome) are in schedule.go, the errors the stores return
// (ErrNotFound, which is also topk.ErrNotFound; ErrExists; ErrBusy) in
// errors.go.
//
// Secrets never leave a crawl: NewWorker wraps every provider in
// provider.Redacting, so each error a crawl ends with passes through
// provider.Redact before the worker logs it, records it in PostgreSQL
// (schedules.last_error, crawl_runs.error) or returns it to Asynq (which
// keeps it with the task, shown by asynqmon and the admin api). Redact
// replaces with REDACTED the secrets known during the crawl (the
// provider's API key or client secret, the account's tokens, tokens
// refreshed on the way) and, by name, any api_key=/token=/…
// parameter, "access_token"-like JSON field, Authorization header or
// Bearer token. Control redacts by name again what it reads back (errors
// Asynq kept, rows an older crawler wrote); migration 0003 scrubbed the
// rows stored before. A task's payload is the user id and the slot only:
// tokens are read from PostgreSQL when the crawl claims its user.
//
// The long-running parts are components: a constructor that does no I/O
// and Run(ctx) error until ctx ends. Server (server.go) runs the Worker on
// the Asynq queue (`topk crawler`); Reconciler (reconciler.go) runs
// Control.Reconcile at an interval (`topk scheduler`).
//
// Files: control.go (register, status, crawl now, reconcile), worker.go
// (one crawl), server.go, reconciler.go, task.go (task ids, retries),
// publish.go (Kafka), schedule.go, errors.go, metrics.go.
//
// Flow: PostgreSQL schedules → Asynq (Redis) → worker → provider →
// user.listen.raw.
package crawler
