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
// Each connects from config.Config, checks health with a real round trip,
// and applies its schema where it has one.
package store
