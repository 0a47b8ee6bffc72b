// Package provider is the one small interface every listening-history
// source implements (Last.fm, Spotify, the simulated population), and the
// types they share. Providers know nothing of Kafka, PostgreSQL or Asynq:
// they turn a cursor into pages of plays, oldest first. The contract of
// Provider is also a test suite, providertest.Run, that each of them
// passes.
//
// Flow: crawler worker → provider → (pages of plays) → crawler publisher.
package provider
