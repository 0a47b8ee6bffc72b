// Package kafka holds what every Kafka client of topk shares: the sarama
// settings (DESIGN.md, "Goka's defaults are wrong for this"), the topic
// layout with partition counts, retention, compaction and message limits,
// the code that creates and reconciles those topics (`topk topics`), and
// the commit rule of every consumer group (OrderedCommits: a partition's
// committed offset never passes a message that is not done), and how far
// a group is behind: in records (GroupLag, and LagCollector, which exports
// it as topk_consumer_lag) and in time (GroupTimeLag, TimeLagMeter).
//
// It sits under every stage of the flow; it knows topic names only through
// package listen.
package kafka
