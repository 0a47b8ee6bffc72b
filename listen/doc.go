// Package listen is the event contract every stage of topk shares: the
// names of the listen topics and, as the pipeline grows, the listen type,
// its codec, normalization and validation. It is a leaf: it imports no
// other package of topk, and no other file spells a topic name.
//
// Flow: crawler / any producer → user.listen.raw → ingest →
// user.listen.valid (+ user.listen.dlq) → raw writer, aggregator.
package listen
