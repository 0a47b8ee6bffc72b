// Package store groups the clients of topk's stores, one package each:
//
//   - store/cassandra: raw listens, day values, rollups.
//   - store/postgres: the control plane — users, provider accounts with
//     sealed tokens, schedules, crawl runs. It owns every SQL statement
//     the services run, behind the small interfaces the crawler declares
//     where it uses them (crawler.UserStore, crawler.ScheduleStore,
//     crawler.RunStore); no other package of the services writes SQL.
//   - store/redis: Asynq's broker and the answer cache.
//
// Each owns the Config of its client (filled from package config by
// internal/wiring, in cmd/ and the tests' and benchmarks' set-up: no store
// imports config), connects from it, checks health with a real round
// trip, and applies its schema where it has one.
package store
