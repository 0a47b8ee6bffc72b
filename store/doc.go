// Package store groups the clients of topk's stores, one package each:
// store/cassandra (raw listens, day values, rollups), store/postgres (the
// control plane) and store/redis (Asynq's broker and the answer cache).
// Each connects from config.Config, checks health with a real round trip,
// and applies its schema where it has one.
package store
