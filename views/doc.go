// Package views holds the Goka view the api reads: the aggregator's table
// (user|day → exact counts), kept in memory for the recent R days only
// (TOPK_VIEW_DAYS, default 35: today, 7d, 30d, this_week, this_month). The
// view's update callback skips older days as they arrive — the table holds
// every day ever — and drops their seen sets; a periodic prune drops days
// that leave the window as the date rolls over. Readers check Recovered
// per request: a view that is (re)connecting serves partial data, and the
// api then answers from Cassandra. Metrics: topk_view_lag,
// topk_view_recovered, topk_view_user_days, topk_view_skipped_total.
//
// Runner (runner.go) is the life both of the api's views share (this one
// and views/sitewide's): a Goka view built and rebuilt through Kafka
// outages up to the outage limit, readiness, the maintenance loop, and
// KafkaViewOptions, the Goka options that close the clients they open.
//
// Flow: aggregator table (Kafka) → views → api.
package views
