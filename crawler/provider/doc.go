// Package provider is the one small interface every listening-history
// source implements (Last.fm, Spotify, the simulated population), and the
// types they share. Providers know nothing of Kafka, PostgreSQL or Asynq:
// they turn a cursor into pages of plays, oldest first. The contract of
// Provider is also a test suite, providertest.Run, that each of them
// passes.
//
// Redact (redact.go) is the one redaction point of provider errors: it
// replaces the known secrets (a provider's own, which it declares by
// implementing SecretHolder, and the account's tokens) and anything that
// looks like one by name (api_key=…, "access_token": "…", Authorization:
// …, Bearer …, user:password@) with REDACTED. Redacting wraps a provider
// so that every error of its Crawl goes through Redact; the crawler's
// worker wraps every provider with it.
//
// Flow: crawler worker → provider → (pages of plays) → crawler publisher.
package provider
