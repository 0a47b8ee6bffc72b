// Package lastfm crawls Last.fm's user.getRecentTracks: 200 plays a page,
// from = cursor + 1, pages walked oldest first (so a first import of years
// of history advances the cursor page by page), the now-playing item
// skipped, numbers that arrive as strings, errors carried in 200 bodies,
// errors 11/16/29 retried with backoff and error 17 (private profile) not
// retried, at a polite request rate with an identifying User-Agent.
//
// Flow: crawler worker → lastfm → Last.fm API (or a compatible server).
package lastfm
