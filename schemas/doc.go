// Package schemas embeds the store schemas so the binary carries them:
// Cassandra CQL (cassandra/*.cql, applied by `topk migrate` in name order,
// templated only with the keyspace name and replication factor, which are
// validated identifiers and numbers) and PostgreSQL migrations
// (postgres/*.sql).
//
// Flow: read by store/cassandra and store/postgres at migration time.
package schemas

import "embed"

// Cassandra holds cassandra/*.cql.
//
//go:embed cassandra/*.cql
var Cassandra embed.FS

// Postgres holds postgres/*.sql.
//
//go:embed postgres/*.sql
var Postgres embed.FS
