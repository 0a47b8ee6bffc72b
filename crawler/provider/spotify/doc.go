// Package spotify crawls Spotify's recently-played endpoint
// (GET /me/player/recently-played, limit=50, after = cursor in Unix ms).
// The access token is refreshed with the refresh token on 401 (and before
// a request once it has expired), and the new tokens are saved before the
// crawl goes on; 429 is honoured with its Retry-After. Spotify only returns
// the last 50 plays: a run that gets a full page of 50 new plays reports a
// possible gap.
//
// Flow: crawler worker → spotify → Spotify Web API (or a compatible server).
package spotify
