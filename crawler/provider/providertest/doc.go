// Package providertest is the contract every crawler/provider
// implementation keeps, written once as a test suite: each provider's
// tests call Run with a fixture that serves a known history (the simulated
// population in-process; Last.fm and Spotify through an httptest server
// that speaks their API). ClosedAddr is an address nothing answers at,
// for tests of transport errors.
//
// Flow: provider tests → providertest.Run → provider.Provider.
package providertest
