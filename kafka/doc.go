// Package kafka holds what every Kafka client of topk shares: the sarama
// settings (DESIGN.md, "Goka's defaults are wrong for this"), the topic
// layout with partition counts, retention and compaction, and the code
// that creates and reconciles those topics (`topk topics`).
//
// It sits under every stage of the flow; it knows topic names only through
// package listen.
package kafka
