// Package postgres is topk's PostgreSQL: it connects (Open, Connect,
// Ping), creates and drops test databases, applies the migrations in
// schemas/postgres (Migrate), and owns every SQL statement topk runs on
// the control plane's tables. Store implements the ports the crawler
// declares (crawler.UserStore, crawler.ScheduleStore, crawler.RunStore)
// and the api's api.Tokens, one file per table:
//
//	users.go      users: create (with account and schedule, one transaction), delete
//	accounts.go   provider_accounts: tokens sealed on write, opened on read (crawler/tokens)
//	schedules.go  schedules: read, list, active ones, crawl now, archived runs
//	runs.go       crawl_runs and the crawl's lease: claim, advance, finish, list, prune
//	tokens.go     api_tokens: users' API tokens, stored as SHA-256; create, authenticate, list, revoke
//	store.go      Store, relaxed commits of a crawl's bookkeeping
//
// Every statement takes its values as bind parameters; the only SQL built
// from a name is CREATE/DROP DATABASE, whose name is quoted as an
// identifier.
//
// Flow: api admin endpoints / scheduler / crawler → crawler ports → Store
// → PostgreSQL; api token endpoints, `topk token` and the ListenBrainz
// api's authentication → Store (tokens.go) → PostgreSQL.
package postgres
