package simulated

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
	"github.com/topk-charts/topk/crawler/provider/providertest"
)

// fixture is two days of a simulated listener (about three pages of 40).
func fixture(p provider.Provider, pop *Population) providertest.Fixture {
	return providertest.Fixture{
		Provider: p,
		Account:  provider.Account{UserID: "alice", ExternalID: "alice"},
		Want:     pop.Plays("alice", time.Unix(1, 0), now, now),
	}
}

// The simulated provider keeps the provider contract.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		pop := New(Config{History: 48 * time.Hour})
		return fixture(&Provider{Population: pop, PageSize: 40, Now: func() time.Time { return now }}, pop)
	})
}

// So does the Last.fm client crawling LastfmHandler, the population served
// in Last.fm's shape (what `make run` and the crawl benchmark use).
func TestContractLastfmHandler(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		return lastfmFixture(t, func(c *lastfm.Client) provider.Provider { return c })
	})
}

// Redacting, which the crawler wraps every provider in, keeps the contract
// too (an emit error and a cancellation still match with errors.Is).
func TestContractRedacting(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		return lastfmFixture(t, func(c *lastfm.Client) provider.Provider { return provider.Redacting(c) })
	})
}

// lastfmFixture is two days of the population behind LastfmHandler, crawled
// by the Last.fm client as wrap wraps it.
func lastfmFixture(t *testing.T, wrap func(*lastfm.Client) provider.Provider) providertest.Fixture {
	t.Helper()
	pop := New(Config{History: 48 * time.Hour})
	srv := httptest.NewServer(LastfmHandler(pop, func() time.Time { return now }))
	t.Cleanup(srv.Close)
	c, err := lastfm.New(lastfm.Config{BaseURL: srv.URL, APIKey: "k", RequestsPerSecond: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return fixture(wrap(c), pop)
}
