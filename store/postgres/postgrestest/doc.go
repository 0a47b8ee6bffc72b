// Package postgrestest gives integration tests a migrated PostgreSQL
// database of their own.
//
// Flow: integration tests → postgrestest → store/postgres → PostgreSQL.
package postgrestest
