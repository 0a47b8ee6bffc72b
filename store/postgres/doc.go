// Package postgres connects to the control-plane database (users, provider
// accounts, encrypted tokens, schedules, crawl runs) and applies the
// migrations in schemas/postgres.
//
// Flow: api admin endpoints / scheduler / crawler → PostgreSQL.
package postgres
