// Package cassandra connects to Cassandra and applies the CQL schema in
// schemas/cassandra. Writers (raw writer, flusher) and the api's fallback
// reads build on the session it returns.
//
// Flow: raw writer / flusher → Cassandra → api.
package cassandra
