// Package send takes a history file read by package imports to Kafka:
// each accepted listen to user.listen.raw (keyed by user, as the crawler
// sends them), each refused record to user.listen.dlq with its reason
// and where it was in the file, in batches acknowledged before a
// checkpoint moves past them. topk import (cmd/topk) and the upload route
// (api) both run an import through it.
//
// Flow: history file → imports.Read → send.Run → user.listen.raw →
// ingest → aggregator (dedup by identity), and → user.listen.dlq.
//
// It counts nothing itself: the pipeline does, once per identity, so an
// import run twice, resumed from an older checkpoint, or overlapping
// listens crawled or submitted counts each listen once.
package send
