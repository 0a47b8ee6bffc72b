// Package listenbrainz is ListenBrainz's API without HTTP: what topk
// needs to answer the paths under /1/ that scrobblers and ListenBrainz
// client libraries use, so that pointing them at a topk api (instead of
// api.listenbrainz.org) submits listens to it and reads its charts. The
// HTTP side — routes, the token check, CORS, the rate limit, producing
// and answering — is api/listenbrainz.go, wired in cmd/topk.
//
// Submissions are a source of listens, like the crawler. ParseSubmission
// checks a body with ListenBrainz's rules, in its order and with its
// messages (submit.go, reading JSON and values as ListenBrainz's Python
// does: decode.go, python.go), and Submitted.Listen maps each listen to
// the event contract (package listen) and checks it against the contract
// too, so that what the api then produces to user.listen.raw (source
// "listenbrainz") passes the ingest gate like any other listen. Error is
// ListenBrainz's error body. playing_now submissions are not listens:
// NowPlaying is what the api keeps of one in Redis, and for how long.
// Where ListenBrainz names a listen by its recording_msid, topk computes
// one from the normalized names (MSID, msid.go).
//
// Reads go through package charts, the query service behind /v1/: this
// package maps ListenBrainz's range names to calendar days (ranges.go),
// pages listens as ListenBrainz does over the charts' listens
// (listens.go), and shapes the charts' answers as ListenBrainz's payloads
// (stats.go: a user's stats from package charts, the sitewide stats from
// charts/sitewide, with the records of ListenBrainz's sitewide
// statistics). It imports no store and no HTTP package.
package listenbrainz
