// Package views holds the Goka views the api reads: a view of the
// aggregator's table keeping the recent R days (default 35), checked for
// recovery per request, with Cassandra answering older days and long
// ranges. The views land with the Top-K API issue.
//
// Flow: aggregator table (Kafka) → views → api.
package views
