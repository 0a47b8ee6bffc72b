// Package tokens seals provider tokens (Spotify access and refresh tokens)
// with AES-256-GCM before they reach PostgreSQL, and opens them again in the
// crawler. The key comes from TOPK_TOKEN_KEY; without it, services refuse to
// start unless TOPK_DEV_MODE=1, which generates a key file under the runtime
// directory and says so in the log.
//
// Flow: admin api (seal) → PostgreSQL provider_accounts → crawler (open).
package tokens
