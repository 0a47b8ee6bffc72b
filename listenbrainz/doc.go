// Package listenbrainz is topk's ListenBrainz-compatible surface: the
// paths under /1/ that scrobblers and ListenBrainz client libraries use,
// so that pointing them at a topk api (instead of api.listenbrainz.org)
// submits listens to it and reads its charts.
//
// Submissions are a source of listens like the crawler: a payload is
// checked with ListenBrainz's rules and messages (submit.go), each listen
// is mapped to the event contract (package listen) and checked against it
// too, and the whole request is produced to user.listen.raw (source
// "listenbrainz") and answered only after Kafka acknowledged every
// listen; from there the pipeline counts it like any other. playing_now
// submissions are not listens: they are kept in Redis with a TTL. Where
// ListenBrainz names a listen by its recording_msid, topk computes one from
// the normalized names (msid.go).
//
// Reads (listens, listen counts, the stats endpoints) answer from the same
// query code as /v1/ (package charts: the aggregator's view for recent
// days, Cassandra for older ones), with ListenBrainz's range names mapped
// to calendar periods (ranges.go) and its response shapes.
package listenbrainz
