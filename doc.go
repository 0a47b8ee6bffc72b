// Package topk is the domain root: the words every layer of topk shares —
// the chart entities and their items, the ranking order, periods and day
// totals, the binary codec of items, the domain errors, and what may be
// shown of a user's API token (TokenInfo). It imports no driver (no
// Kafka, Cassandra, PostgreSQL or HTTP package), so the processors, the
// stores, the charts service and the api can all speak it without
// depending on each other.
//
// Flow: it sits under everything; see docs/ARCHITECTURE.md for the data
// flow that uses these words (listens → aggregator → flusher and views →
// charts → api).
package topk
