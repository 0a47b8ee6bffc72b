// Package imports reads the listening history files people already have —
// Spotify's Extended Streaming History and ListenBrainz's listen export —
// and turns each record into a listen of the event contract (package
// listen), checked against the contract as ingest would check it. It is a
// source of listens, like the crawler and the ListenBrainz api: the
// caller (topk import, the upload route: issue 14, "Bring your history")
// produces what Read hands it to user.listen.raw, where ingest is still
// the gate, and the pipeline deduplicates by identity as it does for any
// listen sent twice.
//
// Read takes what was downloaded, as downloaded: a zip (Spotify's "my_spotify_data.zip",
// ListenBrainz's listenbrainz_<user>_<time>.zip) or one of the JSON files
// inside it. It tells the formats apart by content, never by file name
// (sniff.go), reads record by record without holding a file in memory,
// refuses archives over its limits before inflating anything and stops an
// entry that inflates past them (zip.go), and reports per file what it
// read, accepted, skipped by rule and refused, with reasons (report.go).
// The rules of each format are written next to their code: spotify.go,
// listenbrainz.go.
//
// Every record has a stable position (the file's name in the archive and
// the record's index in that file), so a caller that stopped can resume
// after the last record it produced (Options.After).
//
// It imports no Kafka, store or HTTP package.
package imports
